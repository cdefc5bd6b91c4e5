"""Where a full dedupe pass is, kept in the database so an interrupted pass goes on from there.

At 5M member records a full pass stages features and keys for about an hour and scores blocks for
hours more (BENCHMARKS.md, "The 5M run"); starting again after a killed job, a deploy or a reboot threw
that away, and until the pass ends the stored keys and pairs are half made (``EvidenceStore.restart``
drops the indexes an incremental pass reads).  So the pass writes where it is, each mark in the same
transaction as the work it covers (named counters, ``storage.db``):

* ``phase`` — :data:`IDLE`, :data:`STAGING`, :data:`SCORING`, :data:`CLUSTERING` or :data:`MERGING`;
* ``ceiling`` — the last record ``seq`` the pass covers, taken when it starts: a record changed later is
  the next pass's, so a rerun never stages a record twice;
* ``staged`` — the ``seq`` of the last record staged (committed with its batch's features and keys; a
  staging cut into partitions moves it once, when they are all done);
* ``scored`` — the block walk's position (``dedupe_walk.pos``) up to which every kept pair is stored;
* ``restarted`` — 1 once the pass emptied the stored features, keys and pairs (``EvidenceStore.restart``):
  staging cut into partitions and interrupted goes on without emptying them again (its partitions skip
  what is stored);
* ``epoch`` — which staging of the pass is current: bumped whenever a pass (re)starts staging, so a
  staging partition left running by an earlier attempt (``partition``) stops at its next batch instead of
  writing beside the current attempt's (:func:`fenced`).

Any dedupe pass that finds a full pass under way finishes it first, whatever it was asked for: an
incremental pass over half-staged evidence would score against the wrong blocks.  Clustering and merging
were already safe to run again (``recluster``, the pending list); their phases only say what is left.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from storage.db import get_value, next_value, set_value

IDLE, STAGING, SCORING, CLUSTERING, MERGING = range(5)
PHASES = ("idle", "staging", "scoring", "clustering", "merging")
_NAMES = ("dedupe_full_phase", "dedupe_full_ceiling", "dedupe_full_staged", "dedupe_full_scored",
          "dedupe_full_restarted")
_EPOCH = "dedupe_full_stage_epoch"


class StaleStaging(RuntimeError):
    """A staging partition of an attempt that a newer one replaced: its writes are refused."""


@dataclass(frozen=True)
class FullPass:
    """A full pass's place: its phase, the last record seq it covers, how far staging and scoring got,
    whether it emptied the stored evidence yet."""

    phase: int = IDLE
    ceiling: int = 0
    staged: int = 0
    scored: int = 0
    restarted: int = 0

    @property
    def under_way(self) -> bool:
        """Whether there is a full pass to run (begun by this call, or interrupted before)."""
        return self.phase != IDLE

    @property
    def begun(self) -> bool:
        """Whether an interrupted pass left work done (not a pass that has only just begun)."""
        return bool(self.staged or self.restarted) or self.phase > STAGING

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


def restarted(conn: Connection) -> None:
    """A mark that the pass emptied the stored evidence (run in that transaction)."""
    set_value(conn, _NAMES[4], 1)


def new_epoch(conn: Connection) -> int:
    """Inside the caller's transaction: begin a new staging attempt; its epoch (see :func:`fenced`)."""
    return next_value(conn, _EPOCH)


def fenced(epoch: int) -> Callable[[Connection], None]:
    """A check, run first in a staging batch's transaction, that ``epoch`` is still the current attempt;
    raises :class:`StaleStaging` otherwise.  It reads the epoch share-locked, so partitions write side by side
    while a new attempt's :func:`new_epoch` waits for their open batches, and they for it: a batch commits
    before the new attempt begins (whose :meth:`EvidenceStore.restart` or skipping of stored records then
    deals with it) or not at all."""
    def check(conn: Connection) -> None:
        current = get_value(conn, _EPOCH, shared_lock=True)
        if current != epoch:
            raise StaleStaging(f"staging attempt {epoch} was replaced by attempt {current}: its partition stops")
    return check


def scored(position: int) -> Callable[[Connection], None]:
    """A mark that every block up to walk position ``position`` is scored (run in its pairs' transaction)."""
    return lambda conn: set_value(conn, _NAMES[3], position)


def finish(conn: Connection) -> None:
    """Inside the caller's transaction: no full pass is under way any more."""
    _store(conn, FullPass())


def _store(conn: Connection, place: FullPass) -> None:
    for name, value in zip(_NAMES, (place.phase, place.ceiling, place.staged, place.scored, place.restarted)):
        set_value(conn, name, value)
