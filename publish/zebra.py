"""``unioncat publish zebra``: the merged records as a Zebra database, for Z39.50 and SRU copy cataloguing.

Koha serves Z39.50 the same way: a Zebra register kept in step with the
catalogue.  Each publish reads the cluster change feed after its own
checkpoint (kept in the Zebra folder beside the register it describes, so a
deleted folder means a full rebuild), writes the changed clusters that meet
the quality bar as one MARCXML batch and retires the others (deleted, merged
away, or no longer good enough) with a delete batch, then runs
``zebraidx update`` / ``delete`` / ``commit`` and moves the checkpoint.

Records offered: :func:`publish.marcout.merged_marc` (001 the cluster id, 035
per member, 852 per holding) with a 005 from the cluster's last change (so
Date/time-last-modified, Bib-1 1012, can be searched).  The config lives in
``unioncat/zebra_conf/``: Bib-1 use attributes title 4, author 1003, ISBN 7,
ISSN 8, subject 21, any 1016, date 31, local number 12, date-last-modified
1012 (``index.xsl``), the CQL mapping for SRU (``cql2pqf.properties``),
MARC 21 in UTF-8, MARC-8 (element set ``marc8``) and MARCXML.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from pymarc import Field
from pymarc import Record as MarcRecord

from publish import marcout
from publish.export import marcxml_element
from dedupe.model import Cluster
from publish.feed import Published, Window

from . import zebra_server as zebra
from unioncat.pipeline import Catalogue

CONF_DIR = Path(__file__).resolve().parent / "zebra_conf"
CHECKPOINT = "published.json"
DEFAULT_BAR = ("245", "260|264", "300", "1XX|7XX")


@dataclass(frozen=True)
class QualityBar:
    """Which records are good enough to offer: every requirement names tags, one of which must be present.

    ``"260|264"`` needs a 260 or a 264; ``"1XX"`` any tag starting with 1.
    """

    require: tuple[str, ...] = DEFAULT_BAR

    @classmethod
    def parse(cls, text: str | Iterable[str] | None) -> "QualityBar":
        if text is None:
            return cls()
        items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
        for item in items:
            for tag in item.split("|"):
                if len(tag) != 3 or not all(c.isdigit() or c in "xX" for c in tag):
                    raise ValueError(f"quality bar {item!r}: expected tags like 245, 260|264 or 1XX")
        return cls(tuple(items))

    def passes(self, marc: MarcRecord) -> bool:
        tags = {f.tag for f in marc.fields}
        return all(any(_tag_matches(pattern.upper(), tags) for pattern in req.split("|")) for req in self.require)

    def describe(self) -> str:
        return ", ".join(self.require) or "(none)"


def _tag_matches(pattern: str, tags: set[str]) -> bool:
    if "X" not in pattern:
        return pattern in tags
    return any(all(p == "X" or p == t for p, t in zip(pattern, tag)) for tag in tags)


@dataclass
class PublishReport:
    updated: int = 0
    deleted: int = 0
    below_bar: int = 0
    last_seq: int = 0
    seconds: float = 0.0
    full: bool = False


def write_config(work: Path, host: str = "127.0.0.1", port: int = 2100) -> None:
    """Write ``zebra.cfg`` and ``yazgfs.xml`` into ``work`` (the register, shadow, lock, tmp folders too)."""
    why = zebra.missing()
    if why:
        raise zebra.ZebraError(why)
    for sub in ("register", "shadow", "lock", "tmp", "batches"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    values = {"work": work.resolve(), "conf": CONF_DIR, "modules": zebra.module_dir(), "host": host, "port": port}
    for name in ("zebra.cfg", "yazgfs.xml"):
        text = (CONF_DIR / f"{name}.in").read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{" + key + "}", str(value))
        (work / name).write_text(text, encoding="utf-8")


def published_marc(cluster: Cluster, base, changed) -> MarcRecord:
    """The merged record as offered: merged MARC 21 with a 005 of the cluster's last change."""
    marc = marcout.merged_marc(cluster, base_raw=base)
    marc.remove_fields("005")
    marc.add_ordered_field(Field("005", data=changed.strftime("%Y%m%d%H%M%S.0")))
    return marc


def publish(cat: Catalogue, work: Path, bar: QualityBar = QualityBar(), full: bool = False,
            batch: int = 20_000, progress: Callable[[str], None] = lambda _m: None) -> PublishReport:
    """Bring the Zebra database in ``work`` up to date with the catalogue's merged records."""
    started = time.perf_counter()
    work = Path(work)
    state_path = work / CHECKPOINT
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() and not full else {}
    if state.get("bar") not in (None, list(bar.require)):
        progress(f"quality bar changed ({', '.join(state['bar'])} → {bar.describe()}): publishing everything again")
        state = {}
    report = PublishReport(full=not state)
    write_config(work)
    if not state:
        for sub in ("register", "shadow"):
            for path in (work / sub).iterdir():
                path.unlink()
        zebra.zebraidx(work, "init")
    since = int(state.get("seq", 0))
    published = Published(cat.engine)
    pending_update: list[bytes] = []
    pending_delete: list[str] = []
    last = since

    def flush() -> None:
        nonlocal pending_update, pending_delete
        if pending_update:
            path = work / "batches" / "update.xml"
            path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n<collection xmlns="' + marcout.MARC_NS.encode()
                             + b'">\n' + b"".join(pending_update) + b"</collection>\n")
            zebra.zebraidx(work, "update", str(path))
        if pending_delete:
            path = work / "batches" / "delete.xml"
            path.write_bytes(_stub_collection(pending_delete))
            _delete(work, path)
        if pending_update or pending_delete:
            zebra.zebraidx(work, "commit")
        state_path.write_text(json.dumps({"seq": last, "bar": list(bar.require)}), encoding="utf-8")
        pending_update, pending_delete = [], []

    window = Window(kind="merged")
    for chunk in _pages(published, window, since, 500):
        bases = published.raws([(i.cluster.record.source, i.cluster.record.local_id) for i in chunk if i.cluster])
        for item in chunk:
            last = item.seq
            if item.deleted:
                if not report.full:
                    pending_delete.append(item.cluster_id)
                report.deleted += 1
                continue
            marc = published_marc(item.cluster, bases.get((item.cluster.record.source,
                                                           item.cluster.record.local_id)), item.datestamp)
            if not bar.passes(marc):
                report.below_bar += 1
                if not report.full:
                    pending_delete.append(item.cluster_id)  # it may have been good enough before
                continue
            pending_update.append(etree.tostring(marcxml_element(marc), encoding="UTF-8") + b"\n")
            report.updated += 1
        if len(pending_update) + len(pending_delete) >= batch:
            flush()
            progress(f"zebra: {report.updated} records offered, {report.deleted} deleted, "
                     f"{report.below_bar} below the quality bar")
    flush()
    report.last_seq = last
    report.seconds = time.perf_counter() - started
    return report


def _pages(published: Published, window, after: int, size: int):
    while True:
        items = published.page(window, after, size, full=True)
        if not items:
            return
        yield items
        after = items[-1].seq


def _stub_collection(ids: list[str]) -> bytes:
    """Records with just their 001: all ``zebraidx delete`` needs to find them (recordId is Local-number)."""
    root = etree.Element(f"{{{marcout.MARC_NS}}}collection", nsmap={None: marcout.MARC_NS})
    for cid in dict.fromkeys(ids):
        rec = etree.SubElement(root, f"{{{marcout.MARC_NS}}}record")
        etree.SubElement(rec, f"{{{marcout.MARC_NS}}}leader").text = "00000dam a2200000 a 4500"
        etree.SubElement(rec, f"{{{marcout.MARC_NS}}}controlfield", tag="001").text = cid
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _delete(work: Path, path: Path) -> None:
    """``zebraidx delete``; a record never offered (below the bar all along) is not an error."""
    try:
        zebra.zebraidx(work, "delete", str(path))
    except zebra.ZebraError as exc:
        if "seems new" not in str(exc) and "cannot delete" not in str(exc).lower():
            raise


def serve(work: Path, host: str = "127.0.0.1", port: int = 2100) -> zebra.ZebraServer:
    """Start zebrasrv on the published database (Z39.50 and SRU on one port); the caller stops it."""
    if not (work / CHECKPOINT).exists():
        raise zebra.ZebraError(f"nothing published in {work} yet: run `unioncat publish zebra` first")
    port = port or zebra.free_port(host)
    write_config(work, host, port)
    return zebra.launch(work, host, port, database="Default", record_type="xml")
