"""A MARC 21 record rewritten as the CNMARC record a Chinese ILS would export (for the demo).

``to_cnmarc(rec, local_id)`` crosswalks one MARC 21 bibliographic record to
CNMARC and writes it as ISO 2709 in GBK the way legacy Huiwen/ILAS exports
look: leader/09 blank, 100 $a/26-29 ``0120`` (ISO 646 + GB 2312), 010 ISBN
with price, 200 $a/$e/$f, 205, 210, 215, 690 CLC when the record has one (084
$2 clc), 701/702 names, 801 and 905 holdings (library, accession number, call
number as $d/$e and $s).  Normalised with format ``cnmarc`` (or ``auto``) it
gives the same ISBN-13 and the same match keys as the MARC 21 original, so both
land in one cluster.

Characters GBK cannot encode (accented Latin letters outside GB 2312, rare
Han characters) are written as ``?``: a real GBK export loses them the same way.
"""
from __future__ import annotations

import datetime
import re

from pymarc import Record

__all__ = ["to_cnmarc"]

_FT, _RT, _SF = b"\x1e", b"\x1d", b"\x1f"
_ISBD_END = re.compile(r"[\s/:;,=.]+$")


def _clean(text: str) -> str:
    return _ISBD_END.sub("", " ".join((text or "").split())).strip()


def _first(rec: Record, tag: str, code: str) -> str:
    for field in rec.get_fields(tag):
        for value in field.get_subfields(code):
            if value.strip():
                return _clean(value)
    return ""


def _control(rec: Record, tag: str) -> str:
    fields = rec.get_fields(tag)
    return (fields[0].data or "") if fields and fields[0].is_control_field() else ""


def _vernacular(rec: Record, tag: str):
    """The 880 field carrying ``tag`` in its original script (``$6 245-01``), if any."""
    for field in rec.get_fields("880"):
        link = field.get("6") or ""
        if link.startswith(tag + "-"):
            return field
    return None


def _field(ind: str, subfields: list[tuple[str, str]]) -> bytes | None:
    subfields = [(c, v) for c, v in subfields if v]
    if not subfields:
        return None
    return ind.encode("ascii") + b"".join(_SF + c.encode("ascii") + v.encode("gbk", "replace") for c, v in subfields)


def _iso2709(leader: str, fields: list[tuple[str, bytes]]) -> bytes:
    directory = b""
    data = b""
    for tag, body in fields:
        body += _FT
        directory += f"{tag}{len(body):04d}{len(data):05d}".encode("ascii")
        data += body
    directory += _FT
    base = 24 + len(directory)
    length = base + len(data) + 1
    head = f"{length:05d}{leader[5:12]}{base:05d}{leader[17:24]}".encode("ascii")
    return head + directory + data + _RT


def _name(name: str) -> list[tuple[str, str]]:
    name = _clean(name)
    if "," in name:
        surname, _, rest = name.partition(",")
        return [("a", surname.strip()), ("b", _clean(rest))]
    return [("a", name)]


def to_cnmarc(rec: Record, local_id: str, library: str = "DEMO", accession: str | None = None) -> bytes:
    """``rec`` (MARC 21) as a CNMARC ISO 2709 record in GBK; ``local_id`` becomes 001."""
    date1, entered = _date1(rec), datetime.date.today().strftime("%Y%m%d")
    f008 = _control(rec, "008")
    lang = f008[35:38] if len(f008) >= 38 and f008[35:38].strip() else ""
    f100 = f"{entered}{'d' if date1 else 'u'}{(date1 or '    '):4}    km y0chiy0120    ea"
    assert len(f100) == 36, f100
    fields: list[tuple[str, bytes | None]] = [("001", local_id.encode("ascii", "replace")), *_isbns(rec),
                                              ("100", _field("  ", [("a", f100)]))]
    if lang:
        fields.append(("101", _field("0 ", [("a", lang)])))
    fields += _description(rec, date1)
    clc = _clc(rec)
    if clc:
        fields.append(("690", _field("  ", [("a", clc), ("v", "5")])))
    fields += _names(rec)
    fields.append(("801", _field(" 0", [("a", "CN"), ("b", library), ("c", entered)])))
    fields.append(_holding(rec, local_id, library, accession, clc))
    leader = "00000nam0 2200000   450 "
    return _iso2709(leader, [(t, b) for t, b in fields if b])


def _date1(rec: Record) -> str:
    """The publication year: 008/07-10, else the first four digits of 264/260 $c."""
    f008 = _control(rec, "008")
    if len(f008) >= 11 and f008[7:11].isdigit():
        return f008[7:11]
    for tag in ("264", "260"):
        m = re.search(r"\d{4}", _first(rec, tag, "c"))
        if m:
            return m.group(0)
    return ""


def _isbns(rec: Record) -> list[tuple[str, bytes | None]]:
    """010 per ISBN; the price goes with the first ISBN only."""
    out, price = [], _first(rec, "020", "c")
    for field in rec.get_fields("020"):
        for value in field.get_subfields("a"):
            out.append(("010", _field("  ", [("a", value.strip().split(" ", 1)[0]), ("d", price)])))
            price = ""
    return out


def _description(rec: Record, date1: str) -> list[tuple[str, bytes | None]]:
    """200 title, 205 edition, 210 imprint, 215 extent."""
    fields: list[tuple[str, bytes | None]] = []
    f245 = _vernacular(rec, "245") or (rec.get_fields("245") or [None])[0]
    if f245 is not None:
        # A Chinese ILS catalogues a Chinese book in Han script (LoC keeps it in 880, with a
        # romanised 245): take the original script when there is one, the romanisation as $A.
        part = _clean(" ".join(f245.get_subfields("n", "p")))
        romanised = _first(rec, "245", "a") if f245.tag == "880" else ""
        fields.append(("200", _field("1 ", [("a", _clean(" ".join(f245.get_subfields("a")))),
                                            ("A", _clean(romanised)),
                                            ("e", _clean(" ".join(f245.get_subfields("b")))),
                                            ("i", part),
                                            ("f", _clean(" ".join(f245.get_subfields("c"))))])))
    fields.append(("205", _field("  ", [("a", _first(rec, "250", "a"))])))
    imprint = "264" if rec.get_fields("264") else "260"
    pub = _vernacular(rec, imprint)
    fields.append(("210", _field("  ", [("a", _clean(pub.get("a", "")) if pub else _first(rec, imprint, "a")),
                                        ("c", _clean(pub.get("b", "")) if pub else _first(rec, imprint, "b")),
                                        ("d", date1)])))
    fields.append(("215", _field("  ", [("a", _first(rec, "300", "a")), ("d", _first(rec, "300", "c"))])))
    return fields


def _clc(rec: Record) -> str:
    """The Chinese Library Classification number of an 084 whose $2 says CLC (中图), or ''."""
    for field in rec.get_fields("084"):
        if any(s.strip().lower().startswith("clc") or "中图" in s for s in field.get_subfields("2")):
            return _clean(" ".join(field.get_subfields("a")[:1]))
    return ""


def _names(rec: Record) -> list[tuple[str, bytes | None]]:
    """701/711 for the main entry (Han script when there is one), 702 for each added personal name."""
    fields: list[tuple[str, bytes | None]] = []
    main = [f for t in ("100", "110", "111") for f in rec.get_fields(t)]
    for field in main[:1]:
        field = _vernacular(rec, field.tag) or field
        tag = field.tag if field.tag != "880" else field["6"][:3]
        fields.append(("701" if tag == "100" else "711", _field(
            " 0" if tag == "100" else "02", _name(" ".join(field.get_subfields("a"))) if tag == "100"
            else [("a", _clean(" ".join(field.get_subfields("a", "b"))))])))
    for field in rec.get_fields("700"):
        fields.append(("702", _field(" 0", _name(" ".join(field.get_subfields("a"))))))
    return fields


def _holding(rec: Record, local_id: str, library: str, accession: str | None, clc: str) -> tuple[str, bytes | None]:
    """905, Huiwen's holding field: library, accession number, call number (CLC + book number, else LCC)."""
    digits = re.sub(r"\D", "", local_id) or "1"
    if clc:
        book_number = str(int(digits[-4:]))
        call = [("d", clc), ("e", book_number), ("s", f"{clc}/{book_number}")]
    else:
        lcc = _clean(" ".join(v for f in rec.get_fields("050", "090") for v in f.get_subfields("a", "b")))
        call = [("s", lcc)]
    return ("905", _field("  ", [("a", library), ("b", accession or f"A{digits[-8:]:0>8}"), *call]))
