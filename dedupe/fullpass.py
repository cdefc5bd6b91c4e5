"""Where a full dedupe pass is, kept in the database so an interrupted pass goes on from there.

At 5M member records a full pass stages features and keys for about an hour and scores blocks for
hours more (BENCHMARKS.md, "The 5M run"); starting again after a killed job, a deploy or a reboot threw
that away, and until the pass ends the stored keys and pairs are half made (``EvidenceStore.restart``
drops the indexes an incremental pass reads).  So the pass writes where it is, each mark in the same
transaction as the work it covers (named counters, ``storage.db``):

* ``phase`` — :data:`IDLE`, :data:`STAGING`, :data:`SCORING`, :data:`CLUSTERING` or :data:`MERGING`;
* ``ceiling`` — the last record ``seq`` the pass covers, taken when it starts: a record changed later is
  the next pass's, so a rerun never stages a record twice;
* ``staged`` — the ``seq`` of the last record staged (committed with its batch's features and keys);
* ``scored`` — the block walk's position (``dedupe_walk.pos``) up to which every kept pair is stored.

Any dedupe pass that finds a full pass under way finishes it first, whatever it was asked for: an
incremental pass over half-staged evidence would score against the wrong blocks.  Clustering and merging
were already safe to run again (``recluster``, the pending list); their phases only say what is left.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from storage.db import get_value, set_value

IDLE, STAGING, SCORING, CLUSTERING, MERGING = range(5)
PHASES = ("idle", "staging", "scoring", "clustering", "merging")
_NAMES = ("dedupe_full_phase", "dedupe_full_ceiling", "dedupe_full_staged", "dedupe_full_scored")


@dataclass(frozen=True)
class FullPass:
    """A full pass's place: its phase, the last record seq it covers, how far staging and scoring got."""

    phase: int = IDLE
    ceiling: int = 0
    staged: int = 0
    scored: int = 0

    @property
    def under_way(self) -> bool:
        """Whether there is a full pass to run (begun by this call, or interrupted before)."""
        return self.phase != IDLE

    @property
    def begun(self) -> bool:
        """Whether an interrupted pass left work done (not a pass that has only just begun)."""
        return bool(self.staged) or self.phase > STAGING

    def describe(self) -> str:
        where = {STAGING: f" after record seq {self.staged:,} of {self.ceiling:,}",
                 SCORING: f" after block walk position {self.scored:,}"}
        return f"{PHASES[self.phase]}{where.get(self.phase, '')}"


def current(engine: Engine) -> FullPass:
    """The full pass under way (phase :data:`IDLE`: none)."""
    with engine.connect() as conn:
        return FullPass(*(get_value(conn, name) for name in _NAMES))


def begin(engine: Engine, ceiling: int) -> FullPass:
    """Start a full pass over the records up to seq ``ceiling``."""
    started = FullPass(STAGING, ceiling)
    with engine.begin() as conn:
        _store(conn, started)
    return started


def phase(value: int) -> Callable[[Connection], None]:
    """A mark that the pass entered phase ``value`` (its staged and scored marks kept, scoring's reset)."""
    def mark(conn: Connection) -> None:
        set_value(conn, _NAMES[0], value)
        if value == SCORING:
            set_value(conn, _NAMES[3], 0)
    return mark


def staged(seq: int) -> Callable[[Connection], None]:
    """A mark that every record up to ``seq`` is staged (run in the batch's transaction)."""
    return lambda conn: set_value(conn, _NAMES[2], seq)


def scored(position: int) -> Callable[[Connection], None]:
    """A mark that every block up to walk position ``position`` is scored (run in its pairs' transaction)."""
    return lambda conn: set_value(conn, _NAMES[3], position)


def finish(conn: Connection) -> None:
    """Inside the caller's transaction: no full pass is under way any more."""
    _store(conn, FullPass())


def _store(conn: Connection, place: FullPass) -> None:
    for name, value in zip(_NAMES, (place.phase, place.ceiling, place.staged, place.scored)):
        set_value(conn, name, value)
