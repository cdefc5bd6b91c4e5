"""Names across their forms, for search: an author found by any see-from of its authority record.

The index stage hands each document to :func:`add_variants` with the forms
the authority store knows for the record's contributors
(``normaliser.authorities.AuthorityStore.variants``, looked up a batch at a
time), so "Lu Hsün", 周树人 and 周樹人 find the books catalogued under
"Lu, Xun".  Without an authority record (most members have none) the record
itself gives the forms: its 880 parallel names, and for personal names the
pinyin ↔ Wade-Giles conversion and the readings of a Han name
(:mod:`normaliser.romanise`); traditional and simplified Han meet through
the index's own folding.  The forms go into the document's catch-all text only — never the
displayed authors, and never a match key (dedupe does not read documents):
a homophone or a shared variant may widen a search, it never merges two
records.  Kept apart from the query code, which changes on its own.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from normaliser.authority import heading_key
from normaliser.model import Record
from normaliser.romanise import name_forms

#: 880 parallel fields that carry names (ParallelField.tag is the tag they pair with).
_NAME_TAGS = frozenset({"100", "110", "111", "700", "710", "711"})

__all__ = ["contributor_names", "add_variants", "authority_forms", "ids_of", "names_of", "record_forms"]


def contributor_names(record: Record) -> list[str]:
    """The names whose forms a document of ``record`` should carry: its contributors, as catalogued."""
    return [c.name for c in record.contributors if c.name]


def record_forms(record: Record) -> list[str]:
    """Forms of the record's personal names from the record itself: 880 names and their romanisations."""
    people = [c.name for c in record.contributors if c.name and c.kind == "person"]
    parallel = [p.text for p in record.parallel if p.tag in _NAME_TAGS and p.text]
    forms = list(parallel)
    for name in people + parallel:
        forms.extend(name_forms(name))
    return forms


def authority_forms(record: Record, variants: Mapping[str, list[str]],
                    identified: Mapping[str, list[str]] | None = None) -> list[str]:
    """The authority forms of each contributor: through the identifiers its heading cites ($0/$1) when the
    store knows one of them — two people sharing a spelling stay apart — else through its normalised heading."""
    forms: list[str] = []
    for c in sorted((c for c in record.contributors if c.name), key=lambda c: heading_key(c.name)):
        by_id = [f for i in c.ids for f in (identified or {}).get(i, ())]
        forms.extend(by_id or variants.get(heading_key(c.name), ()))
    return forms


def add_variants(doc: dict, record: Record, variants: Mapping[str, list[str]],
                 identified: Mapping[str, list[str]] | None = None) -> list[str]:
    """Append the other forms of the record's names to ``doc["all"]``; returns the forms added.

    ``variants`` are the store's forms by heading key, ``identified`` by identifier
    (``AuthorityStore.variants`` and ``.identified``)."""
    have = {heading_key(n) for n in contributor_names(record)}
    added: list[str] = []
    candidates = authority_forms(record, variants, identified) + record_forms(record)
    for form in candidates:
        if heading_key(form) not in have and form not in added:
            added.append(form)
    if added:
        doc["all"] = " ".join([doc.get("all", ""), *added]).strip()
    return added


def names_of(records: Iterable[Record]) -> list[str]:
    """Every contributor name of a batch of records, for one look-up in the authority store."""
    return sorted({n for r in records for n in contributor_names(r)})


def ids_of(records: Iterable[Record]) -> list[str]:
    """Every authority identifier the contributors of a batch of records cite ($0/$1), for one look-up."""
    return sorted({i for r in records for c in r.contributors for i in c.ids})
