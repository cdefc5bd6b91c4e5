"""Normalising in batches: what a normaliser worker process runs, and all it imports.

The normalise stage (``unioncat.pipeline.normalise_stage``) sends batches of raw records to worker
processes started by a forkserver.  Their entry point lives here, below the pipeline, so a worker
imports the normaliser alone — not the pipeline's dedupe, index, harvester and Alembic, which cost
each worker ~1.2 CPU-s before its first record — and :data:`PRELOAD` names it for the forkserver to
import once, so every worker it forks starts with it already loaded.
"""
from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping

from harvester.raw import RawRecord

from . import normalise
from .errors import RecordError
from .store import Stored, stored

log = logging.getLogger(__name__)

#: The modules the forkserver imports before it forks a worker (``multiprocessing`` ``set_forkserver_preload``).
PRELOAD = [__name__]


def normalise_one(raw: RawRecord, holdings) -> tuple[Stored | None, str | None]:
    """``(record serialised for the store, None)`` or ``(None, reason)`` for one raw record.

    Expected rejections (RecordError) give their reason; anything else is a
    bug, logged with its traceback and quarantined all the same, so one
    record never stops a run.
    """
    try:
        record = normalise(raw, holdings)
    except RecordError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug, not bad data: keep the evidence and go on
        log.error("normalising %s/%s failed:\n%s", raw.source, raw.local_id, traceback.format_exc())
        return None, f"internal error: {exc!r}"
    return stored(record), None


def normalise_batch(batch: list[RawRecord], holdings: Mapping[str, tuple]) -> list[tuple[Stored | None, str | None]]:
    """Worker-process entry point: a batch in, JSON or reasons out (cheap to send back)."""
    return [normalise_one(raw, holdings.get(raw.source, ())) for raw in batch]
