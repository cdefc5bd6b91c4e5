"""The cluster store: clusters, which cluster each member record is in, redirects.

Cluster ids are permalinks: a cluster merged into another leaves a redirect
behind (``cluster_redirects``), so ``resolve`` turns any id ever published
into the id of the live cluster that now holds its records.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime

from sqlalchemy import (Boolean, Column, DateTime, Index, Integer, String, Table, Text, bindparam, false, func, or_,
                        select, update)
from sqlalchemy.engine import Engine

from normaliser.store import decode
from storage.db import bound, chunks, insert_rows, metadata, next_value, utcnow, write_lock
from storage.jsoncodec import dumps, loads

from .model import Cluster

clusters = Table(
    "clusters",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("data", Text, nullable=False),
    Column("members", Text, nullable=False),
    Column("match_keys", Text, nullable=False),
    Column("work_key", String(200), nullable=False, default=""),
    Column("member_count", Integer, nullable=False),
    Column("source_count", Integer, nullable=False),
    Column("created_seq", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_clusters_seq", clusters.c.seq)
Index("ix_clusters_work_key", clusters.c.work_key)

cluster_redirects = Table(
    "cluster_redirects",
    metadata,
    Column("old_id", String(32), primary_key=True),
    Column("new_id", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

CLUSTER_SEQ = "cluster_seq"


class ClusterStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)

    def save(self, changed: Iterable[Cluster], deleted: Iterable[str] = (),
             redirects: dict[str, str] | None = None) -> None:
        """Write new/changed clusters, retire deleted ids, record redirects — one transaction."""
        with self._lock, self.engine.begin() as conn:
            retire(conn, deleted, redirects or {})
            write_clusters(conn, list(changed))

    def get(self, cluster_id: str) -> Cluster | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(clusters).where(clusters.c.id == cluster_id,
                                                      clusters.c.deleted.is_(False))).mappings().first()
        return None if row is None else _cluster(row)

    def resolve(self, cluster_id: str) -> str | None:
        """The live cluster id for any id ever published (following redirects), or None."""
        seen = set()
        current = cluster_id
        with self.engine.connect() as conn:
            while current not in seen:
                seen.add(current)
                live = conn.execute(select(clusters.c.id).where(clusters.c.id == current,
                                                                clusters.c.deleted.is_(False))).first()
                if live:
                    return current
                nxt = conn.execute(select(cluster_redirects.c.new_id)
                                   .where(cluster_redirects.c.old_id == current)).first()
                if nxt is None:
                    return None
                current = nxt[0]
        return None

    def changed_since(self, seq: int, batch: int = 1000,
                      upto: int | None = None) -> Iterator[tuple[int, str, Cluster | None]]:
        """Clusters written after ``seq``, in seq order, a page at a time.

        ``upto`` (the ``cluster_seq`` counter read before the walk) ends the walk there: a cluster rewritten
        while it runs takes a later seq, so it comes at most once a walk (and again in the next one).
        """
        last = seq
        bound = [] if upto is None else [clusters.c.seq <= upto]
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(select(clusters).where(clusters.c.seq > last, *bound)
                                    .order_by(clusters.c.seq).limit(batch)).mappings().all()
            if not rows:
                return
            for row in rows:
                yield row["seq"], row["id"], None if row["deleted"] else _cluster(row)
            last = rows[-1]["seq"]

    def iter_live(self, batch: int = 2000) -> Iterator[Cluster]:
        last = ""
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(select(clusters).where(clusters.c.deleted.is_(False), clusters.c.id > last)
                                    .order_by(clusters.c.id).limit(batch)).mappings().all()
            if not rows:
                return
            for row in rows:
                yield _cluster(row)
            last = rows[-1]["id"]

    def other_editions(self, cluster: Cluster, limit: int = 20) -> list[Cluster]:
        """Live clusters sharing ``cluster``'s work key (other editions of the same work), newest first."""
        if not cluster.work_key:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(clusters).where(
                clusters.c.work_key == cluster.work_key, clusters.c.id != cluster.id,
                clusters.c.deleted.is_(False)).limit(limit)).mappings().all()
        found = [_cluster(r) for r in rows]
        found.sort(key=lambda c: -(c.record.year or 0))
        return found

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(clusters)
                                    .where(clusters.c.deleted.is_(False))).scalar_one())

    def count_shared(self) -> int:
        """Clusters held by two or more member libraries."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(clusters).where(
                clusters.c.deleted.is_(False), clusters.c.source_count > 1)).scalar_one())

    def changes_page(self, after: int, limit: int, *, sources: Collection[str] | None = None,
                     start: datetime | None = None, end: datetime | None = None,
                     record_formats: Collection[str] | None = None, full: bool = True,
                     total: bool = False) -> tuple[list[tuple], int | None]:
        """Up to ``limit`` clusters, live or retired, changed after sequence ``after``, in sequence order.

        For downstream readers paging the change feed (OAI-PMH, exports,
        Zebra).  Each row is ``(seq, id, updated_at, deleted, members,
        cluster)``: a retired cluster keeps its last members (so a library's
        set still lists its deletion) and has ``cluster`` None, as has every
        row when ``full`` is False (headers need no record).  ``sources``
        keeps clusters with a member of one of them; ``start``/``end`` (naive
        UTC) keep ``updated_at`` in [start, end); ``record_formats`` keeps
        clusters whose display record has one of them (retired ones always
        pass).  ``total`` also counts every match after ``after``.
        """
        cond = [clusters.c.seq > after]
        if sources is not None:
            quoted = [s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for s in sources]
            # '["cn",' matches a member pair written compact (orjson) and with the spaces of older rows (json)
            likes = [clusters.c.members.like(f'%["{s}",%', escape="\\") for s in quoted]
            cond.append(or_(*likes) if likes else false())
        if start is not None:
            cond.append(clusters.c.updated_at >= start)
        if end is not None:
            cond.append(clusters.c.updated_at < end)
        if record_formats is not None:
            cond.append(or_(clusters.c.deleted.is_(True),
                            *[clusters.c.data.like(f'%"record_format":{gap}"{f}"%')     # compact and older rows
                              for f in record_formats for gap in ("", " ")]))
        cols = [clusters.c.seq, clusters.c.id, clusters.c.updated_at, clusters.c.deleted, clusters.c.members]
        if full:
            cols += [clusters.c.data, clusters.c.match_keys, clusters.c.work_key]
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).where(*cond).order_by(clusters.c.seq).limit(limit)).mappings().all() \
                if limit else []
            count = int(conn.execute(select(func.count()).select_from(clusters).where(*cond)).scalar_one()) \
                if total else None
        return [self._change(r, full) for r in rows], count

    def change_of(self, cluster_id: str) -> tuple | None:
        """One cluster as :meth:`changes_page` gives it (retired ones too), or None for an id never used."""
        with self.engine.connect() as conn:
            row = conn.execute(select(clusters).where(clusters.c.id == cluster_id)).mappings().first()
        return None if row is None else self._change(row, True)

    @staticmethod
    def _change(row, full: bool) -> tuple:
        members = [tuple(m) for m in loads(row["members"])]
        cluster = _cluster(row) if full and not row["deleted"] else None
        return row["seq"], row["id"], row["updated_at"], bool(row["deleted"]), members, cluster


def _cluster(row) -> Cluster:
    """A stored cluster, decoded through the record store's codec (orjson, the record's fields straight into
    its attributes): the index stage reads every changed cluster, and ``json`` + ``Record.from_dict`` cost
    ~12% of it."""
    return Cluster(
        id=row["id"],
        record=decode(row["data"]),
        members=[tuple(m) for m in loads(row["members"])],
        match_keys=loads(row["match_keys"]),
        work_key=row["work_key"] or "",
    )


def stored_ids(conn, ids: list[str]) -> set[str]:
    """Those of ``ids`` that have a row in ``clusters`` (live or retired)."""
    c = clusters.c
    return {r[0] for chunk in chunks(ids) for r in conn.execute(select(c.id).where(c.id.in_(chunk))).all()}


#: The columns a merge writes, in the order :func:`write_clusters` gives their values.
_WRITTEN = ("data", "members", "match_keys", "work_key", "member_count", "source_count", "seq")


def write_clusters(conn, changed: list[Cluster], created: Mapping[str, int] | None = None) -> None:
    """Insert or update clusters inside the caller's transaction.

    A new cluster's ``created_seq`` is ``created[id]`` when given (fixed when its id was assigned, see
    ``members.MemberStore.commit_assignment``), else its ``seq`` now.
    """
    if not changed:
        return
    now = utcnow()
    seq = next_value(conn, CLUSTER_SEQ, len(changed)) - len(changed) + 1
    ids = [c.id for c in changed]
    present = stored_ids(conn, ids)
    created = created or {}
    inserts, updates = [], []
    stamp, live = bound(conn, clusters.c.updated_at, now), bound(conn, clusters.c.deleted, False)
    for c in changed:
        values = (dumps(c.record, c.record.to_dict),     # orjson straight from the dataclass, as the record store
                  dumps(c.members), dumps(c.match_keys), c.work_key, len(c.members), len(c.sources), seq)
        if c.id in present:
            updates.append(dict(zip(_WRITTEN, values), deleted=False, updated_at=now, cid=c.id))
        else:
            inserts.append((c.id, *values, created.get(c.id, seq), live, stamp))
        seq += 1
    # new clusters (every one in a full pass) as plain tuples: SQLAlchemy's per-row parameter processing
    # was ~a third of writing them
    insert_rows(conn, clusters, ("id", *_WRITTEN, "created_seq", "deleted", "updated_at"), inserts)
    if updates:
        conn.execute(update(clusters).where(clusters.c.id == bindparam("cid")), updates)
    # an id that is live again no longer redirects
    for chunk in chunks(ids):
        conn.execute(cluster_redirects.delete().where(cluster_redirects.c.old_id.in_(chunk)))


def retire(conn, deleted: Iterable[str], redirects: dict[str, str]) -> None:
    """Retire cluster ids inside the caller's transaction; a redirected id is retired too.

    A retired id leaves the index (its row is marked deleted with a new
    sequence number) and, when its records went to another cluster, keeps
    answering through ``cluster_redirects``.
    """
    gone = list(dict.fromkeys([*deleted, *redirects]))
    if not gone:
        return
    now = utcnow()
    seq = next_value(conn, CLUSTER_SEQ, len(gone)) - len(gone) + 1
    conn.execute(update(clusters).where(clusters.c.id == bindparam("cid")),
                 [dict(cid=cid, deleted=True, seq=seq + n, updated_at=now) for n, cid in enumerate(gone)])
    for old, new in redirects.items():
        conn.execute(cluster_redirects.delete().where(cluster_redirects.c.old_id == old))
        conn.execute(cluster_redirects.insert().values(old_id=old, new_id=new, created_at=now))


def published(conn, ids: list[str]) -> set[str]:
    """Those of ``ids`` ever published: live or retired clusters, or ids that redirect."""
    c, old = clusters.c, cluster_redirects.c.old_id
    return ({r[0] for r in conn.execute(select(c.id).where(c.id.in_(ids))).all()}
            | {r[0] for r in conn.execute(select(old).where(old.in_(ids))).all()})


def created_order(engine: Engine, ids: Iterable[str]) -> dict[str, int]:
    """Age rank of cluster ids (their creation sequence), for 'the oldest id wins'."""
    ids = list(ids)
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for chunk in chunks(ids):
            for cid, seq in conn.execute(select(clusters.c.id, clusters.c.created_seq)
                                         .where(clusters.c.id.in_(chunk))).all():
                out[cid] = seq
    return out
