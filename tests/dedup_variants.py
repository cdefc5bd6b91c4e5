"""A realistic dedupe test set built from real LoC records: one book, several members' cataloguing.

``variant_set(loc_path, out)`` takes real Library of Congress records (English
books, and Chinese books with Han-script 880 fields) and writes the catalogue
of six simulated member libraries, each a MARC file, plus ``gold.csv``:

* every base book is held by two to four members, each cataloguing it its own
  way — the LoC record as is; ISBN-10 ↔ ISBN-13, hyphenated, with a qualifier
  (``(pbk.)``) or missing; ISBD punctuation stripped; the subtitle dropped;
  the author's dates and fuller forms dropped ("Smith, John A., 1950-" →
  "Smith, J. A."); 260 rewritten as 264 (RDA); "345 p." as "345 pages";
  LCCN and OCLC numbers dropped (a member that catalogued the book itself);
  and, for Chinese books, the CNMARC record a Chinese ILS exports (GBK, Han
  script in 200, via ``demo.cnmarc.to_cnmarc``);
* hard negatives, each its own gold entity and held by a member that does not
  hold the base book: another edition (250 "2nd ed.", a new ISBN, three years
  later); another volume (245 $n "v. 2", its own ISBN and pages); the e-book
  (008/23 ``o``, an e-ISBN, "1 online resource"); a reprint with a new year
  (same ISBN, ten years later).

Which member catalogues what is drawn from a seeded RNG, so the set is the
same on every run.
"""
from __future__ import annotations

import csv
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pymarc import Field, MARCReader, Subfield
from pymarc import Record as MarcRecord

from demo.cnmarc import to_cnmarc
from demo.loc import iter_chunks, language_code

MEMBERS = ("lib-a", "lib-b", "lib-c", "lib-d", "lib-e", "lib-f")
CNMARC_MEMBER = "lib-cn"
NEGATIVE_KINDS = ("edition", "volume", "ebook", "reprint")


@dataclass
class VariantSet:
    folder: Path
    sources: list[dict]                      # sources.yaml entries, one per member file
    gold: dict[tuple[str, str], str] = field(default_factory=dict)
    negatives: dict[tuple[str, str], str] = field(default_factory=dict)   # record → kind of hard negative
    base_of: dict[tuple[str, str], str] = field(default_factory=dict)     # negative record → its base entity


def _isbn13_check(digits12: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits12))
    return str((10 - total % 10) % 10)


def _isbn10_check(digits9: str) -> str:
    total = sum(int(d) * (10 - i) for i, d in enumerate(digits9))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def isbn13(isbn: str) -> str | None:
    digits = re.sub(r"[^0-9Xx]", "", isbn).upper()
    if len(digits) == 10:
        body = "978" + digits[:9]
        return body + _isbn13_check(body)
    if len(digits) == 13 and digits.isdigit():
        return digits
    return None


def isbn10(isbn13_: str) -> str | None:
    if not isbn13_.startswith("978"):
        return None
    body = isbn13_[3:12]
    return body + _isbn10_check(body)


def fake_isbn(seed: int) -> str:
    """A valid ISBN-13 no real record here carries (prefix 979-12-99)."""
    body = f"9791299{seed:05d}"
    return body + _isbn13_check(body)


def _first_isbn(rec: MarcRecord) -> str | None:
    for f in rec.get_fields("020"):
        for v in f.get_subfields("a"):
            n = isbn13(v.split(" ")[0])
            if n:
                return n
    return None


def _set_isbn(rec: MarcRecord, value: str | None, qualifier: str = "") -> None:
    for f in rec.get_fields("020"):
        rec.remove_field(f)
    if value:
        rec.add_ordered_field(Field(tag="020", indicators=[" ", " "],
                                    subfields=[Subfield("a", value + (f" {qualifier}" if qualifier else ""))]))


def _strip_isbd(rec: MarcRecord) -> None:
    for f in rec.get_fields("245", "260", "264", "300", "100", "700"):
        f.subfields = [Subfield(s.code, re.sub(r"[\s/:;,=.]+$", "", s.value)) for s in f.subfields]


def _drop_subtitle(rec: MarcRecord) -> None:
    for f in rec.get_fields("245"):
        f.subfields = [s for s in f.subfields if s.code not in ("b",)]


def _short_author(rec: MarcRecord) -> None:
    for f in rec.get_fields("100"):
        subs = []
        for s in f.subfields:
            if s.code == "d" or s.code == "q":
                continue
            if s.code == "a" and "," in s.value:
                surname, _, forenames = s.value.partition(",")
                initials = " ".join(w[0] + "." for w in forenames.split() if w[:1].isalpha())
                subs.append(Subfield("a", f"{surname}, {initials}".strip(", ")))
            else:
                subs.append(s)
        f.subfields = subs


def _rda_imprint(rec: MarcRecord) -> None:
    for f in rec.get_fields("260"):
        rec.remove_field(f)
        rec.add_ordered_field(Field(tag="264", indicators=[" ", "1"], subfields=list(f.subfields)))


def _pages_spelled(rec: MarcRecord) -> None:
    for f in rec.get_fields("300"):
        f.subfields = [Subfield(s.code, re.sub(r"(\d+) ?p\.", r"\1 pages", s.value)) if s.code == "a" else s
                       for s in f.subfields]


def _drop_control_ids(rec: MarcRecord) -> None:
    for f in rec.get_fields("010", "035"):
        rec.remove_field(f)


def _set_001(rec: MarcRecord, value: str) -> None:
    for f in rec.get_fields("001", "003"):
        rec.remove_field(f)
    rec.add_ordered_field(Field(tag="001", data=value))


def _year(rec: MarcRecord) -> int | None:
    f008 = rec["008"].data if rec["008"] else ""
    return int(f008[7:11]) if f008[7:11].isdigit() else None


def _set_year(rec: MarcRecord, year: int) -> None:
    f = rec["008"]
    f.data = f.data[:7] + str(year) + f.data[11:]
    for tag in ("260", "264"):
        for imprint in rec.get_fields(tag):
            imprint.subfields = [Subfield(s.code, re.sub(r"\d{4}", str(year), s.value)) if s.code == "c" else s
                                 for s in imprint.subfields]


def _pages(rec: MarcRecord) -> int | None:
    for f in rec.get_fields("300"):
        m = re.findall(r"(\d+) ?p", " ".join(f.get_subfields("a")))
        if m:
            return max(map(int, m))
    return None


def _usable(rec: MarcRecord) -> bool:
    f008 = rec["008"].data if rec["008"] else ""
    return (rec.leader[6] == "a" and rec.leader[7] == "m" and bool(rec.get_fields("245"))
            and f008[7:11].isdigit() and not rec.get_fields("250")
            and not any(f.get_subfields("n", "p") for f in rec.get_fields("245"))
            and _pages(rec) is not None and bool(rec.get_fields("100")))


def base_records(loc_path: Path, english: int, chinese: int) -> list[MarcRecord]:
    """The first usable English (with ISBN) and Chinese (with Han 880 title) books of the LoC file."""
    picked, en, zh = [], 0, 0
    for chunk in iter_chunks(loc_path):
        lang = language_code(chunk)
        want_zh = lang == b"chi" and zh < chinese
        want_en = lang == b"eng" and en < english
        if not (want_zh or want_en):
            continue
        rec = next(iter(MARCReader(chunk, to_unicode=True, force_utf8=True)), None)
        if rec is None or not _usable(rec):
            continue
        if want_en and _first_isbn(rec):
            picked.append(rec)
            en += 1
        elif want_zh and any(f["6"] and f["6"].startswith("245") for f in rec.get_fields("880")):
            picked.append(rec)
            zh += 1
        if en >= english and zh >= chinese:
            break
    return picked


VARIANTS = [
    # each member's habits: applied to its copy of a base record
    (),                                                              # the LoC record as is
    ("isbn10", "strip_isbd", "rda", "drop_ids"),
    ("isbn_hyphen_pbk", "short_author", "pages_spelled", "drop_ids"),
    ("no_isbn", "drop_subtitle", "strip_isbd", "drop_ids"),
    ("isbn10", "short_author", "rda", "pages_spelled"),
    ("no_isbn", "short_author", "strip_isbd", "drop_ids"),
]


_HABITS = {
    "isbn10": lambda rec, isbn: isbn and _set_isbn(rec, isbn10(isbn) or isbn),
    "isbn_hyphen_pbk": lambda rec, isbn: isbn and _set_isbn(
        rec, f"{isbn[:3]}-{isbn[3]}-{isbn[4:7]}-{isbn[7:12]}-{isbn[12]}", "(pbk.)"),
    "no_isbn": lambda rec, isbn: _set_isbn(rec, None),
    "strip_isbd": lambda rec, isbn: _strip_isbd(rec),
    "drop_subtitle": lambda rec, isbn: _drop_subtitle(rec),
    "short_author": lambda rec, isbn: _short_author(rec),
    "rda": lambda rec, isbn: _rda_imprint(rec),
    "pages_spelled": lambda rec, isbn: _pages_spelled(rec),
    "drop_ids": lambda rec, isbn: _drop_control_ids(rec),
}


def _apply(rec: MarcRecord, habits: tuple[str, ...]) -> None:
    isbn = _first_isbn(rec)
    for h in habits:
        _HABITS[h](rec, isbn)


def _negative(rec: MarcRecord, kind: str, n: int) -> MarcRecord:
    neg = MarcRecord(data=rec.as_marc(), to_unicode=True, force_utf8=True)
    _drop_control_ids(neg)
    year = _year(neg) or 2000
    if kind == "edition":
        neg.add_ordered_field(Field(tag="250", indicators=[" ", " "], subfields=[Subfield("a", "2nd ed.")]))
        _set_isbn(neg, fake_isbn(n))
        _set_year(neg, year + 3)
    elif kind == "volume":
        for f in neg.get_fields("245"):
            f.add_subfield("n", "v. 2")
        _set_isbn(neg, fake_isbn(n))
        for f in neg.get_fields("300"):
            pages = _pages(neg) or 100
            f.subfields = [Subfield("a", f"{pages + 57} p.")] + [s for s in f.subfields if s.code != "a"]
    elif kind == "ebook":
        f = neg["008"]
        f.data = f.data[:23] + "o" + f.data[24:]
        _set_isbn(neg, fake_isbn(n))
        for f in neg.get_fields("300"):
            f.subfields = [Subfield("a", "1 online resource")]
    elif kind == "reprint":
        _set_year(neg, year + 10)      # same ISBN: the year alone must keep it apart
    return neg


def variant_set(loc_path: Path, out: Path, english: int = 160, chinese: int = 40, seed: int = 5) -> VariantSet:
    """Write the members' MARC files and ``gold.csv`` under ``out``."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[bytes]] = {m: [] for m in (*MEMBERS, CNMARC_MEMBER)}
    vs = VariantSet(folder=out, sources=[])
    for n, base in enumerate(base_records(loc_path, english, chinese)):
        entity = f"e{n}"
        chinese_book = language_code(base.as_marc()) == b"chi"
        holders = rng.sample(MEMBERS, rng.randint(2, 3 if chinese_book else 4))
        for member in holders:
            rec = MarcRecord(data=base.as_marc(), to_unicode=True, force_utf8=True)
            _apply(rec, VARIANTS[MEMBERS.index(member)])
            local_id = f"{member[-1].upper()}{n:05d}"
            _set_001(rec, local_id)
            files[member].append(rec.as_marc())
            vs.gold[(member, local_id)] = entity
        if chinese_book:
            local_id = f"CN{n:05d}"
            files[CNMARC_MEMBER].append(to_cnmarc(base, local_id, library="CNLIB"))
            vs.gold[(CNMARC_MEMBER, local_id)] = entity
        if n % 2 == 0:
            kind = NEGATIVE_KINDS[(n // 2) % len(NEGATIVE_KINDS)]
            others = [m for m in MEMBERS if m not in holders]
            member = rng.choice(others)
            neg = _negative(base, kind, n)
            local_id = f"N{member[-1].upper()}{n:05d}"
            _set_001(neg, local_id)
            files[member].append(neg.as_marc())
            vs.gold[(member, local_id)] = f"{entity}-{kind}"
            vs.negatives[(member, local_id)] = kind
            vs.base_of[(member, local_id)] = entity
    for member, chunks in files.items():
        path = out / f"{member}.mrc"
        path.write_bytes(b"".join(chunks))
        vs.sources.append({"id": member, "name": member, "region": "test", "protocol": "file", "path": str(path),
                           "format": "cnmarc" if member == CNMARC_MEMBER else "marc21"})
    with open(out / "gold.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "local_id", "entity"])
        for (s, l), e in sorted(vs.gold.items()):
            w.writerow([s, l, e])
    return vs


@contextmanager
def normalised_variants(out: Path, **settings) -> Iterator[tuple[VariantSet, object]]:
    """The variant set from the cached LoC file, harvested and normalised by the pipeline (not deduplicated).

    Yields (the variant set, the open ``pipeline.Catalogue``, closed afterwards).  ``settings`` override the
    defaults (``max_block=10``: a build with small blocks split).
    """
    import os

    from consortium.load import parse_sources
    from demo.loc import loc_file
    from unioncat import pipeline
    from unioncat.settings import Settings

    cache = Path(os.environ.get("UNIONCAT_CACHE", Path.home() / ".cache" / "unioncat"))
    vs = variant_set(loc_file(cache), out / "files")
    sources = parse_sources({"consortium": {"name": "variants"}, "sources": vs.sources}, "<variants>")
    data = out / "data"
    cat = pipeline.Catalogue(Settings(data_dir=data, sources_path=data / "sources.yaml", **settings), sources)
    try:
        pipeline.harvest(cat, list(sources.sources), full=True)
        assert pipeline.normalise_stage(cat).quarantined == 0
        yield vs, cat
    finally:
        cat.close()


@contextmanager
def built_variants(out: Path, **settings) -> Iterator[tuple[VariantSet, object, object]]:
    """:func:`normalised_variants`, deduplicated by the pipeline: yields (the variant set, the open catalogue,
    the ``DedupeReport``)."""
    from unioncat import pipeline

    with normalised_variants(out, **settings) as (vs, cat):
        yield vs, cat, pipeline.dedupe_stage(cat)
