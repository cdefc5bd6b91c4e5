"""Authority records → an authority ``Record``: MARC 21 (leader/06 z) and UNIMARC/CNMARC (leader/06 x).

An authority record says who an author is and every other way the name is
written: the established heading (MARC 21 1XX, UNIMARC 2XX), see-from
tracings (4XX: "Lu, Hsün", 周树人, 周樹人), see-also tracings (5XX) and
linking entries (7XX: the same entity in another file, language or script),
with identifiers (LCCN in 010, ISNI/VIAF/GND/Wikidata in 024 or 035, the
record's own 001+003).  A CNMARC heading may carry its pinyin in ``$A``; it
is kept as one more see-from, for search only.

The result is a ``Record`` of kind ``authority``: ``heading``,
``heading_type``, ``dates``, ``see_from``, ``see_also``, ``linked_headings``,
identifiers in ``lccns``/``other_ids``.  Dedupe never matches it; the
authority store (:mod:`normaliser.authorities`) groups records of one
entity by identifier and finds them by any of their forms.  A record without
a heading cannot name anyone and is quarantined with that reason.
"""
from __future__ import annotations

from functools import lru_cache

from pymarc import Field

from . import identifiers
from .errors import RecordError
from .fields import unique
from .model import Record
from .text import MEMO_SIZE, clean, match_key, normalize_space

__all__ = ["marc21_authority", "unimarc_authority", "heading_key"]

#: MARC 21 heading tags (the see-from and see-also tags are these plus 300 / 400) and what they name.
_MARC21_TYPES = {"100": "person", "110": "organisation", "111": "meeting", "130": "title", "148": "period",
                 "150": "topic", "151": "place", "155": "genre"}
#: UNIMARC authority heading tags (2XX; 4XX see-from and 5XX see-also, 7XX parallel headings share the last 2 digits).
_UNIMARC_TYPES = {"200": "person", "210": "organisation", "215": "place", "216": "trademark", "220": "family",
                  "230": "title", "240": "name-title", "250": "topic", "260": "place", "280": "genre"}
#: Subfields that are not part of a heading's text (control and linking subfields, relationship codes).
_NOT_TEXT = frozenset("wi0123456789")
_SUBDIVISIONS = frozenset("vxyz")
_SCHEMES = {"de-588": "gnd", "dlc": "lccn", "ocolc": "oclc", "viaf": "viaf", "isni": "isni",
            "wikidata": "wikidata", "calis": "calis", "nlc": "nlc"}


#: Authority URIs of $0/$1: host and path prefix → scheme (the rest of the path is the identifier).
_URIS = (("id.loc.gov/authorities/names/", "lccn"), ("id.loc.gov/rwo/agents/", "lccn"), ("d-nb.info/gnd/", "gnd"),
         ("viaf.org/viaf/", "viaf"), ("www.wikidata.org/entity/", "wikidata"), ("wikidata.org/entity/", "wikidata"),
         ("isni.org/isni/", "isni"), ("id.worldcat.org/fast/", "fast"))


def identifier_of(value: str) -> str | None:
    """A heading's $0/$1 link as the authority store's ``scheme:value``, or None when it names no file.

    "(DLC)n  80094057", "http://id.loc.gov/authorities/names/n80094057.html" → "lccn:n80094057";
    "(DE-588)118574787", "https://d-nb.info/gnd/118574787" → "gnd:118574787"; "(CALIS)…" → "calis:…".
    A bare number (a local record number of an unnamed file) is None: it cannot be told from another's.
    """
    value = normalize_space(value)
    if value.startswith("(") and ")" in value:
        org, _, number = value[1:].partition(")")
        scheme, number = _SCHEMES.get(org.strip().lower(), org.strip().lower()), number.strip()
    else:
        rest = value.split("://", 1)[-1].rstrip("/")
        found = next(((scheme, rest[len(prefix):]) for prefix, scheme in _URIS if rest.startswith(prefix)), None)
        if found is None:
            return None
        scheme, number = found[0], found[1].split("/")[0].removesuffix(".html").removesuffix(".json")
    if scheme == "lccn":
        number = identifiers.lccn(number) or ""
    elif scheme == "isni":
        number = number.replace(" ", "")
    return f"{scheme}:{number}" if scheme and number else None


def heading_ids(field: Field, codes: str = "01") -> list[str]:
    """The authority identifiers a bibliographic heading cites (MARC 21 $0 $1; UNIMARC $3)."""
    return unique(i for s in field.subfields if s.code in codes for i in [identifier_of(s.value)] if i)


@lru_cache(maxsize=MEMO_SIZE)
def heading_key(text: str) -> str:
    """A name without its dates, folded, for linking bibliographic headings ("Lu, Xun, 1881-1936." → "lu xun").

    Memoised: the index stage keys every name of every document several times over (authority links,
    browse keys) and the same names recur across documents — ~11% of the stage, uncached."""
    words = [w for w in match_key(text).split() if not any(ch.isdigit() for ch in w)]
    return " ".join(words)


def _text(field: Field, skip: str = "") -> str:
    parts = []
    for sub in field.subfields:
        if sub.code in _NOT_TEXT or sub.code in skip or not sub.value.strip():
            continue
        value = normalize_space(sub.value)
        parts.append(("-- " if sub.code in _SUBDIVISIONS else "") + value)
    return clean(" ".join(parts)).rstrip(",;:")


def _ids_from(by_tag: dict[str, list[Field]], control: str, agency: str) -> tuple[list[str], list[str]]:
    """LCCNs and ``scheme:value`` identifiers from 010, 024 ($2), 035 ("(DE-588)…") and 001+003."""
    lccns = [n for f in by_tag.get("010", ()) for s in f.subfields if s.code == "a" for n in [identifiers.lccn(s.value)]
             if n]
    other = []
    for f in by_tag.get("024", ()):
        scheme = next((s.value.strip().lower() for s in f.subfields if s.code == "2"), "")
        for s in f.subfields:
            if s.code == "a" and s.value.strip() and scheme:
                other.append(f"{_SCHEMES.get(scheme, scheme)}:{s.value.strip()}")
    for f in by_tag.get("035", ()):
        for s in f.subfields:
            value = s.value.strip()
            if s.code == "a" and value.startswith("(") and ")" in value:
                org, _, number = value[1:].partition(")")
                scheme = _SCHEMES.get(org.lower(), org.lower())
                if scheme == "lccn":
                    lccns += [n for n in [identifiers.lccn(number)] if n]
                elif number.strip():
                    other.append(f"{scheme}:{number.strip()}")
    if control and agency.upper() == "DLC" and not lccns:
        lccns = [n for n in [identifiers.lccn(control)] if n]
    elif control and agency:
        other.append(f"{_SCHEMES.get(agency.lower(), agency.lower())}:{control}")
    return unique(lccns), unique(other)


def _control(by_tag: dict[str, list[Field]], tag: str) -> str:
    fields = by_tag.get(tag)
    return normalize_space(fields[0].data or "") if fields else ""


def _authority(source: str, local_id: str, record_format: str, warnings: list[str], by_tag: dict[str, list[Field]],
               types: dict[str, str], dates_code: str, family: str, skip: str = "", leader6: str = "") -> Record:
    """The heading (the first of ``types``' tags), its dates, and the 4XX/5XX/7XX with the same last digits."""
    heads = [(tag, f) for tag in types for f in by_tag.get(tag, ()) if not f.control_field]
    if not heads:
        # a local heading tag in the same block (IISH's Aleph export puts its terms in 103 / 403 / 503)
        block = next(iter(types))[0]
        heads = [(tag, f) for tag in sorted(by_tag) if tag[0] == block and tag.isdigit()
                 for f in by_tag[tag] if not f.control_field and _text(f, skip)]
        types = {**types, **{tag: "other" for tag, _ in heads[:1]}}
    if not heads:
        raise RecordError(f"{family} authority record (leader/06 {leader6!r}) without a heading "
                          f"({'1XX' if family == 'MARC 21' else '2XX'}): it names no one")
    tag, field = heads[0]
    rec = Record(source=source, local_id=local_id, kind="authority", record_format=record_format,
                 warnings=list(warnings))
    rec.control_number = _control(by_tag, "001")
    rec.heading = _text(field, skip)
    rec.heading_type = types[tag]
    rec.dates = clean(" ".join(s.value for s in field.subfields if s.code == dates_code)).rstrip(",.")
    rec.title = rec.heading
    if not rec.heading:
        raise RecordError(f"{family} authority record with an empty heading ({tag})")
    tails = {t[1:] for t in types}

    def tracings(first_digit: str) -> list[str]:
        return unique(v for t in sorted(by_tag) if t[0] == first_digit and t[1:] in tails
                      for f in by_tag[t] for v in [_text(f, skip)] if v and v != rec.heading)

    rec.see_from, rec.see_also, rec.linked_headings = tracings("4"), tracings("5"), tracings("7")
    return rec


def marc21_authority(by_tag: dict[str, list[Field]], source: str, local_id: str, warnings: list[str]) -> Record:
    """A MARC 21 authority record (leader/06 z)."""
    rec = _authority(source, local_id, "marc21", warnings, by_tag, _MARC21_TYPES, "d", "MARC 21", leader6="z")
    rec.lccns, rec.other_ids = _ids_from(by_tag, rec.control_number, _control(by_tag, "003"))
    return rec


def unimarc_authority(by_tag: dict[str, list[Field]], source: str, local_id: str,
                      warnings: list[str], record_format: str) -> Record:
    """A UNIMARC/CNMARC authority record (leader/06 x); ``$A`` pinyin forms become see-froms."""
    rec = _authority(source, local_id, record_format, warnings, by_tag, _UNIMARC_TYPES, "f", "UNIMARC", skip="A",
                     leader6="x")
    agency = next((normalize_space(s.value) for f in by_tag.get("801", ()) for s in f.subfields
                   if s.code == "b" and s.value.strip()), "")
    rec.lccns, rec.other_ids = _ids_from(by_tag, rec.control_number, agency)
    isni = [f"isni:{s.value.replace(' ', '')}" for f in by_tag.get("010", ()) for s in f.subfields
            if s.code == "a" and s.value.strip()]
    rec.lccns = []   # UNIMARC 010 is the ISNI, not an LCCN
    rec.other_ids = unique(isni + rec.other_ids)
    pinyin = [clean(" ".join(s.value for s in f.subfields if s.code == "A"))
              for t in by_tag if t[1:] in {k[1:] for k in _UNIMARC_TYPES} and t[0] in "247" for f in by_tag[t]]
    rec.see_from = unique(rec.see_from + [p.rstrip(",") for p in pinyin if p and p != rec.heading])
    return rec
