"""The safety stop: a full harvest that would delete too much is held for approval, not applied.

A full harvest (``--full``, a first harvest, every file dump) ends by marking deleted whatever the
member did not send.  When a server is half-broken, an index is being rebuilt or a dump was cut short,
that would wipe a member from the union catalogue overnight.  So, for every protocol alike, the
records that would go are counted first; if they are more than ``max_shrink`` of the member's live
records (default 20 %; judged only from ``SHRINK_FLOOR`` = 10 records up, since a member of three records
losing one is not a broken server) or more than ``max_deletions`` records (default 1000), nothing is deleted: the
run ends with status ``held`` and the pending deletion is stored (:class:`harvester.ops.OpsStore`)
until a member of staff approves it (then exactly the records still unseen since that run started are
deleted) or rejects it.  Both limits are per-source keys, or ``defaults:`` in ``sources.yaml``.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from .config import Source
from .ops import OpsStore
from .store import RawStore, raw_records

if TYPE_CHECKING:
    from .harvest import _Run

log = logging.getLogger(__name__)

DEFAULT_MAX_SHRINK = 0.2
DEFAULT_MAX_DELETIONS = 1000
SHRINK_FLOOR = 10
SAMPLE = 50


def limits(source: Source) -> tuple[float, int]:
    """(max_shrink fraction, max_deletions) for a source (its own keys, the file's defaults, or ours)."""
    shrink = source.options.get("max_shrink", DEFAULT_MAX_SHRINK)
    if isinstance(shrink, str) and shrink.strip().endswith("%"):
        shrink = float(shrink.strip()[:-1]) / 100
    return float(shrink), int(source.options.get("max_deletions", DEFAULT_MAX_DELETIONS))


def unseen_counts(store: RawStore, source: str, since: datetime) -> tuple[int, int, list[str]]:
    """(live records, live records not seen since ``since``, a sample of the latter's ids)."""
    with store.engine.connect() as conn:
        live = conn.execute(select(func.count()).select_from(raw_records).where(
            raw_records.c.source == source, raw_records.c.deleted.is_(False))).scalar_one()
        unseen_q = select(raw_records.c.local_id).where(
            raw_records.c.source == source, raw_records.c.deleted.is_(False), raw_records.c.seen_at < since)
        unseen = conn.execute(select(func.count()).select_from(unseen_q.subquery())).scalar_one()
        sample = [r[0] for r in conn.execute(unseen_q.order_by(raw_records.c.local_id).limit(SAMPLE))]
    return int(live), int(unseen), sample


def end_full_harvest(run: "_Run", since: datetime | None) -> None:
    """Mark deleted what a full harvest did not see — or hold that for approval if it is too much."""
    source, store = run.source, run.store
    if since is None:
        return
    live, unseen, sample = unseen_counts(store, source.id, since)
    if not unseen:
        return
    shrink, most = limits(source)
    if (unseen >= SHRINK_FLOOR and unseen / live > shrink) or unseen > most:
        found = live - unseen
        reason = (f"the full harvest found {found} of the {live} records held for this member; "
                  f"{unseen} would be deleted ({unseen / live:.0%}, more than "
                  f"{f'max_deletions {most}' if unseen > most else 'max_shrink ' + format(shrink, '.0%')})"
                  f"; nothing was marked deleted — approve or reject the deletion on the staff page, "
                  f"or raise max_shrink / max_deletions for this source if the member really shrank")
        OpsStore(store.engine).hold(source.id, run.run_id, since, live, unseen, sample, reason)
        log.warning("%s: deletions held for approval: %s", source.id, reason)
        run.held = reason
        return
    deleted = store.delete_unseen(source.id, since=since, run_id=run.run_id)
    if deleted:
        log.info("%s: %d record(s) no longer sent by the member marked deleted", source.id, deleted)
    run.counts.deleted += deleted


def approve(store: RawStore, ops: OpsStore, hold_id: int, by: str) -> int:
    """Apply a held deletion: delete the records still unseen since the held run started."""
    hold = ops.get_hold(hold_id)
    if hold is None or hold.status != "pending":
        raise LookupError(f"no pending held deletion {hold_id}")
    deleted = store.delete_unseen(hold.source, since=hold.since, run_id=hold.run_id)
    ops.decide(hold_id, "approved", by, applied=deleted)
    log.info("%s: held deletion %d approved by %s: %d record(s) deleted", hold.source, hold_id, by, deleted)
    return deleted


def reject(ops: OpsStore, hold_id: int, by: str) -> None:
    hold = ops.get_hold(hold_id)
    if hold is None or hold.status != "pending":
        raise LookupError(f"no pending held deletion {hold_id}")
    ops.decide(hold_id, "rejected", by)
