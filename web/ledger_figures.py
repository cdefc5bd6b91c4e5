"""Computing the contribution ledger's figures, without a web request: the ledger job
(``unioncat ledger refresh``, the scheduler, the in-process runner) and the pages, when no snapshot
exists yet, call :func:`refresh`.

Computing reads every live catalogue entry (whose member record came first) and every usage sum, so at
1,300 members it is a job's work, not a page's: the pages read the stored snapshot
(:meth:`web.ledger_store.LedgerSnapshots.latest`) and say when it was taken.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Protocol

from consortium.config import SourcesFile
from dedupe.store import ClusterStore
from harvester.store import RawStore

from .ledger_store import LedgerSnapshots
from .usage_store import HELD, UsageStore

#: How old the snapshot may grow before the scheduler (or ``unioncat run``) computes it again.
REFRESH_EVERY = timedelta(hours=6)

#: Usage events whose records count as given by the members holding them ("downloaded by others").
GIVEN = ("download", *HELD.values())


class Stores(Protocol):
    """What computing needs: a :class:`unioncat.catalogue.Catalogue` or the web app's services."""

    sources: SourcesFile
    engine: object
    raw: RawStore
    clusters: ClusterStore


def ledger_rows(stores: Stores, now: datetime | None = None) -> list[dict]:
    """Every member of sources.yaml with its figures, in sources.yaml's order."""
    now = now or datetime.now(timezone.utc)
    sums = UsageStore(stores.engine).sums(("ill_request", *GIVEN))
    ill_records = {rec for event, _r, _h, rec, _n in sums if event == "ill_request" and rec}
    original, holders = _originals(stores, ill_records)
    contributed = stores.raw.counts_by_source()
    last_ok, _failures = stores.raw.success_streaks()
    given, used = _usage(sums, holders)
    rows = []
    for source in stores.sources.sources:
        ok = last_ok.get(source.id)
        rows.append({
            "member": source.id, "name": source.name, "region": source.region,
            "contributed": contributed.get(source.id, 0), "original": original[source.id],
            "fresh_days": (now - ok).days if ok is not None else None,
            "downloaded_by_others": sum(given[e][source.id] for e in GIVEN),
            "ill_could_fill": given["ill_request"][source.id],
            "downloads_used": used["download"][source.id], "ill_sent": used["ill_request"][source.id],
        })
    return rows


def refresh(stores: Stores, now: datetime | None = None) -> tuple[str, list[dict]]:
    """Compute the figures and keep them as this month's snapshot: (``YYYY-MM``, the rows)."""
    now = now or datetime.now(timezone.utc)
    rows = ledger_rows(stores, now)
    month = now.strftime("%Y-%m")
    LedgerSnapshots(stores.engine).save(month, rows, now)
    return month, rows


def stale(engine, now: datetime | None = None, every: timedelta = REFRESH_EVERY) -> bool:
    """Is the snapshot missing or older than ``every``?  (The scheduler and ``unioncat run`` ask.)"""
    taken = LedgerSnapshots(engine).taken_at()
    return taken is None or (now or datetime.now(timezone.utc)) - taken >= every


def _originals(stores: Stores, wanted: set[str]) -> tuple[Counter, dict[str, set[str]]]:
    """(member → entries it catalogued first, entry → holding members for the ``wanted`` entries): one pass."""
    first_seen = stores.raw.first_seen()
    original: Counter = Counter()
    holders: dict[str, set[str]] = {}
    for cluster in stores.clusters.iter_live():
        seen = [(first_seen[m], m[0]) for m in cluster.members if m in first_seen]
        if seen:
            original[min(seen)[1]] += 1
        if cluster.id in wanted:
            holders[cluster.id] = set(cluster.sources)
    return original, holders


def _usage(sums, holders: dict[str, set[str]]) -> tuple[dict[str, Counter], dict[str, Counter]]:
    """(event → member → count given to others, event → member → count its readers used)."""
    given = {event: Counter() for event in ("ill_request", *GIVEN)}
    used = {"download": Counter(), "ill_request": Counter()}
    for event, reader, holding, record, n in sums:
        if reader and event in used:
            used[event][reader] += n
        lenders = {holding} if event != "ill_request" and holding else holders.get(record, set())
        for member in lenders - {reader}:
            given[event][member] += n
    return given, used
