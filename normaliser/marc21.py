"""MARC 21 bibliographic records (ISO 2709 or MARCXML) → ``Record``.

Reading bytes is done by :mod:`normaliser.iso2709` and
:mod:`normaliser.marcxml`, which both give a ``pymarc.Record``; this module
maps its fields to the ``Record`` model.  It walks the fields once, grouping
them by tag, because that is most of the cost of normalising a large
harvest; each group of tags then has one small function.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pymarc import Field
from pymarc import Record as MarcRecord

from . import identifiers
from .errors import RecordError
from . import manifestation
from .formats import marc_format
from .quality import BLANK_LEADER_06
from .holdings import extract_holdings
from .authority import heading_ids, marc21_authority
from .mfhd import HOLDINGS_TYPES, to_holdings_record
from .model import Classification, Contributor, ParallelField, Record
from .text import clean, normalize_space
from .fields import MAX_YEAR, first as _first, group_fields, issns_in, unique as _unique, year_in as _year

if TYPE_CHECKING:
    from consortium.presets import HoldingsMapping

__all__ = ["to_record", "NOT_BIBLIOGRAPHIC"]

#: leader/06 values of MARC 21 records that are not bibliographic.
NOT_BIBLIOGRAPHIC = {
    "u": "holdings", "v": "holdings", "x": "holdings", "y": "holdings",
    "z": "authority", "w": "classification", "q": "community information",
}

_MAX_NOTES = 5


def _values(field: Field, codes: str) -> list[str]:
    return [s.value for s in field.subfields if s.code in codes]


def _joined(field: Field, codes: str) -> str:
    return clean(" ".join(s.value for s in field.subfields if s.code in codes))


# --- identifiers -------------------------------------------------------------

def _identifiers(rec: Record, by_tag: dict[str, list[Field]], control_001: str, control_003: str) -> None:
    isbns, invalid = [], []
    for field in by_tag.get("020", ()):
        for sub in field.subfields:
            if sub.code == "a":
                number, given = identifiers.split_isbn(sub.value)
                if number:
                    isbns.append(number)
                elif given:
                    invalid.append(given)
            elif sub.code == "z":
                given = identifiers.split_isbn(sub.value)[1]
                if given:
                    invalid.append(given)
    rec.isbns, rec.invalid_isbns = _unique(isbns), _unique(invalid)

    rec.issns, rec.invalid_issns = issns_in(by_tag.get("022", ()))

    oclc = []
    if control_003.strip().upper() == "OCOLC" or control_001.lstrip().lower().startswith(("ocm", "ocn", "on")):
        oclc.append(identifiers.oclc_number(control_001, prefixed=False))
    for field in by_tag.get("035", ()):
        for value in _values(field, "a"):
            oclc.append(identifiers.oclc_number(value))
    rec.oclc_numbers = _unique(n for n in oclc if n)
    rec.lccns = _unique(n for f in by_tag.get("010", ()) for n in map(identifiers.lccn, _values(f, "a")) if n)


# --- description ---------------------------------------------------------------

def _title(rec: Record, by_tag: dict[str, list[Field]], parallel: list[ParallelField]) -> None:
    fields = by_tag.get("245")
    if fields:
        field = fields[0]
        rec.title = _joined(field, "a") or _joined(field, "k")
        rec.subtitle = _joined(field, "b")
        rec.part = _joined(field, "np")
        rec.responsibility = _joined(field, "c")
    if not rec.title:
        for p in parallel:
            if p.tag == "245":
                rec.title = p.text
                break
    if not rec.title:
        for tag in ("130", "240", "246"):
            for field in by_tag.get(tag, ()):
                rec.title = _joined(field, "a")
                if rec.title:
                    return


_NAME_CODES = {"100": "abcdqg", "110": "abcdgn", "111": "acdegnq"}
_ROLE_CODES = {"100": "e", "110": "e", "111": "j"}
_KINDS = {"00": "person", "10": "organisation", "11": "meeting"}


def _contributors(by_tag: dict[str, list[Field]]) -> list[Contributor]:
    out: list[Contributor] = []
    seen: set[tuple[str, str]] = set()
    for tags, primary in ((("100", "110", "111"), True), (("700", "710", "711"), False)):
        for tag in tags:
            base = "1" + tag[1:]
            for field in by_tag.get(tag, ()):
                name = _joined(field, _NAME_CODES[base])
                if not name:
                    continue
                kind = _KINDS[tag[1:]]
                if (name, kind) in seen:
                    continue
                seen.add((name, kind))
                role = ", ".join(_unique(clean(v) for v in _values(field, _ROLE_CODES[base])))
                if not role:
                    role = ", ".join(_unique(normalize_space(v) for v in _values(field, "4")))
                out.append(Contributor(name=name, role=role, kind=kind, primary=primary, ids=heading_ids(field)))
    return out


def _imprint(rec: Record, by_tag: dict[str, list[Field]], f008: str) -> None:
    f264 = by_tag.get("264", ())
    ordered = ([f for f in f264 if f.indicator2 == "1"] + list(by_tag.get("260", ()))
               + [f for f in f264 if f.indicator2 not in ("1", "4")])
    if ordered:
        rec.place = clean(_first(ordered[0], "a"))
        rec.publisher = clean(_first(ordered[0], "b"))
    date1 = f008[7:11]
    if len(date1) == 4 and date1.isdigit() and f008[6:7] not in ("b", "n", "|") and 1000 <= int(date1) <= MAX_YEAR:
        rec.year = int(date1)
        return
    for field in ordered + [f for f in f264 if f.indicator2 == "4"]:
        for value in _values(field, "c"):
            year = _year(value)
            if year:
                rec.year = year
                return


def _languages(by_tag: dict[str, list[Field]], f008: str) -> list[str]:
    codes = [f008[35:38]] if len(f008) >= 38 else []
    for field in by_tag.get("041", ()):
        for value in _values(field, "a"):
            value = value.strip()
            if len(value) > 3 and len(value) % 3 == 0 and value.isalpha():   # old style "engfre"
                codes.extend(value[i:i + 3] for i in range(0, len(value), 3))
            else:
                codes.append(value)
    return _unique(c.lower() for c in codes if len(c) == 3 and c.isascii() and c.isalpha() and c.lower() != "und")


_SUBDIVISIONS = "vxyz"
_SUBJECT_TAGS = ("600", "610", "611", "630", "650", "651", "655")


def _subject(field: Field) -> str:
    skip = "j4" if field.tag == "611" else "e4"
    main: list[str] = []
    parts: list[str] = []
    for sub in field.subfields:
        code = sub.code
        if code.isdigit() or code in skip:
            continue
        if code in _SUBDIVISIONS:
            parts.append(clean(sub.value))
        elif parts:                      # a main-portion subfield after a subdivision: keep order
            parts[-1] = clean(parts[-1] + " " + sub.value)
        else:
            main.append(sub.value)
    return " -- ".join(p for p in [clean(" ".join(main))] + parts if p)


def _subjects(by_tag: dict[str, list[Field]]) -> list[str]:
    return _unique((_subject(f) for tag in _SUBJECT_TAGS for f in by_tag.get(tag, ())), fold=True)


def _clc_scheme(source: str) -> str:
    folded = source.strip().casefold()
    if not folded:
        return "other"
    if folded.startswith("clc") or "中图" in folded:
        return "clc"
    return folded


def _classifications(by_tag: dict[str, list[Field]]) -> list[Classification]:
    out: list[Classification] = []
    for tag in ("050", "090"):
        for field in by_tag.get(tag, ()):
            numbers = [normalize_space(v) for v in _values(field, "a")]
            cutter = normalize_space(_first(field, "b"))
            if numbers and cutter:
                numbers[0] = f"{numbers[0]} {cutter}"
            out.extend(Classification("lcc", n) for n in numbers if n)
    for tag in ("082", "092"):
        for field in by_tag.get(tag, ()):
            # "/" and "'" are segmentation marks; "[E]", "B", "Fic" are juvenile shelving codes, not DDC.
            out.extend(Classification("ddc", v) for v in
                       (normalize_space(x.replace("/", "").replace("'", "")) for x in _values(field, "a"))
                       if v[:1].isdigit())
    for field in by_tag.get("080", ()):
        out.extend(Classification("udc", v) for v in map(normalize_space, _values(field, "a")) if v)
    for field in by_tag.get("084", ()):
        scheme = _clc_scheme(_first(field, "2"))
        out.extend(Classification(scheme, v) for v in map(normalize_space, _values(field, "a")) if v)
    unique: dict[tuple[str, str], Classification] = {}
    for c in out:
        unique.setdefault((c.scheme, c.value), c)
    return list(unique.values())


def _series_entry(title: str, volume: str) -> str:
    return f"{title} ; {volume}" if title and volume else title


def _series(by_tag: dict[str, list[Field]]) -> list[str]:
    out = [_series_entry(_joined(f, "a"), _joined(f, "v")) for f in by_tag.get("490", ())]
    for tag in ("800", "810", "811"):
        for field in by_tag.get(tag, ()):
            out.append(_series_entry(_joined(field, "tnp") or _joined(field, "abcdq"), _joined(field, "v")))
    out.extend(_series_entry(_joined(f, "anp"), _joined(f, "v")) for f in by_tag.get("830", ()))
    return _unique(out, fold=True)


def _parallel(by_tag: dict[str, list[Field]]) -> list[ParallelField]:
    out: list[ParallelField] = []
    for field in by_tag.get("880", ()):
        link = _first(field, "6")
        tag, _, rest = link.partition("-")
        script = rest.partition("/")[2].partition("/")[0] if "/" in rest else ""
        text = clean(" ".join(s.value for s in field.subfields if not s.code.isdigit()))
        if text:
            out.append(ParallelField(tag=tag.strip() if len(tag.strip()) == 3 else "", text=text, script=script))
    return out


def _format(leader: str, f008: str, by_tag: dict[str, list[Field]]) -> str:
    f007 = [f.data or "" for f in by_tag.get("007", ())]
    media = [v.strip().lower() for f in by_tag.get("337", ()) for v in _values(f, "b")]
    carriers = [v.strip().lower() for f in by_tag.get("338", ()) for v in _values(f, "b")]
    accompanying = any(_values(f, "e") for f in by_tag.get("300", ()))
    return marc_format(leader, f008, f007, media, carriers, accompanying, manifestation.gmd(by_tag))


# --- the whole record -----------------------------------------------------------

def to_record(marc: MarcRecord, source: str, local_id: str, holdings: Sequence["HoldingsMapping"] = (),
              warnings: Sequence[str] = (), by_tag: dict[str, list[Field]] | None = None) -> Record:
    """Map a MARC 21 bibliographic or holdings record; RecordError for other kinds or title-less records."""
    leader = str(marc.leader)
    if by_tag is None:
        by_tag = group_fields(marc)
    if leader[6:7] in HOLDINGS_TYPES:
        return to_holdings_record(marc, by_tag, source, local_id, list(warnings))
    if leader[6:7] == "z":
        return marc21_authority(by_tag, source, local_id, list(warnings))
    kind = NOT_BIBLIOGRAPHIC.get(leader[6:7])
    if kind:
        raise RecordError(f"MARC 21 {kind} record (leader/06 {leader[6]!r}), not a bibliographic record")

    def control(tag: str) -> str:
        fields = by_tag.get(tag)
        return (fields[0].data or "") if fields else ""

    f008 = control("008")
    rec = Record(source=source, local_id=local_id, record_format="marc21", warnings=list(warnings))
    rec.control_number = control("001").strip()
    _identifiers(rec, by_tag, rec.control_number, control("003"))
    rec.parallel = _parallel(by_tag)
    _title(rec, by_tag, rec.parallel)
    if not rec.title:
        hint = f"; {rec.warnings[-1]}" if rec.warnings else ""
        raise RecordError(f"no title: 245 $a (and 880/130/240/246) missing or empty{hint}")
    rec.contributors = _contributors(by_tag)
    rec.edition = clean(" ".join(_joined(f, "ab") for f in by_tag.get("250", ())[:1]))
    _imprint(rec, by_tag, f008)
    rec.extent = clean(" ".join(_values(by_tag["300"][0], "a"))) if "300" in by_tag else ""
    rec.languages = _languages(by_tag, f008)
    rec.format = _format(leader, f008, by_tag)
    if rec.format == "other":
        rec.warnings.append(f"{BLANK_LEADER_06} ({leader[6:7]!r}): the format is unknown, compared as any")
    rec.years = manifestation.imprint_years(by_tag, f008)
    rec.printing = manifestation.printing_statement(by_tag)
    rec.isbn_parts = manifestation.isbn_parts(by_tag)
    rec.carrier = manifestation.carrier(by_tag, f008) if rec.format in ("book", "other") else ""
    rec.subjects = _subjects(by_tag)
    rec.classifications = _classifications(by_tag)
    rec.series = _series(by_tag)
    rec.summary = clean(" ".join(v for f in by_tag.get("520", ()) for v in _values(f, "ab")))
    rec.notes = _unique(n for n in (_joined(f, "a") for f in by_tag.get("500", ())[:_MAX_NOTES * 2]) if n)[:_MAX_NOTES]
    rec.urls = _unique(v.strip() for f in by_tag.get("856", ()) for v in _values(f, "u"))
    rec.holdings = extract_holdings(by_tag, holdings, source, local_id)
    return rec
