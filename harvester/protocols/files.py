"""Harvesting a member's dump files: ``FileHarvest``.

A dump is a snapshot, so every file harvest that reads the dump is a full one: what the dump no
longer has is deleted at the end — unless the dump is visibly incomplete (a truncated record at the
end, broken XML), since it may simply be missing the records that would go.  Two records with one
001 in a dump keep the first; the second is quarantined.

Most nights most of 130 members send the same dump again, and reading one costs a parse and a hash
per record (28 s for 175k records).  So the run's high water is the dump's fingerprint — 16 hex
digits over names, sizes and mtimes, then 16 over the bytes — and a dump whose files were not
touched is skipped without a read; one touched but byte-identical (or written in the last two
seconds, when an mtime cannot tell two writes apart) costs one sequential read.
``--full`` always reads.
"""
from __future__ import annotations

import logging

from consortium.config import Source
from ..clients.dumps import RACY, DumpError, StreamBroken, content_digest, dump_files, read_path, stat_digest
from ..raw import QuarantinedItem, RawRecord
from ..run import Run

log = logging.getLogger(__name__)

#: Records (and quarantined pieces) committed together.
FILE_BATCH = 500


class FileHarvest:
    """Read every record of the member's dump files and commit them in batches, unless the dump is the last one."""

    def __init__(self, source: Source):
        self.source = source

    def harvest(self, run: Run) -> str | None:
        source = self.source
        if source.path is None:
            raise DumpError("a file source needs a path")
        files = dump_files(source.path, source.options.get("pattern"))
        stamp, last = stat_digest(files), run.checkpoint.high_water or ""
        unchanged = not run.full_requested and len(last) == 32
        if unchanged and last[:16] == stamp != RACY:
            return self._unchanged(run, last)
        content = content_digest(files)
        if unchanged and last[16:] == content:
            return self._unchanged(run, stamp + content)
        self._read(run)
        return stamp + content

    def _unchanged(self, run: Run, fingerprint: str) -> str:
        """The dump is the one last read: an incremental run with nothing to do (every record counts unchanged)."""
        run.begin(False)
        run.counts.unchanged = run.store.count(self.source.id)
        log.info("%s: the dump is unchanged since the last harvest; not read", self.source.id)
        return fingerprint

    def _read(self, run: Run) -> None:
        source = self.source
        run.begin(True)
        records: list[RawRecord] = []
        bad: list[QuarantinedItem] = []
        seen: dict[str, int] = {}
        items = read_path(source.path, source.id, source.format, source.encoding, source.options.get("pattern"))
        for n, item in enumerate(items, 1):
            if isinstance(item, QuarantinedItem):
                run.complete = run.complete and not isinstance(item, StreamBroken)
                bad.append(item)
            elif item.local_id in seen:
                bad.append(QuarantinedItem(source.id, item.local_id,
                                           f"duplicate local id {item.local_id!r}: record {n} of the dump has the "
                                           f"same 001 as record {seen[item.local_id]}; the first is kept",
                                           item.payload))
            else:
                seen[item.local_id] = n
                records.append(item)
            if len(records) + len(bad) >= FILE_BATCH:
                run.commit(records, bad)
                records, bad = [], []
        run.commit(records, bad)
        if not run.complete:
            log.warning("%s: the dump is incomplete (see quarantine); records it lacks are not marked deleted",
                        source.id)
