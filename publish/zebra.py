"""``unioncat publish zebra``: the merged records as a Zebra database, for Z39.50 and SRU copy cataloguing.

Koha serves Z39.50 the same way: a Zebra register kept in step with the
catalogue.  Each publish reads the cluster change feed after its own
checkpoint (kept in the Zebra folder beside the register it describes, so a
deleted folder means a full rebuild), writes the changed clusters that meet
the quality bar as one MARCXML batch and retires the others (deleted, merged
away, or no longer good enough) with a delete batch, then runs
``zebraidx update`` / ``delete`` / ``commit`` and moves the checkpoint.

Records offered: :func:`publish.marc.item_marc` of the merged items (001 the
cluster id, 035 per member, 852 per holding) with a 005 from the cluster's
last change (so Date/time-last-modified, Bib-1 1012, can be searched); the
delete batch is the deleted items' MARC from the same function.  The config
is this package's data, ``publish/zebra_conf/``: Bib-1 use attributes title
4, author 1003, ISBN 7, ISSN 8, subject 21, any 1016, date 31, local number
12, date-last-modified 1012 (``index.xsl``), the CQL mapping for SRU
(``cql2pqf.properties``), MARC 21 in UTF-8, MARC-8 (element set ``marc8``)
and MARCXML.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from pymarc import Field
from pymarc import Record as MarcRecord

from . import zebra_server as zebra
from .feed import Item, Published, Window
from .marc import HasEngine, item_marc
from .writers import COLLECTION_HEAD, COLLECTION_TAIL, marcxml_bytes

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
    """What one publish did: records offered, retired and held back, up to which change, in how long."""

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


def published_marc(item: Item) -> MarcRecord:
    """The merged record as offered: :func:`item_marc` with a 005 of the cluster's last change."""
    marc = item_marc(item)
    marc.remove_fields("005")
    marc.add_ordered_field(Field("005", data=item.datestamp.strftime("%Y%m%d%H%M%S.0")))
    return marc


@dataclass
class _Batch:
    """Records waiting for the next ``zebraidx`` run, and the checkpoint they bring Zebra up to."""

    work: Path
    bar: QualityBar
    last: int
    updates: list[bytes] = field(default_factory=list)
    deletes: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.updates) + len(self.deletes)

    def flush(self) -> None:
        """Update, delete, commit; then move the checkpoint (a crash before it replays the batch)."""
        if self.updates:
            path = self.work / "batches" / "update.xml"
            path.write_bytes(COLLECTION_HEAD + b"".join(self.updates) + COLLECTION_TAIL)
            zebra.zebraidx(self.work, "update", str(path))
        if self.deletes:
            path = self.work / "batches" / "delete.xml"
            path.write_bytes(COLLECTION_HEAD + b"".join(dict.fromkeys(self.deletes)) + COLLECTION_TAIL)
            _delete(self.work, path)
        if self:
            zebra.zebraidx(self.work, "commit")
        (self.work / CHECKPOINT).write_text(json.dumps({"seq": self.last, "bar": list(self.bar.require)}),
                                            encoding="utf-8")
        self.updates, self.deletes = [], []


def _start(work: Path, bar: QualityBar, full: bool, progress: Callable[[str], None]) -> int | None:
    """Write the config; the sequence to go on from, or None for a full publish (the register emptied)."""
    state_path = work / CHECKPOINT
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() and not full else {}
    if state.get("bar") not in (None, list(bar.require)):
        progress(f"quality bar changed ({', '.join(state['bar'])} → {bar.describe()}): publishing everything again")
        state = {}
    write_config(work)
    if state:
        return int(state.get("seq", 0))
    for sub in ("register", "shadow"):
        for path in (work / sub).iterdir():
            path.unlink()
    zebra.zebraidx(work, "init")
    return None


def publish(catalogue: HasEngine, work: Path, bar: QualityBar = QualityBar(), full: bool = False,
            batch: int = 20_000, progress: Callable[[str], None] = lambda _m: None) -> PublishReport:
    """Bring the Zebra database in ``work`` up to date with the catalogue's merged records.

    ``catalogue`` is anything with the database ``engine`` (the CLI passes its ``Catalogue``).
    """
    started = time.perf_counter()
    work = Path(work).resolve()  # zebraidx runs in work: a relative path (the default var/zebra) would not be found
    since = _start(work, bar, full, progress)
    report = PublishReport(full=since is None)
    pending = _Batch(work, bar, since or 0)
    for item in _items(Published(catalogue.engine), since or 0):
        _take(item, pending, report, bar)
        if len(pending) >= batch:
            pending.flush()
            progress(f"zebra: {report.updated} records offered, {report.deleted} deleted, "
                     f"{report.below_bar} below the quality bar")
    pending.flush()
    report.last_seq = pending.last
    report.seconds = time.perf_counter() - started
    return report


def _take(item: Item, pending: _Batch, report: PublishReport, bar: QualityBar) -> None:
    """Offer a changed cluster, or retire it when deleted or below the bar (it may have been good enough before).

    A full publish starts from an empty register, so it has nothing to retire.
    """
    pending.last = item.seq
    if not item.deleted:
        marc = published_marc(item)
        if bar.passes(marc):
            pending.updates.append(marcxml_bytes(marc))
            report.updated += 1
            return
        report.below_bar += 1
    else:
        report.deleted += 1
    if not report.full:
        pending.deletes.append(marcxml_bytes(item_marc(replace(item, deleted=True))))


def _items(published: Published, after: int, size: int = 500) -> Iterator[Item]:
    """Every merged item changed after ``after``, page by page."""
    window = Window(kind="merged")
    while True:
        items = published.page(window, after, size, full=True)
        yield from items
        if len(items) < size:
            return
        after = items[-1].seq


def _delete(work: Path, path: Path) -> None:
    """``zebraidx delete``; a record never offered (below the bar all along) is not an error."""
    try:
        zebra.zebraidx(work, "delete", str(path))
    except zebra.ZebraError as exc:
        if "seems new" not in str(exc) and "cannot delete" not in str(exc).lower():
            raise


def serve(work: Path, host: str = "127.0.0.1", port: int = 2100) -> zebra.ZebraServer:
    """Start zebrasrv on the published database (Z39.50 and SRU on one port); the caller stops it."""
    work = Path(work).resolve()
    if not (work / CHECKPOINT).exists():
        raise zebra.ZebraError(f"nothing published in {work} yet: run `unioncat publish zebra` first")
    port = port or zebra.free_port(host)
    write_config(work, host, port)
    return zebra.launch(work, host, port, database="Default", record_type="xml")
