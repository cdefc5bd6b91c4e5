"""One SQLAlchemy ``MetaData`` for every store, and the engine factory.

Each package declares its own tables against :data:`metadata` (raw tables
here, normalised records in ``normaliser.store``, clusters in
``dedupe.store``) so the schema lives next to the code that owns it, while a
single ``create_all`` builds the whole database.  SQLite is the embedded
default and runs in WAL mode so readers (the web app) never block the single
writer (the pipeline); any other SQLAlchemy URL (PostgreSQL) works unchanged.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, select, update
from sqlalchemy.engine import Connection, Engine

metadata = MetaData()

counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def utcnow() -> datetime:
    """Timezone-aware UTC now, truncated to seconds (what OAI-PMH speaks)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite turn on WAL, a busy timeout and foreign keys.

    WAL lets the web app read while a harvest writes; the busy timeout makes a
    second writer (another CLI process) wait instead of failing at once.
    """
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def write_lock(engine: Engine) -> threading.Lock:
    """The one writer lock of an embedded database (per URL, per process).

    SQLite allows one writer at a time; harvest threads serialise their
    batches through this lock rather than fight over SQLITE_BUSY.
    """
    key = str(engine.url)
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.Lock())


def next_value(conn: Connection, name: str, step: int = 1) -> int:
    """Advance a named counter by ``step`` and return its new value.

    Counters give every change a monotonically increasing sequence number so
    each downstream stage can process "what changed since my checkpoint".
    Call inside the caller's transaction.
    """
    row = conn.execute(select(counters.c.value).where(counters.c.name == name)).first()
    if row is None:
        conn.execute(counters.insert().values(name=name, value=step))
        return step
    value = row[0] + step
    conn.execute(update(counters).where(counters.c.name == name).values(value=value))
    return value


def get_value(conn: Connection, name: str) -> int:
    row = conn.execute(select(counters.c.value).where(counters.c.name == name)).first()
    return 0 if row is None else int(row[0])


def set_value(conn: Connection, name: str, value: int) -> None:
    if conn.execute(select(counters.c.value).where(counters.c.name == name)).first() is None:
        conn.execute(counters.insert().values(name=name, value=value))
    else:
        conn.execute(update(counters).where(counters.c.name == name).values(value=value))
