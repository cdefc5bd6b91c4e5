"""A synthetic consortium at scale, made deterministically from the 250k real LoC records.

The demo consortium (``consortium.py``) has seven members and at most 250k titles; a province has
~130 members and millions.  Here every LoC record (one in ten a Chinese-language one, with its Han
script 880s) becomes ``variants`` distinct manifestations — the original and later editions, each
with its own valid ISBN-13, edition statement, year (so the matcher's year veto keeps them apart) and
sometimes a new publisher or subtitle — and each manifestation is held by a Zipf-like number of
members (most by one to three, popular ones by dozens), chosen with Zipf-like member sizes.  Member
``k`` exports in the ILS style ``k mod 7`` of the demo (Huiwen 949, Koha 952, Sierra 945 with
hyphenated ISBN-10s, Alma AVA as MARCXML, FOLIO 952 in capitals, MARC 852 without ISBNs, CNMARC in
GBK).  Everything streams: one pass over the LoC file, one open file per member, memory flat.
"""
from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymarc
from pymarc import Field, Subfield
from stdnum import ean

from .cnmarc import to_cnmarc
from .consortium import TRANSFORMS
from .loc import iter_chunks, iter_language, language_code

#: Demo ILS styles, member k uses STYLES[k % 7]: (style, container, format, holdings preset).
STYLES = (("nju", "mrc", "marc21", "generic949"), ("seu", "mrc", "marc21", "koha952"),
          ("njnu", "mrc", "marc21", "sierra945"), ("suda", "xml", "marc21", "alma_ava"),
          ("xjtlu", "mrc", "marc21", "folio952"), ("jiangnan", "mrc", "marc21", "marc852"),
          ("cnmarc", "mrc", "cnmarc", "cnmarc905"))
#: Holders per manifestation: P(h) ∝ h^-ZIPF_S for h ≤ MAX_HOLDERS (mean ≈ 2.9 at 130 members).
ZIPF_S, MAX_HOLDERS = 1.9, 60
PUBLISHERS = ("Routledge", "Springer", "Oxford University Press", "Wiley", "人民出版社", "商务印书馆")
SUBTITLES = ("revised and expanded", "a new introduction", "selected essays", "修订版")
CHINESE_EVERY = 10  # one base record in ten is Chinese-language while the file has them (~8,000)


@dataclass(frozen=True)
class SynthMember:
    id: str
    style: str
    container: str
    format: str
    holdings: str
    weight: float  # relative collection size

    @property
    def filename(self) -> str:
        return f"{self.id}.{self.container}"


def members(n: int = 130) -> list[SynthMember]:
    """``n`` members; member k's size ∝ 1/(k+4)^0.8 (a few large universities, many small colleges)."""
    return [SynthMember(f"m{k:03d}", *STYLES[k % len(STYLES)], weight=1 / (k + 4) ** 0.8) for k in range(n)]


def mean_holders(n_members: int = 130) -> float:
    top = min(MAX_HOLDERS, n_members)
    weights = [h ** -ZIPF_S for h in range(1, top + 1)]
    return sum(h * w for h, w in zip(range(1, top + 1), weights)) / sum(weights)


class Holders:
    """Deterministic holder sets: how many (Zipf) and which members (weighted by size, no repeats)."""

    def __init__(self, mems: list[SynthMember], seed: int):
        top = min(MAX_HOLDERS, len(mems))
        self.counts, self.count_cum = list(range(1, top + 1)), list(itertools.accumulate(h ** -ZIPF_S for h in range(1, top + 1)))
        self.member_cum = list(itertools.accumulate(m.weight for m in mems))
        self.n, self.seed = len(mems), seed

    def __call__(self, m: int) -> list[int]:
        rng = random.Random(self.seed * 1_000_003 + m)
        h = rng.choices(self.counts, cum_weights=self.count_cum)[0]
        chosen: set[int] = set()
        while len(chosen) < h:
            chosen.update(rng.choices(range(self.n), cum_weights=self.member_cum, k=h - len(chosen)))
        return sorted(chosen)


def base_records(loc: Path) -> Iterator[bytes]:
    """LoC records with a Chinese-language one every :data:`CHINESE_EVERY` (none twice), then the rest."""
    chinese = iter_language(loc, b"chi", 10**6)
    others = (c for c in iter_chunks(loc) if language_code(c) != b"chi")
    for i in itertools.count():
        source = chinese if i % CHINESE_EVERY == CHINESE_EVERY - 1 else others
        chunk = next(source, None) or next(others, None) or next(chinese, None)
        if chunk is None:
            return
        yield chunk


def isbn13(key: str) -> str:
    """A valid ISBN-13 derived from ``key`` (978 + 9 digits + check digit)."""
    body = "978" + str(int(hashlib.blake2b(key.encode(), digest_size=8).hexdigest(), 16) % 10**9).zfill(9)
    return body + ean.calc_check_digit(body)


def _year(rec: pymarc.Record) -> int:
    f008 = rec["008"].data if rec["008"] else ""
    if len(f008) >= 11 and f008[7:11].isdigit():
        return int(f008[7:11])
    return 1990


def edition(chunk: bytes, b: int, j: int) -> bytes:
    """Manifestation ``j`` of base record ``b``: j=0 the record itself, else a later edition — with its own
    ISBN and none of the base record's LCCN (010) or OCLC/system numbers (035): a new edition is a new
    manifestation with new numbers, and copies that shared the base's numbers would be matched by them."""
    if j == 0:
        return chunk
    rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
    year = _year(rec) + 2 * j
    f008 = rec["008"].data if rec["008"] else " " * 40
    rec.remove_fields("008", "010", "020", "035", "250")
    rec.add_ordered_field(Field(tag="008", data=(f008[:7] + f"{year:04d}" + f008[11:]).ljust(40)))
    rec.add_ordered_field(Field(tag="020", indicators=[" ", " "], subfields=[Subfield("a", isbn13(f"{b}:{j}"))]))
    rec.add_ordered_field(Field(tag="250", indicators=[" ", " "], subfields=[Subfield("a", f"{j + 1}. ed.")]))
    for f in rec.get_fields("260", "264", "880"):
        if f.tag == "880" and not (f.get("6") or "").startswith(("260", "264")):
            continue
        f.subfields = [Subfield("c", re.sub(r"\d{4}", str(year), s.value, count=1)) if s.code == "c"
                       else Subfield("b", PUBLISHERS[(b + j) % len(PUBLISHERS)]) if s.code == "b" and j % 3 == 2
                       else s for s in f.subfields]
    if j % 4 == 3:
        for f in rec.get_fields("245"):
            f.delete_subfield("b")
            f.add_subfield("b", SUBTITLES[b % len(SUBTITLES)])
    return rec.as_marc()


def member_record(chunk: bytes, member: SynthMember, m: int) -> bytes:
    """Manifestation ``m`` as ``member``'s ILS exports it (its 001, its holdings tag, its quirks)."""
    rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
    if member.style == "cnmarc":
        return to_cnmarc(rec, f"{m:010d}", library=member.id.upper(), accession=f"{member.id.upper()}{m:08d}")
    TRANSFORMS[member.style](rec, m)
    if member.container == "xml":
        return pymarc.record_to_xml(rec, namespace=True) + b"\n"
    return rec.as_marc()


XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<collection xmlns="http://www.loc.gov/MARC21/slim">\n'
XML_TAIL = b"</collection>\n"


@dataclass
class Generated:
    member_records: int = 0
    manifestations: int = 0
    bases: int = 0
    chinese_manifestations: int = 0
    variants: int = 0
    holders_histogram: dict[int, int] | None = None
    per_member: dict[str, int] | None = None


def generate(loc: Path, out: Path, member_records: int, n_members: int = 130, seed: int = 14,
             variants: int | None = None) -> Generated:
    """Write each member's dump under ``out`` until ``member_records`` member records exist.

    ``variants`` (manifestations per LoC record) defaults to 4, more when 240k base records
    would not reach the size.  Deterministic for equal arguments.
    """
    mems = members(n_members)
    needed = member_records / mean_holders(n_members)
    variants = variants or max(4, -(-int(needed) // 240_000))
    who = Holders(mems, seed)
    out.mkdir(parents=True, exist_ok=True)
    files = {mb.id: open(out / mb.filename, "wb") for mb in mems}
    g = Generated(variants=variants, holders_histogram={}, per_member={mb.id: 0 for mb in mems})
    try:
        for mb in mems:
            if mb.container == "xml":
                files[mb.id].write(XML_HEAD)
        for b, chunk in enumerate(base_records(loc)):
            g.bases += 1
            chinese = language_code(chunk) == b"chi"
            for j in range(variants):
                variant, m = edition(chunk, b, j), g.manifestations
                holders = who(m)
                for k in holders:
                    files[mems[k].id].write(member_record(variant, mems[k], m))
                    g.per_member[mems[k].id] += 1
                g.manifestations += 1
                g.chinese_manifestations += chinese
                g.member_records += len(holders)
                g.holders_histogram[len(holders)] = g.holders_histogram.get(len(holders), 0) + 1
                if g.member_records >= member_records:
                    return g
        return g
    finally:
        for mb in mems:
            if mb.container == "xml":
                files[mb.id].write(XML_TAIL)
            files[mb.id].close()


def sources_yaml(mems: list[SynthMember], out: Path, per_member: dict[str, int]) -> dict:
    """The ``sources.yaml`` content for the generated dumps (every member holding records: a file source)."""
    return {"consortium": {"name": "Synthetic province"},
            "sources": [{"id": mb.id, "name": f"Library {mb.id}", "region": f"R{int(mb.id[1:]) % 13}",
                         "protocol": "file", "path": str(out / mb.filename), "format": mb.format,
                         "holdings": mb.holdings} for mb in mems if per_member[mb.id]]}


def revise(path: Path, every: int = 100, tag: str = "r1") -> int:
    """Change one record in ``every`` of an ISO 2709 MARC 21 dump in place (a cataloguer's 500 note:
    a new version of the record to harvest, normalise, dedupe and index); returns how many changed."""
    changed, tmp = 0, path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for i, chunk in enumerate(iter_chunks(path)):
            if i % every == 0:
                rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
                rec.add_ordered_field(Field(tag="500", indicators=[" ", " "],
                                            subfields=[Subfield("a", f"Record revised ({tag}).")]))
                chunk, changed = rec.as_marc(), changed + 1
            fh.write(chunk)
    tmp.replace(path)
    return changed
