"""UNIMARC and CNMARC (the Chinese UNIMARC profile) → ``Record``.

Reading: ISO 2709 structure as for MARC 21 (:func:`normaliser.iso2709.read_directory`),
but the character set is not in leader/09 (UNIMARC leaves it undefined): it is
in field 100 $a positions 26–29 (``01`` ISO 646, ``03`` ISO 5426, ``50``
ISO 10646/UTF-8, CNMARC ``20`` GB 2312).  Members get this wrong too, so as
for MARC 21 the declaration is the default and the bytes have the final word,
field by field: ASCII, then valid UTF-8, then the declared set, then GBK/
GB18030 when the bytes read strictly as Chinese, then a single clearly
Russian 8-bit code page (CP866/CP1251/KOI8-R, as RUSMARC exports come).  What
none of those explains is replaced by U+FFFD with a warning, or — when it is
more than :data:`normaliser.iso2709.GARBAGE_RATIO` of the record — the record is
rejected with the reason.

Mapping (UNIMARC Bibliographic, 3rd ed. and updates; CNMARC additions noted):
001; 010 ISBN ($a, $b qualification, $d price, $z erroneous); 011 ISSN; 035;
091 China unified book number (统一书号); 099 CALIS record number; 100 dates
and character sets; 101 language; 102 country; 105/106 for the format; 200
title ($a $e $f $g $h $i; CNMARC pinyin in $A…/$9); 205 edition; 210/214
publication; 215 extent; 225/410 series; 3XX notes (330 summary); 500/510/517
(and 5XX) other titles; 600–608 subjects; 675/676/680/686 and CNMARC 690
(CLC, 中图法), 692 (CAS, 科图法), 694 (RUC, 人大法) classifications; 700–722
names; 801 cataloguing source; 856; holdings fields by mapping (905/906/995…).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pymarc import Field
from pymarc import Record as MarcRecord
from pymarc.leader import Leader

from . import identifiers
from .charset import undo_double_utf8, cyrillic_decode, gb_decode, iso5426_to_str, marc8_to_str, marc8_unmapped
from .errors import RecordError
from .authority import unimarc_authority
from .holdings import extract_holdings
from .iso2709 import GARBAGE_RATIO, decoded_field
from .model import Record
from .text import clean, has_han, normalize_space
from .fields import MAX_YEAR, first as _first, group_fields, issns_in, is_utf8 as _is_utf8, unique as _unique, \
    year_in as _year
from .unimarc_fields import SUBJECT_TAGS, classifications, contributors, format_of, joined, series, subject, values

if TYPE_CHECKING:
    from consortium.presets import HoldingsMapping

__all__ = ["decode", "to_record", "charset_codes", "CHARSETS"]

#: UNIMARC 100 $a/26-29 character set codes (G0 in 26-27, G1 in 28-29).
CHARSETS = {
    "01": "ISO 646", "02": "ISO 2022 registration #37 (Cyrillic)", "03": "ISO 5426", "04": "ISO 5427 (Cyrillic)",
    "05": "ISO 5428 (Greek)", "06": "ISO 6438 (African)", "07": "ISO 10586 (Georgian)",
    "08": "ISO 8957 (Hebrew) table 1", "09": "ISO 8957 (Hebrew) table 2", "11": "ISO 5426-2",
    "20": "GB 2312", "50": "ISO 10646 (Unicode)",
}
_MAX_NOTES = 5

#: leader/06 of UNIMARC records that are not bibliographic (authorities, classification, holdings).
NOT_BIBLIOGRAPHIC = {"x": "authority", "y": "authority", "z": "authority", "w": "classification",
                     "u": "holdings", "v": "holdings"}


def charset_codes(field100_a: str | None) -> tuple[str, str]:
    """The G0 and G1 character set codes from 100 $a/26-29 (``""`` when absent or not a code)."""
    if not field100_a or len(field100_a) < 28:
        return "", ""
    g0, g1 = field100_a[26:28], field100_a[28:30]
    return (g0 if g0 in CHARSETS else "", g1 if g1 in CHARSETS else "")


# --- reading ISO 2709 ----------------------------------------------------------------

def _declared_charset(codes: tuple[str, str]) -> str:
    if "50" in codes:
        return "utf-8"
    if "20" in codes:
        return "gb18030"
    if "03" in codes or "11" in codes:
        return "iso5426"
    if codes[0] in ("02", "04") or codes[1] in ("02", "04"):
        return "cyrillic"
    return "ascii" if codes[0] == "01" else ""


def decode(leader: str, entries: list[tuple[str, bytes]], warnings: list[str],
           field100_a: str | None, texts: list[str] | None = None) -> tuple[MarcRecord, list[str]]:
    """Decode the fields of a UNIMARC record read by :func:`normaliser.iso2709.read_directory`
    (``texts`` as :func:`normaliser.iso2709.decode` fills it)."""
    codes = charset_codes(field100_a)
    declared = _declared_charset(codes)
    record = MarcRecord(leader=leader)
    record.leader = Leader(leader)
    fields = record.fields
    damaged = 0
    repaired: dict[str, list[str]] = {}
    record_codec: str | None = None    # a legacy code page found once holds for the whole record
    gb_record = declared == "gb18030" or any(
        not data.isascii() and not _is_utf8(data) and gb_decode(data) for _, data in entries)
    for tag, data in entries:
        if data.isascii():
            text = data.decode("ascii")
        elif gb_record and (han := _gb_not_utf8(data)):
            text = han
        elif _is_utf8(data):
            text = data.decode("utf-8")
            fixed = undo_double_utf8(text) if "\u00c2" <= max(text) else text
            if fixed != text:
                text = fixed
                repaired.setdefault("double-encoded UTF-8", []).append(tag)
            elif declared not in ("utf-8", ""):
                repaired.setdefault("UTF-8", []).append(tag)
        else:
            text, how, bad = _decode_legacy(data, declared, record_codec)
            if how in ("GB18030", "CP866", "CP1251", "KOI8_R"):
                record_codec = how.lower()
            damaged += bad
            if how != {"gb18030": "GB18030", "iso5426": "ISO 5426"}.get(declared):
                repaired.setdefault(how, []).append(tag)
        fields.append(decoded_field(tag, text))
        if texts is not None:
            texts += tag, text
    if damaged:
        chars = sum(len(data) for _, data in entries)
        if damaged > GARBAGE_RATIO * chars:
            said = f"100 $a/26-29 {''.join(codes)!r}" if any(codes) else "no character set in 100 $a/26-29"
            raise RecordError(f"character set unknown: {damaged} characters in {chars} bytes of field data "
                              f"decode as none of UTF-8, GB18030, ISO 5426 or a Cyrillic code page ({said})")
    flag = "/".join(CHARSETS[c] for c in codes if c) or "no character set"
    for how, tags in repaired.items():
        listed = ", ".join(dict.fromkeys(tags[:8])) + ("…" if len(tags) > 8 else "")
        if how == "damaged":
            warnings.append(f"undecodable characters replaced in fields {listed} (100 $a/26-29 says {flag})")
        elif how == "double-encoded UTF-8":
            warnings.append(f"double-encoded UTF-8 repaired in fields {listed}")
        else:
            warnings.append(f"fields {listed} read as {how} although 100 $a/26-29 says {flag}")
    return record, warnings


def _gb_not_utf8(data: bytes) -> str | None:
    """The GB reading of bytes that are also valid UTF-8, when only GB gives Han text.

    GBK '页' (D2 B3) is valid UTF-8 too ('ҳ'): in a record that is GB (declared in 100 $a/26-29, or
    other fields only read as GB) the reading that gives Chinese is the right one — unless the UTF-8
    reading is Latin text with accents ('é' is C3 A9, '茅' in GBK), which a member's UTF-8 field is.
    """
    if not _is_utf8(data):
        return None
    text = data.decode("utf-8")
    if has_han(text) or any("\u00a0" <= ch <= "\u036f" for ch in text):
        return None
    return gb_decode(data)


def _decode_legacy(data: bytes, declared: str, record_codec: str | None) -> tuple[str, str, int]:
    """``(text, how, damaged)`` for field bytes that are neither ASCII nor UTF-8."""
    if declared == "iso5426" and record_codec is None:
        text, bad = iso5426_to_str(data)
        if not bad:
            return text, "ISO 5426", 0
    if record_codec == "gb18030" or declared == "gb18030" or record_codec is None:
        text = gb_decode(data, declared="gb18030" in (declared, record_codec))
        if text is not None:
            return text, "GB18030", 0
    if record_codec in ("cp866", "cp1251", "koi8_r"):
        try:
            return data.decode(record_codec), record_codec.upper(), 0
        except UnicodeDecodeError:
            pass
    if declared == "iso5426":
        text, bad = iso5426_to_str(data)
        if not bad:
            return text, "ISO 5426", 0
    found = cyrillic_decode(data)
    if found is not None:
        return found[0], found[1].upper(), 0
    if declared in ("ascii", "iso5426", "") and b"\x1b" in data and marc8_unmapped(data) == 0:
        return "\x1f".join(marc8_to_str(p) for p in data.split(b"\x1f")), "MARC-8", 0
    text = data.decode("utf-8", "replace")
    return text, "damaged", max(1, text.count("\ufffd"))


# --- mapping -----------------------------------------------------------------------------

def _identifiers(rec: Record, by_tag: dict[str, list[Field]]) -> None:
    isbns, invalid, prices, quals = [], [], [], []
    for field in by_tag.get("010", ()):
        for sub in field.subfields:
            if sub.code == "a":
                number, given = identifiers.split_isbn(sub.value)
                if number:
                    isbns.append(number)
                elif given:
                    invalid.append(given)
                # CNMARC cataloguers often write the qualification in $a: "7-5037-1744-0 (平装)".
                rest = sub.value[len(given):].strip() if number and sub.value.strip().startswith(given) else ""
                if rest:
                    quals.append(clean(rest.strip("()（） ")))
            elif sub.code == "z":
                given = identifiers.split_isbn(sub.value)[1]
                if given:
                    invalid.append(given)
            elif sub.code == "b":
                quals.append(clean(sub.value.strip("()（） ")))
            elif sub.code == "d":
                prices.append(normalize_space(sub.value))
    rec.isbns, rec.invalid_isbns = _unique(isbns), _unique(invalid)
    rec.price = "; ".join(_unique(p for p in prices if p))
    rec.isbn_qualifiers = _unique(q for q in quals if q)

    rec.issns, rec.invalid_issns = issns_in(by_tag.get("011", ()))

    oclc, other = [], []
    for field in by_tag.get("035", ()):
        for value in values(field, "a"):
            number = identifiers.oclc_number(value)
            if number:
                oclc.append(number)
            elif value.strip():
                other.append("system:" + normalize_space(value))
    for field in by_tag.get("091", ()):
        other.extend("csbn:" + normalize_space(v) for v in values(field, "a") if v.strip())
    for field in by_tag.get("099", ()):
        for value in values(field, "a"):
            value = normalize_space(value)
            if value.upper().startswith("CAL"):
                other.append("calis:" + value)
            elif value:
                other.append("local:" + value)
    for field in by_tag.get("020", ()):     # 020 national bibliography number ($a country, $b number)
        for value in values(field, "b"):
            if value.strip():
                other.append(f"nbn:{normalize_space(_first(field, 'a'))}:{normalize_space(value)}".replace("::", ":"))
    rec.oclc_numbers = _unique(oclc)
    rec.other_ids = _unique(other)


#: Upper-case subfields that CNMARC uses for the pinyin of the lower-case one ($A for $a …).
def _pinyin_of(field: Field, code: str) -> str:
    return joined(values(field, code.upper()))


def _title(rec: Record, by_tag: dict[str, list[Field]]) -> None:
    fields = by_tag.get("200")
    if fields:
        field = fields[0]
        titles = [clean(v) for v in values(field, "a")]
        rec.title = " ; ".join(t for t in titles if t)
        if not rec.title:
            rec.title = joined(values(field, "c"), " . ")
        rec.subtitle = joined(values(field, "e"), " : ")
        rec.part = joined([" ".join(values(field, "h")), " ".join(values(field, "i"))], ". ")
        rec.responsibility = joined(values(field, "fg"), " ; ")
        pinyin = _pinyin_of(field, "a") or joined(values(field, "9"))
        rec.title_pinyin = pinyin
        rec.other_titles.extend(clean(v) for v in values(field, "d"))
        if not rec.title:
            _title_without_200a(rec)
    other = []
    for tag in ("500", "510", "512", "513", "514", "515", "516", "517", "518", "530", "531", "532", "540", "541"):
        for field in by_tag.get(tag, ()):
            title = joined(values(field, "a"))
            extra = joined(values(field, "e"), " : ")
            if title:
                other.append(f"{title} : {extra}" if extra else title)
    rec.other_titles = _unique([*rec.other_titles, *other], fold=True)
    if not rec.title and rec.other_titles:
        rec.title = rec.other_titles[0]


def _title_without_200a(rec: Record) -> None:
    """A 200 with no $a (nor $c): the section's own title, else the title's pinyin, with a warning.

    Sloppy CNMARC has such records — a part described alone (200 $i, no common title), or only the
    romanised $A/$9 kept — and they are real books a library holds: quarantining them for "no title"
    loses them from the catalogue, while the part or the pinyin still finds and identifies them.
    """
    if rec.part:
        rec.title, rec.part = rec.part, ""
        rec.warnings.append("200 has no $a: the section's title ($h/$i) taken as the title")
    elif rec.title_pinyin:
        rec.title = rec.title_pinyin
        rec.warnings.append("200 has no $a: the title's pinyin ($A/$9) taken as the title")


def _imprint(rec: Record, by_tag: dict[str, list[Field]], f100: str) -> None:
    f214 = by_tag.get("214", ())
    ordered = [*by_tag.get("210", ()), *[f for f in f214 if f.indicator2 in ("1", " ")],
               *[f for f in f214 if f.indicator2 not in ("1", " ")]]
    for field in ordered:
        place = clean(_first(field, "a"))
        publisher = clean(_first(field, "c"))
        if place or publisher:
            rec.place, rec.publisher = place, publisher
            break
    # 100 $a/08 type of date, /09-12 date 1 ("d1994", "e1994"; "a" for serials start year).
    date1 = f100[9:13]
    if len(date1) == 4 and date1.isdigit() and f100[8:9] not in ("", "u") and 1000 <= int(date1) <= MAX_YEAR:
        rec.year = int(date1)
        return
    for field in ordered:
        for value in values(field, "dh"):
            year = _year(value)
            if year:
                rec.year = year
                return


def is_cnmarc(by_tag: dict[str, list[Field]]) -> bool:
    """CNMARC rather than another UNIMARC: CNMARC-only tags, or a Chinese cataloguing agency."""
    if any(t in by_tag for t in ("091", "690", "692", "694", "905", "906")):
        return True
    return any(_first(f, "a").strip().upper() == "CN" for f in by_tag.get("801", ()))


def to_record(marc: MarcRecord, source: str, local_id: str, holdings: Sequence["HoldingsMapping"] = (),
              warnings: Sequence[str] = (), by_tag: dict[str, list[Field]] | None = None,
              record_format: str | None = None) -> Record:
    """Map a UNIMARC/CNMARC bibliographic record; RecordError for non-bibliographic or title-less ones."""
    leader = str(marc.leader)
    if by_tag is None:
        by_tag = group_fields(marc)
    fmt = record_format or ("cnmarc" if is_cnmarc(by_tag) else "unimarc")
    if leader[6:7] == "x":   # an authority record (y and z are reference and general explanatory entries)
        return unimarc_authority(by_tag, source, local_id, list(warnings), fmt)
    kind = NOT_BIBLIOGRAPHIC.get(leader[6:7])
    if kind:
        raise RecordError(f"UNIMARC {kind} record (leader/06 {leader[6]!r}), not a bibliographic record")
    rec = Record(source=source, local_id=local_id, record_format=fmt, warnings=list(warnings))
    f001 = by_tag.get("001")
    rec.control_number = (f001[0].data or "").strip() if f001 else ""
    f100 = ""
    for field in by_tag.get("100", ())[:1]:
        f100 = _first(field, "a")
    _identifiers(rec, by_tag)
    _title(rec, by_tag)
    if not rec.title:
        raise RecordError("no title: 200 $a (and 5XX titles) missing or empty")
    rec.contributors = contributors(by_tag)
    edition = by_tag.get("205", ())[:1]
    rec.edition = joined(values(edition[0], "abdf")) if edition else ""
    _imprint(rec, by_tag, f100)
    rec.years = sorted({y for y in [rec.year] + [_year(v) for f in (*by_tag.get("210", ()), *by_tag.get("214", ()))
                                                 for v in values(f, "dh")] if y})
    if "215" in by_tag:
        rec.extent = joined(values(by_tag["215"][0], "a"))
    langs = [v.strip().lower() for f in by_tag.get("101", ()) for v in values(f, "a")]
    rec.languages = _unique(c for c in langs if len(c) == 3 and c.isascii() and c.isalpha() and c != "und")
    rec.countries = _unique(v.strip().upper() for f in by_tag.get("102", ()) for v in values(f, "a") if v.strip())
    rec.format = format_of(leader, by_tag)
    rec.subjects = _unique((subject(f) for tag in SUBJECT_TAGS for f in by_tag.get(tag, ())), fold=True)
    rec.classifications = classifications(by_tag)
    rec.series = series(by_tag)
    rec.summary = joined(v for f in by_tag.get("330", ()) for v in values(f, "a"))
    notes = (joined(values(f, "a")) for tag in sorted(t for t in by_tag if t.startswith("3") and t != "330")
             for f in by_tag[tag])
    rec.notes = _unique(n for n in notes if n)[:_MAX_NOTES]
    rec.urls = _unique(v.strip() for f in by_tag.get("856", ()) for v in values(f, "u"))
    sources = [" ".join(normalize_space(v) for v in (_first(f, "a"), _first(f, "b")) if v.strip())
               for f in by_tag.get("801", ())]
    rec.cataloguing_source = next((s for s in sources if s), "")
    rec.holdings = extract_holdings(by_tag, holdings, source, local_id)
    return rec
