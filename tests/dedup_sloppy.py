"""A labelled dedupe set of sloppy cataloguing, built from real LoC records: one phenomenon per base book.

``sloppy_set(loc_path, out)`` takes real Library of Congress books (English
with an ISBN, Chinese with a Han 880 title) and writes member MARC files and
a gold standard.  Each base book is held as is by ``lib-a`` and gets exactly
one phenomenon, so recall and false merges can be counted per category:

positives (another member's copy of the same manifestation, must merge):
``printing-year`` (a year later, "[Y+1], cY" or plain), ``binding`` (hardback
and paperback ISBNs: one copy both, one each), ``reprint`` (same publisher
and ISBN, "Reprinted …" or "3rd printing" years later), ``one-year`` (no date
and no ISBN), ``no-author`` (no 1XX), ``typo`` (two letters swapped, no ISBN),
``blank-leader`` (leader/06 blank), ``print-as-ebook`` (007 cr and an 856 scan
link on a print record), ``chinese-part`` (a part of a Chinese set, its name
in Han in the CNMARC copy and in pinyin with an 880 in MARC 21).

negatives (another manifestation held by another member, must stay apart):
``set-volume`` (the set record "3 v." with a "(set)" ISBN; volume 2 named
only in 490 $v; volume 3 only in 300 "v. 3 (…)"; both carrying the set ISBN),
``audiobook`` / ``large-print`` / ``microform`` on the book template (same
ISBN), ``translation`` (Spanish, same title and author, no ISBN),
``reprint-other-publisher`` (the original's ISBN, another publisher, years
later), ``chinese-other-part`` (another part of the Chinese set).

The seeded RNG only picks members and spellings, so the set is the same on
every run.  Other held-out sets measure the same phenomena: nothing here is
tuned to one set's quirks.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from pymarc import Field, Subfield
from pymarc import Record as MarcRecord

from dedup_variants import _drop_control_ids, _first_isbn, _set_001, _set_isbn, _year, base_records, fake_isbn
from demo.cnmarc import to_cnmarc

POSITIVE = ("printing-year", "binding", "reprint", "one-year", "no-author", "typo", "blank-leader",
            "print-as-ebook")
NEGATIVE = ("set-volume", "audiobook", "large-print", "microform", "translation", "reprint-other-publisher")
CHINESE_PARTS = [("文物志", "Wen wu zhi"), ("人物志", "Ren wu zhi"), ("地理志", "Di li zhi"), ("教育志", "Jiao yu zhi")]


@dataclass
class SloppySet:
    folder: Path
    sources: list[dict]
    gold: dict[tuple[str, str], str] = field(default_factory=dict)
    kind: dict[str, str] = field(default_factory=dict)          # entity → its category
    negative_of: dict[tuple[str, str], str] = field(default_factory=dict)   # negative record → its category


def copy(rec: MarcRecord) -> MarcRecord:
    return MarcRecord(data=rec.as_marc(), to_unicode=True, force_utf8=True)


def set_dates(rec: MarcRecord, year: int | None, imprint: str | None = None, date2: int | None = None) -> None:
    """008 date 1 (type 't' with a copyright date 2, 'n' without a year) and every 260/264 $c."""
    f = rec["008"]
    kind = "n" if year is None else ("t" if date2 else "s")
    dates = (f"{year:04d}" if year else "uuuu") + (f"{date2:04d}" if date2 else "    ")
    f.data = f.data[:6] + kind + dates + f.data[15:]
    for imprint_field in rec.get_fields("260", "264"):
        subs = [s for s in imprint_field.subfields if s.code != "c"]
        if imprint:
            subs.append(Subfield("c", imprint))
        imprint_field.subfields = subs


def add(rec: MarcRecord, tag: str, *subfields: str, ind: str = "  ") -> None:
    pairs = [Subfield(subfields[i], subfields[i + 1]) for i in range(0, len(subfields), 2)]
    rec.add_ordered_field(Field(tag=tag, indicators=list(ind), subfields=pairs))


def set_008(rec: MarcRecord, position: int, value: str) -> None:
    f = rec["008"]
    f.data = f.data[:position] + value + f.data[position + len(value):]


def set_extent(rec: MarcRecord, text: str) -> None:
    for f in rec.get_fields("300"):
        rec.remove_field(f)
    add(rec, "300", "a", text)


def set_publisher(rec: MarcRecord, name: str) -> None:
    for f in rec.get_fields("260", "264"):
        f.subfields = [Subfield("b", name) if s.code == "b" else s for s in f.subfields]


def typo(rec: MarcRecord) -> None:
    """Swap two letters in the middle of the title's longest word."""
    f = rec["245"]
    words = f["a"].split()
    i = max(range(len(words)), key=lambda k: len(words[k]))
    w = words[i]
    if len(w) >= 4:
        m = len(w) // 2
        words[i] = w[:m - 1] + w[m] + w[m - 1] + w[m + 1:]
    f["a"] = " ".join(words)


def positive(base: MarcRecord, kind: str, n: int) -> list[MarcRecord]:
    """The other members' copies of ``base`` (``base`` itself may be changed: the binding's two ISBNs)."""
    rec = copy(base)
    _drop_control_ids(rec)
    year = _year(rec) or 2000
    isbn = _first_isbn(rec)
    if kind == "printing-year":
        set_dates(rec, year + 1, f"[{year + 1}], c{year}." if n % 2 else f"{year + 1}.", year if n % 2 else None)
    elif kind == "binding":
        paperback = fake_isbn(10_000 + n)
        _set_isbn(base, isbn, "(hardback)")
        add(base, "020", "a", f"{paperback} (pbk.)")
        other = copy(rec)
        _set_isbn(rec, isbn, "(hbk.)")
        _set_isbn(other, paperback, "(paperback)")
        return [rec, other]
    elif kind == "reprint":
        set_dates(rec, year + 4, f"{year + 4}, c{year}." if n % 2 else f"{year + 4}.")
        if n % 2:
            add(rec, "500", "a", f"Reprinted {year + 4}.")
        else:
            add(rec, "250", "a", "3rd printing.")
    elif kind == "one-year":
        set_dates(rec, None)
        _set_isbn(rec, None)
    elif kind == "no-author":
        for f in rec.get_fields("100", "110", "111", "700"):
            rec.remove_field(f)
        if n % 2:
            _set_isbn(rec, None)
    elif kind == "typo":
        typo(rec)
        _set_isbn(rec, None)
    elif kind == "blank-leader":
        rec.leader = rec.leader[:6] + " " + rec.leader[7:]
    elif kind == "print-as-ebook":
        rec.add_ordered_field(Field(tag="007", data="cr |n|||||||||"))
        add(rec, "856", "u", f"http://hdl.handle.net/2027/scan.{n}", "z", "Scanned copy", ind="41")
    return [rec]


def negative(base: MarcRecord, kind: str, n: int) -> list[MarcRecord]:
    """Other manifestations of ``base``, each its own entity."""
    rec = copy(base)
    _drop_control_ids(rec)
    year = _year(rec) or 2000
    isbn = _first_isbn(rec)
    title = rec["245"]["a"].rstrip(" /:.")
    if kind == "set-volume":
        _set_isbn(base, isbn, "(set)")
        set_extent(base, "3 v. : ill. ; 24 cm.")
        v2, v3 = rec, copy(rec)
        _set_isbn(v2, isbn, "(set)")
        add(v2, "020", "a", f"{fake_isbn(20_000 + n)} (v. 2)")
        add(v2, "490", "a", f"{title} ;", "v", "v. 2", ind="0 ")
        _set_isbn(v3, isbn, "(set)")
        set_extent(v3, "v. 3 (304 p.) : ill. ; 24 cm.")
        return [v2, v3]
    if kind == "audiobook":
        rec.add_ordered_field(Field(tag="007", data="sd fsngnnmmned"))
        set_extent(rec, "2 audio discs (ca. 150 min.) : digital ; 4 3/4 in.")
    elif kind == "large-print":
        set_008(rec, 23, "d")
        if n % 2:
            add(rec, "250", "a", "Large print ed.")
    elif kind == "microform":
        rec.add_ordered_field(Field(tag="007", data="he bmb024baca"))
        set_extent(rec, "3 microfiches.")
    elif kind == "translation":
        set_008(rec, 35, "spa")
        add(rec, "041", "a", "spa", "h", "eng", ind="1 ")
        _set_isbn(rec, None)
    elif kind == "reprint-other-publisher":
        set_publisher(rec, "Dover Publications,")
        set_dates(rec, year + 8, f"{year + 8}.")
        add(rec, "500", "a", f"Facsimile reprint. Originally published: {year}.")
    return [rec]


def chinese_part(base: MarcRecord, part: tuple[str, str]) -> MarcRecord:
    """``base`` as the record of one named part: 245 $p in pinyin, its 880 $p in Han."""
    rec = copy(base)
    rec["245"].add_subfield("p", part[1])
    for f in rec.get_fields("880"):
        if f["6"] and f["6"].startswith("245"):
            f.add_subfield("p", part[0])
    return rec


def sloppy_set(loc_path: Path, out: Path, per_kind: int = 16, chinese: int = 16) -> SloppySet:
    """Write the members' MARC files (``lib-a``…, ``lib-cn`` CNMARC) and ``gold.csv`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    kinds = POSITIVE + NEGATIVE
    files: dict[str, list[bytes]] = {}
    s = SloppySet(folder=out, sources=[])
    bases = base_records(loc_path, per_kind * len(kinds), chinese)

    def hold(member: str, rec: MarcRecord | bytes, local_id: str, entity: str) -> None:
        if isinstance(rec, MarcRecord):
            _set_001(rec, local_id)
            rec = rec.as_marc()
        files.setdefault(member, []).append(rec)
        s.gold[(member, local_id)] = entity

    english = [b for b in bases if b["008"].data[35:38] == "eng"]
    for n, base in enumerate(english):
        kind = kinds[n % len(kinds)]
        entity = f"s{n}"
        s.kind[entity] = kind
        others = (positive if kind in POSITIVE else negative)(base, kind, n)
        hold("lib-a", base, f"A{n:05d}", entity)
        for i, rec in enumerate(others):
            member = f"lib-{'bcdefg'[(n + i) % 6]}"
            if kind in POSITIVE:
                hold(member, rec, f"P{i}{n:05d}", entity)
            else:
                neg = f"{entity}-{kind}-{i}"
                s.kind[neg] = kind
                hold(member, rec, f"N{i}{n:05d}", neg)
                s.negative_of[(member, f"N{i}{n:05d}")] = kind
    for n, base in enumerate(b for b in bases if b["008"].data[35:38] == "chi"):
        part, other = CHINESE_PARTS[n % 4], CHINESE_PARTS[(n + 1) % 4]
        entity = f"c{n}"
        s.kind[entity] = "chinese-part"
        record = chinese_part(base, part)
        hold("lib-a", copy(record), f"C{n:05d}", entity)
        hold("lib-cn", to_cnmarc(record, f"CN{n:05d}", library="CNLIB"), f"CN{n:05d}", entity)
        if n % 2:
            neg = f"{entity}-other-part"
            s.kind[neg] = "chinese-other-part"
            hold("lib-b", chinese_part(base, other), f"CO{n:05d}", neg)
            s.negative_of[("lib-b", f"CO{n:05d}")] = "chinese-other-part"
    for member, chunks in sorted(files.items()):
        path = out / f"{member}.mrc"
        path.write_bytes(b"".join(chunks))
        s.sources.append({"id": member, "name": member, "region": "test", "protocol": "file", "path": str(path),
                          "format": "cnmarc" if member == "lib-cn" else "marc21"})
    with open(out / "gold.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "local_id", "entity"])
        w.writerows([src, lid, e] for (src, lid), e in sorted(s.gold.items()))
    return s


def consortium_set(path: Path, out: Path) -> tuple[list[dict], dict[tuple[str, str], str]]:
    """The real cross-library duplicates of ``001-xc_dedup.xml``: one member per library (003), gold by OCLC number.

    Only records with an OCLC number are listed (the others' truth is unknown), and not a library's two
    records of one number: they are its internal duplicates, never merged, and either may be the one merged.
    """
    from pymarc import parse_xml_to_array

    by_library: dict[str, list[bytes]] = {}
    seen: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for rec in parse_xml_to_array(str(path)):
        if rec.leader[6] not in "acdefgijkmoprt" or not rec["001"]:
            continue
        library = "xc-" + (rec["003"].data if rec["003"] else "none").lower().removesuffix("db")
        oclc = next((re.sub(r"\D", "", v) for f in rec.get_fields("035") for v in f.get_subfields("a")
                     if "OCoLC" in v), "")
        if oclc:
            seen.setdefault((library, oclc), []).append((library, rec["001"].data))
        by_library.setdefault(library, []).append(rec.as_marc())
    gold = {recs[0]: f"oclc{oclc}" for (_, oclc), recs in seen.items() if len(recs) == 1}
    sources = []
    out.mkdir(parents=True, exist_ok=True)
    for library, chunks in sorted(by_library.items()):
        file = out / f"{library}.mrc"
        file.write_bytes(b"".join(chunks))
        sources.append({"id": library, "name": library, "region": "test", "protocol": "file", "path": str(file),
                        "format": "marc21"})
    return sources, gold
