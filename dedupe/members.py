"""Which cluster each member record is in: its match keys, its cluster, the merges still to do.

What clustering reads and writes (``recluster``, ``components``): a build never re-reads every full
record to re-cluster.  Split from ``store`` (the published clusters and their redirects), whose
``write_clusters``/``retire`` a committed assignment and a finished merge call.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Column, Integer, String, Table, Text, func, select
from sqlalchemy.engine import Connection, Engine

from normaliser.store import record_join
from storage.db import chunks, insert_rows, metadata, param_mark, next_value, record_in, stream, write_lock
from storage.jsoncodec import dumps, loads

from .blockstore import class_join
from .model import Cluster
from .store import CLUSTER_SEQ, published, retire, stored_ids, write_clusters


# Each member record's match keys and current cluster: what clustering reads,
# so a build never has to re-read every full record to re-cluster.
dedupe_members = Table(
    "dedupe_members",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("local_id", String(255), primary_key=True),
    Column("match_keys", Text, nullable=False),
    Column("work_key", String(200), nullable=False, default=""),
    Column("cluster_id", String(32), index=True),
)


# Clusters whose display record must be merged again. Written in the same
# transaction as the new assignment, emptied batch by batch as merges are
# saved: an interrupted dedupe finishes its merges on the next run.
dedupe_pending = Table(
    "dedupe_pending",
    metadata,
    Column("cluster_id", String(32), primary_key=True),
    # A new id's place in the clusters' creation order ("the oldest id wins"), taken when the id is assigned
    # (one serial step), so it does not follow the order merge partitions happen to write in.
    Column("created_seq", Integer, nullable=True),
)


class MemberStore:
    """Match keys and cluster assignment of every live member record."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)

    def load(self) -> dict[tuple[str, str], tuple[list[str], str | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(dedupe_members.c.source, dedupe_members.c.local_id,
                                       dedupe_members.c.match_keys, dedupe_members.c.cluster_id))
            return {(s, l): (loads(k), c) for s, l, k, c in rows}

    def stage_keys(self, keys: dict[tuple[str, str], list[str]],
                   then: Callable[[Connection], None] | None = None) -> None:
        """Store a batch of records' match keys, keeping their clusters (a new record has none yet).

        A full pass stages every record's keys here as it goes rather than holding them to its commit;
        clustering then reads them a batch of components at a time (``recluster``).  ``then`` runs first in
        the same transaction (a staging partition's fence, ``fullpass.fenced``).
        """
        if not keys:
            return
        mark = param_mark(self.engine.dialect)
        with self._lock, self.engine.begin() as conn:
            if then:
                then(conn)
            conn.exec_driver_sql(
                "INSERT INTO dedupe_members (source, local_id, match_keys, work_key)"
                f" VALUES ({mark}, {mark}, {mark}, '') ON CONFLICT (source, local_id) DO UPDATE SET match_keys = excluded.match_keys",
                [(s, l, dumps(k)) for (s, l), k in keys.items()])

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One transaction under the writer lock, for several :meth:`commit_assignment` calls (``conn``)."""
        with self._lock, self.engine.begin() as conn:
            yield conn

    def commit_assignment(self, upserts: dict[tuple[str, str], list[str]], removed: Iterable[tuple[str, str]],
                          assignments: dict[tuple[str, str], str], deleted: Iterable[str],
                          redirects: dict[str, str], pending: Iterable[str], conn: Connection | None = None) -> None:
        """Store a clustering pass in one transaction: member keys and clusters, retired ids, merges to do
        (``conn``: in the caller's, from :meth:`writing`)."""
        if conn is None:
            with self.writing() as conn:
                return self.commit_assignment(upserts, removed, assignments, deleted, redirects, pending, conn)
        for where in record_in(dedupe_members.c.source, dedupe_members.c.local_id, [*removed, *upserts]):
            conn.execute(dedupe_members.delete().where(where))
        insert_rows(conn, dedupe_members, ("source", "local_id", "match_keys", "cluster_id"),
                    [(s, l, dumps(k), assignments.get((s, l))) for (s, l), k in upserts.items()])
        # in key order: the rows (and the pages they share) come one after the other, not at random
        moved = [(cid, s, l) for (s, l), cid in sorted(assignments.items()) if (s, l) not in upserts]
        if moved:   # plain tuples through the driver: a full pass moves every record (SQLAlchemy's dicts cost 2×)
            mark = param_mark(self.engine.dialect)
            conn.exec_driver_sql(f"UPDATE dedupe_members SET cluster_id = {mark} WHERE source = {mark}"
                                 f" AND local_id = {mark}", moved)
        retire(conn, deleted, redirects)
        _add_pending(conn, pending)

    def pending(self, limit: int, within: tuple[str | None, str | None] = (None, None)
                ) -> dict[str, dict[tuple[str, str], list[str]]]:
        """Up to ``limit`` clusters waiting for a merge: their members and each member's match keys;
        ``within`` (from, before): only ids in that range, one partition's share (None: no bound)."""
        q = select(dedupe_pending.c.cluster_id).order_by(dedupe_pending.c.cluster_id).limit(limit)
        if within[0] is not None:
            q = q.where(dedupe_pending.c.cluster_id >= within[0])
        if within[1] is not None:
            q = q.where(dedupe_pending.c.cluster_id < within[1])
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(q).all()]
            out: dict[str, dict[tuple[str, str], list[str]]] = {cid: {} for cid in ids}
            for chunk in chunks(ids):
                rows = conn.execute(select(dedupe_members.c.cluster_id, dedupe_members.c.source,
                                           dedupe_members.c.local_id, dedupe_members.c.match_keys)
                                    .where(dedupe_members.c.cluster_id.in_(chunk))).all()
                for cid, source, local_id, keys in rows:
                    out[cid][(source, local_id)] = loads(keys)
        return {cid: dict(sorted(members.items())) for cid, members in out.items()}

    def merged(self, written: list[Cluster], emptied: list[str]) -> None:
        """Save merged clusters and take them off the pending list — one transaction."""
        with self._lock, self.engine.begin() as conn:
            done = [c.id for c in written] + list(emptied)
            p = dedupe_pending.c
            created = {cid: seq for chunk in chunks(done) for cid, seq in conn.execute(
                select(p.cluster_id, p.created_seq).where(p.cluster_id.in_(chunk), p.created_seq.is_not(None))).all()}
            write_clusters(conn, written, created)
            retire(conn, emptied, {})
            for chunk in chunks(done):
                conn.execute(dedupe_pending.delete().where(dedupe_pending.c.cluster_id.in_(chunk)))

    def cluster_of(self, source: str, local_id: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(dedupe_members.c.cluster_id).where(
                dedupe_members.c.source == source, dedupe_members.c.local_id == local_id)).first()
        return None if row is None else row[0]

    def members_of(self, cluster_ids: Iterable[str]) -> dict[str, set[tuple[str, str]]]:
        """The member records each of ``cluster_ids`` holds now (by the cluster_id index)."""
        ids, m = sorted(set(cluster_ids)), dedupe_members.c
        out: dict[str, set[tuple[str, str]]] = {cid: set() for cid in ids}
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                for cid, source, local_id in conn.execute(select(m.cluster_id, m.source, m.local_id)
                                                          .where(m.cluster_id.in_(chunk))).all():
                    out[cid].add((source, local_id))
        return out

    def keys_of(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        """The stored match keys (blocking keys and signature) of a set of member records."""
        m = dedupe_members.c
        with self.engine.connect() as conn:
            return {(s, l): loads(k) for where in record_in(m.source, m.local_id, keys)
                    for s, l, k in conn.execute(select(m.source, m.local_id, m.match_keys).where(where)).all()}

    def cluster_count(self) -> int:
        """Distinct clusters the member records are assigned to."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count(dedupe_members.c.cluster_id.distinct()))).scalar_one())

    def clusters_of(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """:meth:`cluster_of` for a page of member records, one query per source and chunk of ids."""
        m = dedupe_members.c
        with self.engine.connect() as conn:
            return {(s, l): cid for where in record_in(m.source, m.local_id, keys)
                    for s, l, cid in conn.execute(select(m.source, m.local_id, m.cluster_id).where(where)).all()}


def _add_pending(conn, pending: Iterable[str]) -> None:
    """Put clusters on the pending list (inside the caller's transaction); a new id gets its ``created_seq``.

    Numbered here, in id order, from the counter the written clusters take their ``seq`` from: younger
    than every cluster written so far, and the same whichever order the merge partitions then run in.
    An id already pending keeps its number; one already in ``clusters`` keeps the age it has there.
    """
    todo = sorted(set(pending))
    present = {r[0] for chunk in chunks(todo) for r in conn.execute(
        select(dedupe_pending.c.cluster_id).where(dedupe_pending.c.cluster_id.in_(chunk)))}
    fresh = [c for c in todo if c not in present]
    if not fresh:
        return
    stored = stored_ids(conn, fresh)
    new = [c for c in fresh if c not in stored]
    seq = next_value(conn, CLUSTER_SEQ, len(new)) - len(new) + 1 if new else 0
    ages = {c: seq + n for n, c in enumerate(new)}
    insert_rows(conn, dedupe_pending, ("cluster_id", "created_seq"), [(c, ages.get(c)) for c in fresh])


def member_ids(engine: Engine, by_cluster: bool) -> Iterator[tuple]:
    """Every member record's ``records.id``, streamed: ``(id, cluster)`` in cluster order (records without a
    cluster left out) when ``by_cluster``, else ``(id,)`` in (source, local id) order.  What a full pass
    finds its components from without holding the table (``components``)."""
    m = dedupe_members.c
    joined, r = record_join(dedupe_members, m.source, m.local_id)
    if by_cluster:
        return stream(engine, select(r.id, m.cluster_id).select_from(joined)
                      .where(m.cluster_id.is_not(None)).order_by(m.cluster_id))
    return stream(engine, select(r.id).select_from(joined).order_by(m.source, m.local_id))


def member_rows(engine: Engine, ids: list[int], with_keys: bool) -> Iterator[tuple]:
    """``(source, local id, deleted, cluster[, match keys JSON, feature class])`` of the members with these ids
    (the last two ``with_keys``: the class is None for a record without stored features).

    Each chunk's rows come in one ``all()``: iterated, every row cost a driver ``fetchone`` through
    SQLAlchemy (1M member records: 1.9M calls; one ``all()`` a chunk cut the clustering's CPU by 5–6%).  The
    class comes in the same row: looked up apart, by record, it was a query per member and chunk (~12% of a
    full pass's clustering at 200k)."""
    m = dedupe_members.c
    joined, r = record_join(dedupe_members, m.source, m.local_id)
    cols = [r.source, r.local_id, r.deleted, m.cluster_id]
    if with_keys:
        joined, class_id = class_join(joined, m.source, m.local_id)
        cols += [m.match_keys, class_id]
    with engine.connect() as conn:
        for chunk in chunks(ids):
            yield from conn.execute(select(*cols).select_from(joined).where(r.id.in_(chunk))).all()


def member_record_ids(engine: Engine, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The ``records.id`` of those of ``keys`` that are member records (the few always-merge pairs)."""
    m = dedupe_members.c
    joined, r = record_join(dedupe_members, m.source, m.local_id)
    with engine.connect() as conn:
        return {(s, l): i for where in record_in(m.source, m.local_id, keys)
                for i, s, l in conn.execute(select(r.id, m.source, m.local_id).select_from(joined).where(where))}


def id_lookup(engine: Engine, likely: Iterable[str], conn: Connection | None = None) -> Callable[[str], bool]:
    """Whether a cluster id was ever published (live, retired or redirecting) or given to member records
    (a full pass commits its batches before the merges): new ids must avoid it.

    The ``likely`` candidates (each new group's first choice) are looked up at once, in batches; any
    other id is looked up when asked.  Nothing loads every id ever published.  ``conn``: looked up in the
    caller's transaction, which sees the ids its earlier batches gave before they are committed.
    """
    likely = sorted(set(likely))
    known: dict[str, bool] = dict.fromkeys(likely, False)
    reading = (lambda: nullcontext(conn)) if conn is not None else engine.connect

    def look(conn, ids: list[str]) -> None:
        given = {r[0] for r in conn.execute(   # given in an earlier batch, not merged yet
            select(dedupe_members.c.cluster_id).distinct().where(dedupe_members.c.cluster_id.in_(ids))).all()}
        known.update((i, True) for i in published(conn, ids) | given)

    with reading() as read:
        for chunk in chunks(likely):
            look(read, chunk)

    def taken(cluster_id: str) -> bool:
        if cluster_id not in known:
            known[cluster_id] = False
            with reading() as read:
                look(read, [cluster_id])
        return known[cluster_id]

    return taken
