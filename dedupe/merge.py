"""Merging a cluster's member records into one display record.

The display record is the best member's description — by quality first
(main entry, physical description, subjects, classification, not all
capitals), then completeness — so a thin record never hides a rich one, enriched with every member's identifiers,
subjects and classifications, and carrying every member's holdings — losing
a holding in a merge is the second complaint of union-catalogue users.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from itertools import chain

from normaliser.model import Classification, Holding, Record


def _classifications(records: list[Record]) -> list[Classification]:
    """Every member's classifications in order, each (scheme, value) once.

    Keyed by the two fields rather than by each one's ``repr`` (a dataclass ``repr`` is a Python call with
    string formatting; ~4% of a merge in the profile): the same equality, both fields being strings."""
    out: dict[tuple[str, str], Classification] = {}
    for record in records:
        for c in record.classifications:
            out.setdefault((c.scheme, c.value), c)
    return list(out.values())


def quality(record: Record) -> int:
    """How good a base description the record makes, before how much it says.

    Points for what cataloguers check first: a main entry (1XX), a physical
    description (300), subject headings (6XX) and a classification; and a
    title not typed in capitals (old card conversions, brief records).  The
    MARC encoding level (leader/17) would belong here too, but the record
    model does not carry it yet.
    """
    score = 0
    score += 3 if any(c.primary for c in record.contributors) else 0
    score += 2 if record.extent else 0
    score += 2 if record.subjects else 0
    score += 2 if record.classifications else 0
    score += 1 if record.publisher and record.year else 0
    letters = _NOT_ASCII_LETTERS.sub("", record.title)    # in C: a Python loop over the characters was ~2/3 of it
    if len(letters) >= 4 and letters.isupper():
        score -= 4
    return score


#: The record's lists of strings a merge unites over its members (``classifications`` too: :func:`_classifications`).
_UNITED_TEXTS = ("isbns", "invalid_isbns", "issns", "oclc_numbers", "lccns", "other_ids", "languages", "subjects",
                 "series", "urls")

#: What is not an ASCII letter (``isalpha() and isascii()``): the all-capitals test looks at the rest.
_NOT_ASCII_LETTERS = re.compile(r"[^A-Za-z]+")


def merge_records(members: list[Record], source_order: dict[str, int] | None = None,
                  attached: Mapping[tuple[str, str], list[list[Holding]]] | None = None) -> Record:
    """One display record from a cluster's members; independent of member order.

    ``attached`` maps a member's key to the Holding rows of each of its
    holdings records (MFHD, see ``normaliser.links``; rows only, so the merge
    never decodes a holdings record): they join the member's own holdings,
    under the member's source and local id (a separate holdings feed's too)
    so the OPAC link opens its record.
    """
    if not members:
        raise ValueError("cannot merge an empty cluster")
    order = source_order or {}
    ranked = members if len(members) == 1 else sorted(    # most clusters have one member: nothing to rank
        members, key=lambda r: (-quality(r), -r.completeness(), order.get(r.source, 1 << 30), r.source, r.local_id))
    base = copy.copy(ranked[0])  # shallow: every list attribute is replaced below, nothing is mutated
    for name in _UNITED_TEXTS:   # lists of strings: each once, in order, in one C call
        setattr(base, name, list(dict.fromkeys(chain.from_iterable(getattr(r, name) for r in ranked))))
    base.classifications = _classifications(ranked)
    holdings: list[Holding] = []
    for r in sorted(members, key=lambda r: (order.get(r.source, 1 << 30), r.source, r.local_id)):
        # an attached holding is the member's, even when it came through a holdings feed of its own
        own = list(r.holdings) + [dataclasses.replace(h, source=r.source, local_id=r.local_id)
                                  for rows in (attached or {}).get(r.key, ()) for h in rows]
        # The member has the record, so it holds the item even when its
        # export carries no item fields: keep that as a holding.
        own = own or [Holding(source=r.source, local_id=r.local_id)]
        if r.urls and not any(h.urls for h in own):
            # a member's 856 goes through its own proxy: it is that library's access, not everyone's
            own[0] = dataclasses.replace(own[0], urls=list(r.urls))
        holdings.extend(own)
    base.holdings = holdings
    base.warnings = []
    return base
