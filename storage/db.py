"""The database floor: one SQLAlchemy ``MetaData``, the engine factory, named counters, the writer lock, upserts.

Each module that owns tables declares them against :data:`metadata` (raw
records in ``harvester.store``, normalised records in ``normaliser.store``,
clusters in ``dedupe.store``, …) so the schema lives next to the only code
that reads and writes it; the Alembic migrations under ``unioncat/`` build
the database from it.  SQLite is the embedded default and runs in WAL mode so
readers (the web app) never block the single writer (the pipeline); any other
SQLAlchemy URL (PostgreSQL) works unchanged.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, and_, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.types import TypeDecorator

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


class UTCDateTime(TypeDecorator):
    """A timestamp column that always hands back an aware UTC ``datetime``.

    SQLite keeps no zone and returns naive values, PostgreSQL's ``timestamptz``
    returns aware ones in the session's zone: without this every reader had to
    patch ``tzinfo`` itself.  Values are stored as UTC (naive on SQLite, a
    naive value given is taken to be UTC) and read back aware in UTC.  The
    column type the migrations see is ``DateTime(timezone=True)``, unchanged.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


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
        engine = create_engine(driver_url(url), pool_pre_ping=True)
    return engine


def driver_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (SQLAlchemy's bare default would be psycopg2, not installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def param_mark(dialect) -> str:
    """The driver's parameter marker (SQLite ``?``, psycopg ``%s``), for statements written out by hand."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if mark is None:
        raise NotImplementedError(f"unsupported parameter style {dialect.paramstyle!r}")
    return mark


def bound(conn: Connection, column: Column, value: object) -> object:
    """``value`` as SQLAlchemy hands it to the driver for ``column``: its type's bind processing, for this dialect.

    For a value the rows of an :func:`insert_rows` share (a batch's timestamp), processed once, so the stored
    text is what SQLAlchemy's own insert writes (SQLite: ``2026-12-03 18:27:20.000000``).  The column type's own
    ``bind_processor`` is not enough: it skips the dialect's (the aware datetime would reach sqlite3's adapter)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)


def insert_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple],
                skip_existing: bool = False, replace_on: tuple[str, ...] = ()) -> None:
    """Insert plain tuples (values in ``columns`` order) with one driver ``executemany``, in the caller's transaction.

    For the bulk writes of a dedupe pass (keys, features, pairs: hundreds of thousands of rows): SQLAlchemy's
    per-row parameter processing cost more CPU than SQLite's own insert.  The values must need no type
    processing on the way in (strings, numbers, bytes, or values put through :func:`bound`).  Columns left
    out that have a plain Python-side default (``Column(default="")``) get it, as SQLAlchemy's own insert
    would give it; a callable default is refused.
    ``skip_existing``: a row whose key is already stored is left out (``ON CONFLICT DO NOTHING``, both
    databases), for writes a re-run job may repeat.  ``replace_on``: the table's primary key; a row whose key is
    stored already has its other columns replaced (``ON CONFLICT (key) DO UPDATE``, both databases).  Not for a
    table with a serial id beside its key: PostgreSQL takes a number from the sequence for every conflict too.
    """
    if not rows:
        return
    left_out = [c for c in table.columns if c.name not in columns and c.default is not None]
    if any(not c.default.is_scalar for c in left_out):
        raise NotImplementedError(f"insert_rows: {table.name} has a computed default insert_rows cannot apply")
    if left_out:
        columns = (*columns, *(c.name for c in left_out))
        defaults = tuple(c.default.arg for c in left_out)
        rows = [(*row, *defaults) for row in rows]
    mark = param_mark(conn.dialect)
    quote = conn.dialect.identifier_preparer.quote
    conflict = " ON CONFLICT DO NOTHING" if skip_existing else ""
    if replace_on:
        conflict = (f" ON CONFLICT ({', '.join(quote(c) for c in replace_on)}) DO UPDATE SET "
                    + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in replace_on))
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
                         f"VALUES ({', '.join([mark] * len(columns))}){conflict}", rows)


def upsert(conn: Connection, table: Table, values: dict, keys: tuple[str, ...], update_values: dict | None = None,
           returning=None):
    """INSERT … ON CONFLICT (keys) DO UPDATE in the connection's dialect; returns the result.

    One statement instead of select-then-insert, so two workers writing the
    same key at once cannot both insert (PostgreSQL) and nothing is read twice.
    ``update_values`` defaults to every non-key value.
    """
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(conn.dialect.name)
    if dialect is None:
        raise NotImplementedError(f"upsert: unsupported database {conn.dialect.name!r} (use SQLite or PostgreSQL)")
    stmt = dialect.insert(table).values(**values)
    if update_values is None:
        update_values = {k: v for k, v in values.items() if k not in keys}
    stmt = (stmt.on_conflict_do_update(index_elements=list(keys), set_=update_values)
            if update_values else stmt.on_conflict_do_nothing(index_elements=list(keys)))
    return conn.execute(stmt if returning is None else stmt.returning(returning))


def stream(engine: Engine, query, size: int = 10_000) -> Iterator[tuple]:
    """The rows of ``query`` fetched ``size`` at a time (a server-side cursor on PostgreSQL): a read over a
    whole table that never holds it."""
    with engine.connect() as conn:
        for part in conn.execution_options(stream_results=True, yield_per=size).execute(query).partitions():
            yield from part


#: Values of one IN (...) list: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 400


def chunks(items: Sequence, n: int = CHUNK) -> Iterator[Sequence]:
    """``items`` ``n`` at a time: the values of one IN (...) list each."""
    for i in range(0, len(items), n):
        yield items[i:i + n]


def record_in(source_col, id_col, records: Iterable[tuple[str, str]]) -> Iterator:
    """``(source, local_id) IN records`` as one ``source = ? AND local_id IN (...)`` clause per source and chunk.

    A row-value IN list makes SQLite scan the whole table; this form uses the (source, local_id) index.
    """
    for source, chunk in source_chunks(records):
        yield and_(source_col == source, id_col.in_(chunk))


def source_chunks(records: Iterable[tuple[str, str]]) -> Iterator[tuple[str, Sequence[str]]]:
    """``(source, local ids)`` of ``records``, each source's ids sorted and :data:`CHUNK` at a time: the IN lists
    of :func:`record_in` and :func:`rows_in`."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, local_id in sorted(set(records)):
        by_source[source].append(local_id)
    for source, ids in by_source.items():
        for chunk in chunks(ids):
            yield source, chunk


def rows_in(conn: Connection, table: Table, columns: Sequence[str], records: Iterable[tuple[str, str]],
            live: bool = False) -> Iterator[tuple]:
    """The rows (``columns``) of ``table`` whose ``(source, local_id)`` is one of ``records`` (``live``: and not
    ``deleted``): :func:`record_in`'s queries, written out for the driver.

    For the readers of a batch of records at a time (the normalise stage's writes, a dedupe pass's merges):
    SQLAlchemy compiles an expanding IN list again at every execution, ~6 against ~1.7 µs a record for the
    query itself (BENCHMARKS.md, "The normalise stage's parent")."""
    mark = param_mark(conn.dialect)
    quote = conn.dialect.identifier_preparer.quote
    head = (f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table.name)} "
            f"WHERE {'NOT deleted AND ' if live else ''}source = {mark} AND local_id IN ")
    for source, chunk in source_chunks(records):
        yield from conn.exec_driver_sql(f"{head}({', '.join([mark] * len(chunk))})", (source, *chunk)).all()


def write_lock(engine: Engine) -> threading.Lock:
    """The one writer lock of an embedded database (per URL, per process).

    SQLite allows one writer at a time; harvest threads serialise their
    batches through this lock rather than fight over SQLITE_BUSY.  Across
    processes (rq workers on PostgreSQL) the counters' row locks do the same
    job: every writing transaction advances a counter (:func:`next_value`)
    and holds that row until it commits; the Redis locks in
    ``unioncat.jobs`` keep two harvests of one source or two builds apart.
    """
    key = str(engine.url)
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.Lock())


def next_value(conn: Connection, name: str, step: int = 1) -> int:
    """Advance a named counter by ``step`` and return its new value.

    Counters give every change a monotonically increasing sequence number so
    each downstream stage can process "what changed since my checkpoint".
    Call inside the caller's transaction.  One atomic upsert-and-return: on
    PostgreSQL it takes the counter's row lock until the transaction ends, so
    writers in other processes get their numbers in commit order and a
    reader never sees a higher number committed before a lower one.
    """
    result = upsert(conn, counters, {"name": name, "value": step}, ("name",),
                    {"value": counters.c.value + step}, returning=counters.c.value)
    return int(result.scalar_one())


def get_value(conn: Connection, name: str, shared_lock: bool = False) -> int:
    """A named counter's value (0 if never set).  ``shared_lock``: its row stays share-locked until the
    caller's transaction ends (``FOR SHARE`` on PostgreSQL), so many transactions may read it at once while
    one that sets it waits for them — and they for it; SQLite's one writer needs no lock."""
    query = select(counters.c.value).where(counters.c.name == name)
    row = conn.execute(query.with_for_update(read=True) if shared_lock else query).first()
    return 0 if row is None else int(row[0])


def set_value(conn: Connection, name: str, value: int) -> None:
    upsert(conn, counters, {"name": name, "value": value}, ("name",))
