"""What every harvester store holds: the engine and the database's one writer lock."""
from __future__ import annotations

from sqlalchemy.engine import Engine

from storage.db import write_lock


class Store:
    """Base of the harvester's stores; they share one writer lock per database (``storage.db``)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)
