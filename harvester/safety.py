"""The safety stop: a harvest that would delete too much is held for approval, not applied.

A harvest deletes in two ways: a full harvest (``--full``, a first harvest, every file dump) ends by
marking deleted whatever the member did not send, and an OAI-PMH harvest receives deletion notices
(kept back in ``deferred_deletions`` while the run goes on).  When a server is half-broken, an index
is being rebuilt, a dump was cut short or an ILS migration "deletes" everything, that would wipe a
member from the union catalogue overnight.  So, for every protocol alike, the records that would go
(both kinds together) are counted when the run ends; if they are more than ``max_shrink`` of the member's live
records (default 20 %; judged only from ``SHRINK_FLOOR`` = 10 records up, since a member of three records
losing one is not a broken server) or more than ``max_deletions`` records (default 1000), nothing is deleted: the
run ends with status ``held`` and the pending deletion is stored (:class:`harvester.ops.OpsStore`)
until a member of staff approves it (then the kept-back notices are applied and exactly the records still
unseen since that run started are deleted) or rejects it (the notices are dropped, the records stay).  Both limits are per-source keys, or ``defaults:`` in ``sources.yaml``.
"""
from __future__ import annotations

import logging
from datetime import datetime

from consortium.config import Source
from .ops import OpsStore
from .stores.records import RecordStore

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


def settle(store: RecordStore, source: Source, run_id: int | None, since: datetime | None,
           full: bool) -> tuple[int, str | None]:
    """Apply a finished run's deletions, or hold them all for approval if they are too many.

    Returns (records deleted, why they were held or None).  A full harvest's deletions are the live
    records not seen since it started; every run's are also the deletion notices it kept back.
    """
    live = store.count(source.id)
    unseen, sample = store.unseen(source.id, since, SAMPLE) if full and since is not None else (0, [])
    notices = store.deferred(source.id)
    total = unseen + len(notices)
    if not total:
        return 0, None
    shrink, most = limits(source)
    fraction = total / live if live else 1.0
    if (total >= SHRINK_FLOOR and fraction > shrink) or total > most:
        what = []
        if unseen:
            what.append(f"the full harvest found {live - unseen} of the {live} records held for this member")
        if notices:
            what.append(f"the member sent {len(notices)} deletion notice(s)")
        reason = (f"{'; '.join(what)}; {total} would be deleted ({fraction:.0%}, more than "
                  f"{f'max_deletions {most}' if total > most else 'max_shrink ' + format(shrink, '.0%')})"
                  f"; nothing was marked deleted — approve or reject the deletion on the staff page, "
                  f"or raise max_shrink / max_deletions for this source if the member really shrank")
        OpsStore(store.engine).hold(source.id, run_id, since if full else None, live, total,
                                    (notices + sample)[:SAMPLE], reason)
        log.warning("%s: deletions held for approval: %s", source.id, reason)
        return 0, reason
    deleted = store.apply_deferred(source.id, run_id=run_id) if notices else 0
    if full and since is not None:
        deleted += store.delete_unseen(source.id, since=since, run_id=run_id)
    if deleted:
        log.info("%s: %d record(s) the member no longer has marked deleted", source.id, deleted)
    return deleted, None


def approve(store: RecordStore, ops: OpsStore, hold_id: int, by: str) -> int:
    """Apply a held deletion: delete the records still unseen since the held run started."""
    hold = ops.get_hold(hold_id)
    if hold is None or hold.status != "pending":
        raise LookupError(f"no pending held deletion {hold_id}")
    deleted = store.apply_deferred(hold.source, run_id=hold.run_id)
    if hold.since is not None:
        deleted += store.delete_unseen(hold.source, since=hold.since, run_id=hold.run_id)
    ops.decide(hold_id, "approved", by, applied=deleted)
    log.info("%s: held deletion %d approved by %s: %d record(s) deleted", hold.source, hold_id, by, deleted)
    return deleted


def reject(store: RecordStore, ops: OpsStore, hold_id: int, by: str) -> None:
    """Keep the records: the kept-back notices are dropped (a later full harvest may hold them again)."""
    hold = ops.get_hold(hold_id)
    if hold is None or hold.status != "pending":
        raise LookupError(f"no pending held deletion {hold_id}")
    store.drop_deferred(hold.source)
    ops.decide(hold_id, "rejected", by)
