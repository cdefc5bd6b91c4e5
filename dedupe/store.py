"""The cluster store: clusters, which cluster each member record is in, redirects.

Cluster ids are permalinks: a cluster merged into another leaves a redirect
behind (``cluster_redirects``), so ``resolve`` turns any id ever published
into the id of the live cluster that now holds its records.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table, Text, func, select, update
from sqlalchemy.engine import Engine

from harvester.db import metadata, next_value, utcnow, write_lock
from normaliser.model import Record

from .model import Cluster

clusters = Table(
    "clusters",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("data", Text, nullable=False),
    Column("members", Text, nullable=False),
    Column("match_keys", Text, nullable=False),
    Column("member_count", Integer, nullable=False),
    Column("source_count", Integer, nullable=False),
    Column("created_seq", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_clusters_seq", clusters.c.seq)

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
        redirects = redirects or {}
        # A retired id is no longer a live cluster: it leaves the index and only redirects.
        changed, deleted = list(changed), list(dict.fromkeys([*deleted, *redirects]))
        n = len(changed) + len(deleted)
        if not n and not redirects:
            return
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            seq = next_value(conn, CLUSTER_SEQ, max(n, 1)) - max(n, 1) + 1
            ids = [c.id for c in changed]
            present = set()
            for i in range(0, len(ids), 500):
                present.update(r[0] for r in conn.execute(select(clusters.c.id).where(clusters.c.id.in_(ids[i:i + 500]))))
            inserts = []
            for c in changed:
                values = dict(
                    data=json.dumps(c.record.to_dict(), ensure_ascii=False),
                    members=json.dumps([list(m) for m in c.members], ensure_ascii=False),
                    match_keys=json.dumps(c.match_keys, ensure_ascii=False),
                    member_count=len(c.members), source_count=len(c.sources), seq=seq, deleted=False,
                    updated_at=now,
                )
                if c.id in present:
                    conn.execute(update(clusters).where(clusters.c.id == c.id).values(**values))
                else:
                    inserts.append(dict(id=c.id, created_seq=seq, **values))
                seq += 1
            if inserts:
                conn.execute(clusters.insert(), inserts)
            for cid in deleted:
                conn.execute(update(clusters).where(clusters.c.id == cid).values(deleted=True, seq=seq, updated_at=now))
                seq += 1
            for old, new in redirects.items():
                conn.execute(cluster_redirects.delete().where(cluster_redirects.c.old_id == old))
                conn.execute(cluster_redirects.insert().values(old_id=old, new_id=new, created_at=now))
            for c in changed:
                conn.execute(cluster_redirects.delete().where(cluster_redirects.c.old_id == c.id))

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

    def changed_since(self, seq: int, batch: int = 1000) -> Iterator[tuple[int, str, Cluster | None]]:
        last = seq
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(select(clusters).where(clusters.c.seq > last)
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

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(clusters)
                                    .where(clusters.c.deleted.is_(False))).scalar_one())

    def count_shared(self) -> int:
        """Clusters held by two or more member libraries."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(clusters).where(
                clusters.c.deleted.is_(False), clusters.c.source_count > 1)).scalar_one())


def _cluster(row) -> Cluster:
    return Cluster(
        id=row["id"],
        record=Record.from_dict(json.loads(row["data"])),
        members=[tuple(m) for m in json.loads(row["members"])],
        match_keys=json.loads(row["match_keys"]),
    )


# Each member record's match keys and current cluster: what clustering reads,
# so a build never has to re-read every full record to re-cluster.
dedupe_members = Table(
    "dedupe_members",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("local_id", String(255), primary_key=True),
    Column("match_keys", Text, nullable=False),
    Column("cluster_id", String(32), index=True),
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
            return {(s, l): (json.loads(k), c) for s, l, k, c in rows}

    def apply(self, upserts: dict[tuple[str, str], list[str]], removed: Iterable[tuple[str, str]],
              assignments: dict[tuple[str, str], str]) -> None:
        """Write keys of changed records, drop removed ones, store cluster ids — one transaction."""
        with self._lock, self.engine.begin() as conn:
            for source, local_id in removed:
                conn.execute(dedupe_members.delete().where(dedupe_members.c.source == source,
                                                           dedupe_members.c.local_id == local_id))
            for (source, local_id), keys in upserts.items():
                conn.execute(dedupe_members.delete().where(dedupe_members.c.source == source,
                                                           dedupe_members.c.local_id == local_id))
            if upserts:
                conn.execute(dedupe_members.insert(), [
                    dict(source=s, local_id=l, match_keys=json.dumps(k, ensure_ascii=False),
                         cluster_id=assignments.get((s, l)))
                    for (s, l), k in upserts.items()
                ])
            for (source, local_id), cid in assignments.items():
                if (source, local_id) in upserts:
                    continue
                conn.execute(update(dedupe_members).where(dedupe_members.c.source == source,
                                                          dedupe_members.c.local_id == local_id)
                             .values(cluster_id=cid))

    def cluster_of(self, source: str, local_id: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(dedupe_members.c.cluster_id).where(
                dedupe_members.c.source == source, dedupe_members.c.local_id == local_id)).first()
        return None if row is None else row[0]


def created_order(engine: Engine, ids: Iterable[str]) -> dict[str, int]:
    """Age rank of cluster ids (their creation sequence), for 'the oldest id wins'."""
    ids = list(ids)
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            for cid, seq in conn.execute(select(clusters.c.id, clusters.c.created_seq)
                                         .where(clusters.c.id.in_(ids[i:i + 500]))):
                out[cid] = seq
    return out


def id_ever_used(engine: Engine, cluster_id: str) -> bool:
    with engine.connect() as conn:
        if conn.execute(select(clusters.c.id).where(clusters.c.id == cluster_id)).first():
            return True
        return conn.execute(select(cluster_redirects.c.old_id)
                            .where(cluster_redirects.c.old_id == cluster_id)).first() is not None
