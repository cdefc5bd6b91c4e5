"""How healthy each member's harvesting is: freshness against its schedule, failures in a row, alerts.

The rules, in one place for the staff pages, ``unioncat status`` and the alert mails:

* a member's **age** is the time since its last successful (``ok`` or ``held``) harvest started;
  its **expected interval** is its ``schedule`` (a member without one is harvested on every
  ``unioncat run``, which we expect at least daily);
* it is **overdue** when the age passes the interval (the next harvest is due), and **stale** when the
  age passes twice the interval — a whole cycle was missed, so something is stuck (hbz lobid #1336:
  a union catalogue's update job sat for a week unnoticed);
* it **fails in a row** N times when N runs failed since its last successful one (default 3): one
  failure is often a network blip, three are not.

Paused and disabled members raise no alerts: somebody already decided about them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy.engine import Engine

from consortium.config import Source
from .stores.runs import RunStore

DEFAULT_INTERVAL = timedelta(days=1)
DEFAULT_FAILURES = 3


@dataclass
class Health:
    source: str
    last_ok: datetime | None
    age_s: float | None
    interval_s: float
    overdue: bool
    stale: bool
    failures_in_a_row: int

    @property
    def lag_s(self) -> float | None:
        """How far past its schedule the member is (0 when on time; None when never harvested)."""
        return None if self.age_s is None else max(0.0, self.age_s - self.interval_s)

    def as_dict(self) -> dict:
        return {"last_ok": self.last_ok.isoformat() if self.last_ok else None, "age_s": self.age_s,
                "interval_s": self.interval_s, "lag_s": self.lag_s, "overdue": self.overdue, "stale": self.stale,
                "failures_in_a_row": self.failures_in_a_row}


def health(engine: Engine, sources: tuple[Source, ...] | list[Source], now: datetime | None = None) -> dict[str, Health]:
    """The health of every source, from two grouped queries over all its runs."""
    now = now or datetime.now(timezone.utc)
    last_ok, streaks = RunStore(engine).success_streaks()
    out = {}
    for source in sources:
        ok = last_ok.get(source.id)
        interval = (source.schedule or DEFAULT_INTERVAL).total_seconds()
        age = (now - ok).total_seconds() if ok else None
        out[source.id] = Health(source.id, ok, age, interval, overdue=age is not None and age > interval,
                                stale=age is not None and age > 2 * interval,
                                failures_in_a_row=streaks.get(source.id, 0))
    return out


def alert_conditions(sources: tuple[Source, ...] | list[Source], states: dict[str, Health],
                     paused: set[str] | frozenset = frozenset(),
                     failures: int = DEFAULT_FAILURES) -> dict[str, tuple[str, str, str]]:
    """key → (source, kind, message) of every alert that holds now."""
    out = {}
    for source in sources:
        state = states.get(source.id)
        if state is None or not source.enabled or source.id in paused:
            continue
        if state.failures_in_a_row >= failures:
            out[f"failing:{source.id}"] = (source.id, "failing", f"{source.name} ({source.id}): the last "
                                           f"{state.failures_in_a_row} harvests failed")
        if state.stale:
            days = state.age_s / 86400
            out[f"stale:{source.id}"] = (source.id, "stale", f"{source.name} ({source.id}): last successful "
                                         f"harvest {days:.1f} days ago, schedule {source.schedule_text or 'every run'}")
    return out
