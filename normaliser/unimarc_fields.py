"""UNIMARC field mappings: names, subjects, classifications, series and the record format.

Each function reads one group of UNIMARC/CNMARC fields (grouped by tag) and
returns plain values for :func:`normaliser.unimarc.to_record`; the tables
beside them say which tags mean what.
"""
from __future__ import annotations

from collections.abc import Iterable

from pymarc import Field, Indicators, Subfield

from .authority import heading_ids
from .fields import first as _first, unique as _unique
from .model import Classification, Contributor
from .text import clean, normalize_space


def values(field: Field, codes: str) -> list[str]:
    """Every value of the subfields named in ``codes``, in field order."""
    return [s.value for s in field.subfields if s.code in codes]


def joined(values: Iterable[str], sep: str = " ") -> str:
    """Cleaned non-empty values joined with ``sep`` (ISBD punctuation trimmed by ``clean``)."""
    return clean(sep.join(v for v in (clean(x) for x in values) if v))


def embedded(field: Field) -> Field:
    """A 4XX linking field with embedded fields ($1 200…$a): the embedded title field as a Field."""
    subs = field.subfields
    if not any(s.code == "1" for s in subs):
        return field
    out: list[Subfield] = []
    inside = False
    for s in subs:
        if s.code == "1":
            inside = s.value[:3] in ("200", "225", "500", "530")
            continue
        if inside:
            out.append(s)
    return Field(field.tag, Indicators(" ", " "), out)


_PERSON = {"700": True, "701": False, "702": False}
_CORPORATE = {"710": True, "711": False, "712": False}
_FAMILY = {"720": True, "721": False, "722": False}


def person_name(field: Field) -> str:
    """7X0/7X1/7X2 personal name: "$a, $b" (or $g), then dates and qualifiers ($d $c $f)."""
    a = clean(_first(field, "a"))
    b = clean(" ".join(values(field, "b"))) or clean(" ".join(values(field, "g")))
    name = f"{a}, {b}" if a and b else a or b
    extras = [clean(v) for v in values(field, "dcf") if clean(v)]
    return clean(" ".join([name, *extras])) if extras else name


def contributors(by_tag: dict[str, list[Field]]) -> list[Contributor]:
    """7XX names, main responsibility (700/710/720) first; 701 is primary when there is no 700."""
    out: list[Contributor] = []
    seen: set[tuple[str, str]] = set()

    def add(name: str, field: Field, kind: str, primary: bool) -> None:
        if not name or (name, kind) in seen:
            return
        seen.add((name, kind))
        role = ", ".join(_unique(normalize_space(v) for v in values(field, "4")))
        out.append(Contributor(name=name, role=role, kind=kind, primary=primary, ids=heading_ids(field, "3")))

    for tag in ("700", "710", "720", "701", "711", "721", "702", "712", "722"):
        for field in by_tag.get(tag, ()):
            if tag in _PERSON:
                add(person_name(field), field, "person", _PERSON[tag])
            elif tag in _CORPORATE:
                kind = "meeting" if field.indicator1 == "1" else "organisation"
                name = joined(values(field, "abcdefgh"))
                add(name, field, kind, _CORPORATE[tag])
            else:
                add(joined(values(field, "af")), field, "organisation", _FAMILY[tag])
    if out and not any(c.primary for c in out):
        out[0].primary = True        # 701: "alternative" main responsibility when there is no 700
    return out


SUBJECT_TAGS = ("600", "601", "602", "604", "605", "606", "607", "608", "610", "615", "616", "617")
_SUBDIVISIONS = "jxyz"


def subject(field: Field) -> str:
    """One 6XX heading as "main -- subdivision -- …" (control and CNMARC pinyin subfields skipped)."""
    main: list[str] = []
    parts: list[str] = []
    names = field.tag in ("600", "602", "700")
    for sub in field.subfields:
        code = sub.code
        if code.isdigit() or code in "234" or code.isupper():
            continue
        if code in _SUBDIVISIONS:
            parts.append(clean(sub.value))
        elif not parts:
            if names and code == "b" and main:
                main[-1] = main[-1] + ","
            main.append(sub.value)
    return " -- ".join(p for p in [clean(" ".join(main))] + parts if p)


_CLASS_TAGS = {"675": "udc", "676": "ddc", "680": "lcc", "690": "clc", "692": "cas", "694": "ruc"}


def classifications(by_tag: dict[str, list[Field]]) -> list[Classification]:
    """UDC, DDC, LCC, CNMARC CLC/CAS/RUC and 686 local schemes, each (scheme, number) once."""
    out: list[Classification] = []
    for tag, scheme in _CLASS_TAGS.items():
        for field in by_tag.get(tag, ()):
            numbers = [normalize_space(v) for v in values(field, "a")]
            if tag == "680" and numbers and _first(field, "b"):
                numbers[0] = f"{numbers[0]} {normalize_space(_first(field, 'b'))}"
            out.extend(Classification(scheme, v) for v in numbers if v)
    for field in by_tag.get("686", ()):
        source = _first(field, "2").strip().casefold()
        scheme = "clc" if source.startswith("clc") or "中图" in source else (source or "other")
        out.extend(Classification(scheme, v) for v in map(normalize_space, values(field, "a")) if v)
    unique: dict[tuple[str, str], Classification] = {}
    for c in out:
        unique.setdefault((c.scheme, c.value), c)
    return list(unique.values())


def series(by_tag: dict[str, list[Field]]) -> list[str]:
    """225 series statements and 410 linked series ("title ; volume")."""
    out = []
    for field in by_tag.get("225", ()):
        title = joined(values(field, "a"))
        volume = joined(values(field, "v"))
        out.append(f"{title} ; {volume}" if title and volume else title)
    for field in by_tag.get("410", ()):
        inner = embedded(field)
        title = joined(values(inner, "ta"))
        volume = joined(values(inner, "v"))
        out.append(f"{title} ; {volume}" if title and volume else title)
    return _unique(out, fold=True)


_SERIAL_LEVELS = ("s", "i")
_FORMATS = {"b": "manuscript", "c": "score", "d": "score", "e": "map", "f": "map", "g": "video",
            "i": "recording", "j": "music-recording", "k": "image", "m": "kit", "r": "other"}


def format_of(leader: str, by_tag: dict[str, list[Field]]) -> str:
    """The ``Record.format`` from leader/06-07, 106 (form of item) and 135 (electronic resources)."""
    kind, level = leader[6:7], leader[7:8]
    forms = {(_first(f, "a") or " ")[:1] for f in by_tag.get("106", ())}
    if kind == "a":
        electronic = "s" in forms or any(_first(f, "a")[:1] == "d" for f in by_tag.get("135", ()))
        if level in _SERIAL_LEVELS:
            return "eserial" if electronic else "serial"
        if level == "a":
            return "article"
        if "g" in forms:
            return "microform"
        return "ebook" if electronic else "book"
    if kind == "l":
        return "eserial" if level in _SERIAL_LEVELS else "software"
    return _FORMATS.get(kind, "book" if not kind.strip() else "other")
