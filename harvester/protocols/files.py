"""Harvesting a member's dump files: ``FileHarvest``.

A dump is a snapshot, so every file harvest is a full one: what the dump no longer has is deleted
at the end — unless the dump is visibly incomplete (a truncated record at the end, broken XML),
since it may simply be missing the records that would go.  Two records with one 001 in a dump
keep the first; the second is quarantined.
"""
from __future__ import annotations

import logging

from consortium.config import Source
from ..clients.dumps import DumpError, StreamBroken, read_path
from ..raw import QuarantinedItem, RawRecord
from ..run import Run

log = logging.getLogger(__name__)

#: Records (and quarantined pieces) committed together.
FILE_BATCH = 500


class FileHarvest:
    """Read every record of the member's dump files and commit them in batches."""

    def __init__(self, source: Source):
        self.source = source

    def harvest(self, run: Run) -> str | None:
        source = self.source
        run.begin(True)
        if source.path is None:
            raise DumpError("a file source needs a path")
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
        return None
