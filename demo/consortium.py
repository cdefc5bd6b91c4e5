"""The demo consortium: six Jiangsu university libraries holding overlapping real records.

Records are real (the Library of Congress BooksAll file, see ``loc.py``);
what is simulated is the consortium: each member holds a deterministic
subset, catalogued the way its ILS would export it — its own record ids,
holdings in its own tag (Huiwen-style 949, Koha 952, Sierra 945, Alma AVA,
FOLIO 952, MARC 852), ISBNs hyphenated or missing, titles in capitals, one
dump with a broken record — so that dedupe, holdings and quarantine show.
One member (``seu``) is served over OAI-PMH on loopback by the ``oaipmh``
package's server; the others are file dumps.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pymarc
from pymarc import Field, Subfield
from stdnum import isbn as stdisbn

from publish.zebra_server import ZebraServer, start_zebra

from . import ZEBRA_CONF
from .cnmarc import to_cnmarc
from .loc import iter_chunks, iter_language, loc_file

DEMO_DATESTAMP = datetime(2026, 1, 5, 8, 0, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Member:
    id: str
    share: int           # out of 100: how likely the member holds a given record
    container: str       # mrc | xml | oai


MEMBERS = (
    Member("nju", 70, "mrc"),
    Member("seu", 55, "oai"),
    Member("njnu", 40, "mrc"),
    Member("suda", 45, "xml"),
    Member("xjtlu", 30, "mrc"),
    Member("jiangnan", 35, "mrc"),
    Member("njust", 45, "zebra"),
)


def _bucket(i: int, member: str) -> int:
    return int(hashlib.sha1(f"{member}:{i}".encode()).hexdigest()[:8], 16) % 100


def holders(i: int) -> list[str]:
    """Which members hold base record ``i`` (deterministic; everything is held by someone)."""
    chosen = [m.id for m in MEMBERS if _bucket(i, m.id) < m.share]
    return chosen or [MEMBERS[i % len(MEMBERS)].id]


def _call_number(rec: pymarc.Record) -> tuple[str, str]:
    for tag in ("050", "090"):
        for f in rec.get_fields(tag):
            parts = f.get_subfields("a")
            if parts:
                return parts[0], (f.get_subfields("b") or [""])[0]
    return "", ""


def _replace_001(rec: pymarc.Record, value: str) -> None:
    rec.remove_fields("001", "003")
    rec.add_ordered_field(Field(tag="001", data=value))


def _nju(rec, i):
    _replace_001(rec, f"NJU{i:08d}")
    cls, item = _call_number(rec)
    rec.add_field(Field(tag="949", indicators=[" ", " "], subfields=[
        Subfield("a", f"{cls} {item}".strip() or f"NJU-{i}"), Subfield("w", "LC"),
        Subfield("i", f"3210{i:08d}"), Subfield("l", "仙林馆 STACKS"), Subfield("m", "XIANLIN")]))


def _seu(rec, i):
    _replace_001(rec, str(100000 + i))
    cls, item = _call_number(rec)
    rec.add_field(Field(tag="952", indicators=[" ", " "], subfields=[
        Subfield("a", "SEU-JLH"), Subfield("b", "SEU-JLH"), Subfield("c", "GEN"),
        Subfield("o", f"{cls} {item}".strip()), Subfield("p", f"SEU{i:07d}"), Subfield("y", "BK")]))


def _isbn10_hyphenated(value: str) -> str:
    """``9780306406157 (pbk.)`` → ``0-306-40615-2 (pbk.)``: how an older ILS keeps ISBNs."""
    digits, _, rest = value.partition(" ")
    if not stdisbn.is_valid(digits):
        return value
    compact = stdisbn.compact(digits)
    if len(compact) == 13 and compact.startswith("978"):
        compact = stdisbn.to_isbn10(compact)
    return " ".join(p for p in (stdisbn.format(compact), rest) if p)


def _njnu(rec, i):
    _replace_001(rec, f"b{1000000 + i}")
    for f in rec.get_fields("020"):
        f.subfields = [Subfield(sf.code, _isbn10_hyphenated(sf.value)) if sf.code == "a" else sf
                       for sf in f.subfields]
    cls, item = _call_number(rec)
    rec.add_field(Field(tag="945", indicators=[" ", " "], subfields=[
        Subfield("a", f"{cls} {item}".strip()), Subfield("i", f"NJNU{i:07d}"), Subfield("l", "suiyuan"),
        Subfield("s", "-")]))


def _suda(rec, i):
    _replace_001(rec, f"99{i:010d}3606")
    cls, item = _call_number(rec)
    rec.add_field(Field(tag="AVA", indicators=[" ", " "], subfields=[
        Subfield("a", "86SUDA_INST"), Subfield("b", "MAIN"), Subfield("c", "本部图书馆 Main stacks"),
        Subfield("d", f"{cls} {item}".strip()), Subfield("e", "available"), Subfield("f", "2")]))


def _xjtlu(rec, i):
    _replace_001(rec, f"in{i:08d}")
    for f in rec.get_fields("245"):  # catalogued in capitals: dedupe must not care
        f.subfields = [Subfield(sf.code, sf.value.upper()) if sf.code in ("a", "b") else sf for sf in f.subfields]
    cls, item = _call_number(rec)
    rec.add_field(Field(tag="952", indicators=["f", "f"], subfields=[
        Subfield("a", "XJTLU"), Subfield("b", "SIP"), Subfield("c", "Central Library"),
        Subfield("d", "Level 3"), Subfield("e", f"{cls} {item}".strip()), Subfield("m", f"X{i:08d}")]))


def _jiangnan(rec, i):
    _replace_001(rec, f"JN{i:07d}")
    rec.remove_fields("020")  # no ISBNs: only the title/author/year key can match it
    cls, item = _call_number(rec)
    rec.add_field(Field(tag="852", indicators=["0", " "], subfields=[
        Subfield("a", "JNU"), Subfield("b", "蠡湖校区"), Subfield("c", "Stacks"), Subfield("h", cls),
        Subfield("i", item), Subfield("p", f"JN{i:08d}")]))


TRANSFORMS: dict[str, Callable[[pymarc.Record, int], None]] = {
    "nju": _nju, "seu": _seu, "njnu": _njnu, "suda": _suda, "xjtlu": _xjtlu, "jiangnan": _jiangnan,
}


def build_demo(out_dir: Path, cache_dir: Path, records: int = 2000, chinese: int = 300, log=print) -> dict[str, int]:
    """Write every member's dump (and the OAI member's records) under ``out_dir``.

    ``records`` LoC records from the start of the file, then ``chinese``
    Chinese-language ones (with their 880 parallel fields in Han script).
    Returns how many records each member got.  Deterministic: the same
    arguments give byte-identical files, so a second run is incremental.
    """
    out_dir = Path(out_dir)
    marker = out_dir / "demo.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("records") == records and info.get("chinese") == chinese:
            return info["members"]
    source = loc_file(cache_dir, log=log)
    (out_dir / "dumps").mkdir(parents=True, exist_ok=True)
    (out_dir / "oai").mkdir(parents=True, exist_ok=True)
    (out_dir / "zebra").mkdir(parents=True, exist_ok=True)
    huiwen: list[bytes] = []
    bins: dict[str, list[pymarc.Record]] = {m.id: [] for m in MEMBERS}
    log(f"building the demo consortium from {records} LoC records and {chinese} Chinese-language ones")
    chunks = itertools.chain(iter_chunks(source, limit=records), iter_language(source, b"chi", chinese))
    for i, chunk in enumerate(chunks):
        for member in holders(i):
            rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
            if member == "njust":
                # Huiwen: CNMARC in GBK, Han script where the book has it, 905 holdings, 10-digit marc_no
                huiwen.append(to_cnmarc(rec, f"{i:010d}", library="NJUST", accession=f"NJ{i:08d}"))
                continue
            TRANSFORMS[member](rec, i)
            bins[member].append(rec)
    counts = {}
    (out_dir / "zebra" / "njust.mrc").write_bytes(b"".join(huiwen))
    for member in MEMBERS:
        recs = bins[member.id]
        counts[member.id] = len(recs) if member.container != "zebra" else len(huiwen)
        if member.container == "zebra":
            continue
        if member.container == "mrc":
            with open(out_dir / "dumps" / f"{member.id}.mrc", "wb") as fh:
                for rec in recs:
                    fh.write(rec.as_marc())
                if member.id == "jiangnan":
                    # A member dump is never perfect: a record cut short in the export.
                    fh.write(b"00714cam  2200205 a 4500001001200000003000400012truncated")
                    fh.write(b"\x1d")
        else:
            name = "dumps" if member.container == "xml" else "oai"
            with open(out_dir / name / f"{member.id}.xml", "wb") as fh:
                fh.write(b'<?xml version="1.0" encoding="UTF-8"?>\n'
                         b'<collection xmlns="http://www.loc.gov/MARC21/slim">\n')
                for rec in recs:
                    fh.write(pymarc.record_to_xml(rec, namespace=True))
                    fh.write(b"\n")
                fh.write(b"</collection>\n")
    marker.write_text(json.dumps({"records": records, "chinese": chinese, "members": counts}))
    log("demo members: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def serve_oai_member(out_dir: Path, port: int = 0) -> tuple[str, Callable[[], None]]:
    """Serve the OAI member's records with the ``oaipmh`` server on loopback; returns (url, stop).

    ``port=0`` picks a free port (the url says which).  The ``oaipmh`` server is the ``demo`` extra's
    one dependency, imported here so that the rest of the demo loads without it.
    Datestamps are fixed, so restarting the demo does not make every record
    look new to an incremental harvest.
    """
    from .oai_member import make_app, records_from_files, serve

    records = records_from_files([Path(out_dir) / "oai" / "seu.xml"], prefix="oai:seu.demo.edu.cn:",
                                 datestamp=DEMO_DATESTAMP, sets=["books"])
    app = make_app(records, repository_name="Southeast University Library (unioncat demo)", batch_size=100)
    return serve(app, host="127.0.0.1", port=port)


def serve_zebra_member(out_dir: Path, port: int = 0) -> ZebraServer:
    """Serve the Huiwen member's CNMARC (GBK) records with a real Zebra over Z39.50; returns the server.

    ``port=0`` picks a free port.  Raises ``publish.zebra_server.ZebraError`` when Zebra is not installed
    (``make install`` installs it).
    """
    return start_zebra(Path(out_dir) / "zebra", port=port, conf_dir=ZEBRA_CONF, record_type="mrc",
                       work=Path(out_dir) / "zebra-work", source_charset="gbk", record_charset="gbk",
                       query_encoding="gbk")
