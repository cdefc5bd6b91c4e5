"""Dedupe benchmarks from the shared corpus, turned into member MARC files and a gold CSV.

``dblp_acm`` converts the Leipzig DBLP-ACM benchmark as shipped by pyJedAI
(``dedup/dblp-acm_pyjedai``: ``dblp.csv`` and ``acm.csv`` are ``%``-separated
``id%title%authors%venue%year``; ``gt.csv`` is ``D1%D2`` with 0-based row ids)
into ``dblp.mrc`` and ``acm.mrc`` (ISO 2709, UTF-8) and ``gold.csv`` for
``unioncat dedupe evaluate``.  Each paper becomes the record a library would
catalogue for an article:

* leader ``naa`` (a conference paper: part of a monograph) or ``nab`` (a journal
  article: part of a serial), so the normalised format is ``article`` either way;
* 001 = the row id; 008 with the year as date 1; 245 $a the title;
* 100 the first author, 700 the others, in the inverted form catalogues use
  ("D. Scott Mackay" → "Mackay, D. Scott");
* 264 _1 $c the year; 773 $t the venue (the host item) and $d the year.

HTML entities (``&mdash;``) are decoded.  Fourteen ACM rows have no authors and
were written by pyJedAI with a stray quote that swallows the row
(``884%Title%"Very Large Data Bases%2000%%…"%%``): for those, field 3 is the
venue and field 4 the year.

Gold entities are the connected components of ``gt.csv``; a record in no
ground-truth pair is an entity of its own.
"""
from __future__ import annotations

import csv
import html
from dataclasses import dataclass
from pathlib import Path

from pymarc import Field, Indicators, Record, Subfield
from corpus import corpus_dir  # noqa: F401 - re-exported for the dedupe tests

JOURNAL_HINTS = ("record", "trans", "journal", " j.")


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    authors: list[str]
    venue: str
    year: str


def read_papers(path: Path) -> list[Paper]:
    papers = []
    with open(path, encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="%", quoting=csv.QUOTE_NONE)
        header = next(rows)
        assert header == ["id", "title", "authors", "venue", "year"], header
        for row in rows:
            if len(row) > 5 and row[2].startswith('"'):   # the swallowed rows described above
                row = [row[0], row[1], "", row[2][1:], row[3]]
            assert len(row) == 5, row
            rid, title, authors, venue, year = (html.unescape(v).strip() for v in row)
            papers.append(Paper(id=rid, title=title, authors=[a.strip() for a in authors.split(",") if a.strip()],
                                venue=venue, year=year))
    return papers


def inverted(name: str) -> str:
    """'D. Scott Mackay' → 'Mackay, D. Scott' (the heading form of 100/700 $a)."""
    parts = name.split()
    if len(parts) < 2:
        return name
    return f"{parts[-1]}, {' '.join(parts[:-1])}"


def _field(tag: str, ind: str, **sub: str) -> Field:
    return Field(tag=tag, indicators=Indicators(ind[0], ind[1]), subfields=[Subfield(k, v) for k, v in sub.items()])


def paper_record(p: Paper) -> Record:
    rec = Record(force_utf8=True)
    journal = any(h in f" {p.venue.lower()}" for h in JOURNAL_HINTS)
    rec.leader = rec.leader[:5] + "n" + "a" + ("b" if journal else "a") + rec.leader[8:9] + "a" + rec.leader[10:]
    rec.add_field(Field(tag="001", data=p.id))
    year = p.year if len(p.year) == 4 and p.year.isdigit() else "    "
    rec.add_field(Field(tag="008", data=f"000101s{year}    xx            000 0 eng d"))
    if p.authors:
        rec.add_field(_field("100", "1 ", a=inverted(p.authors[0])))
    rec.add_field(_field("245", "10" if p.authors else "00", a=p.title))
    if p.year:
        rec.add_field(_field("264", " 1", c=p.year))
    for other in p.authors[1:]:
        rec.add_field(_field("700", "1 ", a=inverted(other)))
    rec.add_field(_field("773", "0 ", t=p.venue, d=p.year))
    return rec


@dataclass(frozen=True)
class Benchmark:
    files: list[Path]
    gold: Path
    records: dict[str, int]   # source → records written
    gold_pairs: int           # pairs in the ground-truth file


def dblp_acm(folder: Path, out: Path) -> Benchmark:
    """Write ``dblp.mrc``, ``acm.mrc`` and ``gold.csv`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    files, counts, every = [], {}, []
    for source in ("dblp", "acm"):
        papers = read_papers(folder / f"{source}.csv")
        path = out / f"{source}.mrc"
        path.write_bytes(b"".join(paper_record(p).as_marc() for p in papers))
        files.append(path)
        counts[source] = len(papers)
        every += [(source, p.id) for p in papers]
    parent: dict[tuple[str, str], tuple[str, str]] = {r: r for r in every}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    with open(folder / "gt.csv", encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="%")
        assert next(rows) == ["D1", "D2"]
        gt = [(("dblp", a.strip()), ("acm", b.strip())) for a, b in rows]
    for a, b in gt:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    gold = out / "gold.csv"
    with open(gold, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "local_id", "entity"])
        for source, rid in every:
            root = find((source, rid))
            w.writerow([source, rid, f"{root[0]}-{root[1]}"])
    return Benchmark(files=files, gold=gold, records=counts, gold_pairs=len(gt))
