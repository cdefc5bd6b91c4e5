"""Operational state of the members: pauses, probe history, held deletions, alerts sent.

What the data centre decides about a member (pause it, approve a large deletion) and what it
learnt about it (availability probes, alerts already e-mailed) lives here, next to the raw store,
so the harvester, the command line and the staff pages all read the same rows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text, func, select, update

from storage.db import UTCDateTime, metadata, next_value, utcnow
from .probe import ProbeResult
from .stores.base import Store

source_state = Table(
    "source_state",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("paused", Boolean, nullable=False, default=False),
    Column("changed_by", String(64)),
    Column("changed_at", UTCDateTime),
    Column("reason", Text),
)

probe_results = Table(
    "probe_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("check_id", Integer, nullable=False, index=True),  # one `sources check` = one check id
    Column("checked_at", UTCDateTime, nullable=False),
    Column("source", String(64), nullable=False, index=True),
    Column("region", String(128), nullable=False),
    Column("protocol", String(16), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("message", Text, nullable=False),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("opac_ok", Boolean),  # None: no OPAC template or no sample record to try
    Column("opac_message", Text),
)

held_deletions = Table(
    "held_deletions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False, index=True),
    Column("run_id", Integer),
    Column("since", UTCDateTime),  # full harvests: records not seen since then would go
    Column("live", Integer, nullable=False),
    Column("unseen", Integer, nullable=False),
    Column("sample", Text, nullable=False),  # JSON list of the first local ids that would go
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved | rejected | superseded
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", UTCDateTime),
    Column("applied", Integer),
)

alert_state = Table(
    "alert_state",
    metadata,
    Column("key", String(160), primary_key=True),  # "<kind>:<source>"
    Column("source", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("raised_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("cleared_at", UTCDateTime),
)

PROBE_CHECK = "probe_check"
#: The one ``alert_state`` row that is not a member's: the alert mail could not be delivered.  It lives
#: beside the alerts so every process that mails them (CLI, cron, in-process and rq jobs) records it
#: where the staff page reads it; member-alert syncing and mailing leave it alone.
MAIL_KEY, MAIL_KIND = "mail:delivery", "mail"
#: The rows that are members' alerts (every one but the mail-delivery row).
MEMBER_ALERTS = alert_state.c.kind != MAIL_KIND


@dataclass
class Hold:
    """A harvest's deletions (unseen records, kept-back notices), held for staff to approve or reject."""

    id: int
    source: str
    run_id: int | None
    since: datetime | None
    live: int
    unseen: int
    sample: list[str]
    reason: str
    status: str
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    applied: int | None = None


class OpsStore(Store):
    """Read and write the operational tables (one writer lock with the raw store)."""

    # -- pause / resume ----------------------------------------------------------
    def set_paused(self, source: str, paused: bool, by: str = "", reason: str = "") -> None:
        values = dict(paused=paused, changed_by=by or None, changed_at=utcnow(), reason=reason or None)
        with self._lock, self.engine.begin() as conn:
            if conn.execute(select(source_state.c.source).where(source_state.c.source == source)).first():
                conn.execute(update(source_state).where(source_state.c.source == source).values(**values))
            else:
                conn.execute(source_state.insert().values(source=source, **values))

    def paused(self) -> dict[str, dict]:
        """source id → {changed_by, changed_at, reason} of every paused member."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(source_state).where(source_state.c.paused.is_(True))).mappings()
            return {r["source"]: dict(r) for r in rows}

    # -- probes ------------------------------------------------------------------
    def record_probes(self, results: list[tuple[ProbeResult, str, str, ProbeResult | None]]) -> int:
        """Store one availability check: (endpoint probe, region, protocol, OPAC probe or None) per member.

        Returns the check id that groups these rows in the history.
        """
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            check_id = next_value(conn, PROBE_CHECK)
            conn.execute(probe_results.insert(), [dict(
                check_id=check_id, checked_at=now, source=r.source, region=region, protocol=protocol, ok=r.ok,
                message=r.message, latency_ms=r.latency_ms,
                opac_ok=None if opac is None else opac.ok, opac_message=None if opac is None else opac.message,
            ) for r, region, protocol, opac in results])
        return check_id

    def probe_checks(self, limit: int = 20) -> list[list[dict]]:
        """The newest ``limit`` checks, newest first, each the list of its rows."""
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(probe_results.c.check_id).distinct()
                                              .order_by(probe_results.c.check_id.desc()).limit(limit))]
            if not ids:
                return []
            rows = conn.execute(select(probe_results).where(probe_results.c.check_id.in_(ids))
                                .order_by(probe_results.c.id)).mappings().all()
        by_check: dict[int, list[dict]] = {i: [] for i in ids}
        for row in rows:
            by_check[row["check_id"]].append(dict(row))
        return [by_check[i] for i in ids]

    # -- held deletions -------------------------------------------------------------
    def hold(self, source: str, run_id: int | None, since: datetime | None, live: int, unseen: int,
             sample: list[str], reason: str) -> int:
        """Hold a full harvest's deletions; an older pending hold of the member is superseded."""
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(held_deletions).where(held_deletions.c.source == source,
                                                      held_deletions.c.status == "pending")
                         .values(status="superseded", decided_at=now))
            result = conn.execute(held_deletions.insert().values(
                source=source, run_id=run_id, since=since, live=live, unseen=unseen, sample=json.dumps(sample),
                reason=reason, status="pending", created_at=now))
            return int(result.inserted_primary_key[0])

    def holds(self, source: str | None = None, status: str | None = "pending", limit: int = 50) -> list[Hold]:
        query = select(held_deletions).order_by(held_deletions.c.id.desc()).limit(limit)
        if source is not None:
            query = query.where(held_deletions.c.source == source)
        if status is not None:
            query = query.where(held_deletions.c.status == status)
        with self.engine.connect() as conn:
            return [_hold(r) for r in conn.execute(query).mappings()]

    def get_hold(self, hold_id: int) -> Hold | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(held_deletions).where(held_deletions.c.id == hold_id)).mappings().first()
        return None if row is None else _hold(row)

    def decide(self, hold_id: int, status: str, by: str, applied: int | None = None) -> None:
        if status not in ("approved", "rejected"):
            raise ValueError(f"a hold is approved or rejected, not {status!r}")
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(held_deletions).where(held_deletions.c.id == hold_id).values(
                status=status, decided_by=by, decided_at=utcnow(), applied=applied))

    def count_pending(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(held_deletions)
                                    .where(held_deletions.c.status == "pending")).scalar_one())

    # -- alerts ------------------------------------------------------------------
    def alerts(self, active: bool | None = True) -> list[dict]:
        """The members' alerts (not the mail-delivery problem: :meth:`mail_problem`), newest first."""
        query = select(alert_state).where(MEMBER_ALERTS).order_by(alert_state.c.raised_at.desc())
        if active is not None:
            query = query.where(alert_state.c.active.is_(active))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def sync_alerts(self, current: dict[str, tuple[str, str, str]]) -> list[str]:
        """Make the active alerts ``current`` (key → (source, kind, message)); returns the keys newly raised.

        A condition that persists stays one alert (not re-sent); one that cleared is closed, and raised
        afresh if it comes back.
        """
        now = utcnow()
        raised = []
        with self._lock, self.engine.begin() as conn:
            known = {r["key"]: dict(r) for r in conn.execute(
                select(alert_state).where(MEMBER_ALERTS)).mappings()}
            for key, (source, kind, message) in current.items():
                old = known.get(key)
                if old is None:
                    conn.execute(alert_state.insert().values(key=key, source=source, kind=kind, message=message,
                                                             active=True, raised_at=now))
                    raised.append(key)
                elif not old["active"]:
                    conn.execute(update(alert_state).where(alert_state.c.key == key).values(
                        active=True, message=message, raised_at=now, sent_at=None, cleared_at=None))
                    raised.append(key)
                else:
                    conn.execute(update(alert_state).where(alert_state.c.key == key).values(message=message))
            for key, old in known.items():
                if old["active"] and key not in current:
                    conn.execute(update(alert_state).where(alert_state.c.key == key)
                                 .values(active=False, cleared_at=now))
        return raised

    def unsent_alerts(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(alert_state).where(
                alert_state.c.active.is_(True), alert_state.c.sent_at.is_(None),
                MEMBER_ALERTS)).mappings()]

    def mark_sent(self, keys: list[str]) -> None:
        if not keys:
            return
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(alert_state).where(alert_state.c.key.in_(keys)).values(sent_at=utcnow()))

    def mail_failed(self, error: str) -> None:
        """Remember that the alert mail could not be sent; ``raised_at`` stays the first failure's time."""
        with self._lock, self.engine.begin() as conn:
            row = conn.execute(select(alert_state.c.active).where(alert_state.c.key == MAIL_KEY)).first()
            if row is None:
                conn.execute(alert_state.insert().values(key=MAIL_KEY, source="", kind=MAIL_KIND, message=error,
                                                         active=True, raised_at=utcnow()))
                return
            since = {} if row.active else {"raised_at": utcnow(), "cleared_at": None}
            conn.execute(update(alert_state).where(alert_state.c.key == MAIL_KEY)
                         .values(active=True, message=error, **since))

    def mail_delivered(self) -> None:
        """The alert mail went out: a delivery problem remembered before is over."""
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(alert_state).where(alert_state.c.key == MAIL_KEY, alert_state.c.active.is_(True))
                         .values(active=False, cleared_at=utcnow()))

    def mail_problem(self) -> dict | None:
        """``{"error", "since"}`` while the alert mail cannot be delivered, else ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(alert_state.c.message, alert_state.c.raised_at).where(
                alert_state.c.key == MAIL_KEY, alert_state.c.active.is_(True))).first()
        return {"error": row.message, "since": row.raised_at} if row else None


def _hold(row) -> Hold:
    return Hold(id=row["id"], source=row["source"], run_id=row["run_id"], since=row["since"], live=row["live"],
                unseen=row["unseen"], sample=json.loads(row["sample"] or "[]"), reason=row["reason"],
                status=row["status"], created_at=row["created_at"], decided_by=row["decided_by"],
                decided_at=row["decided_at"], applied=row["applied"])
