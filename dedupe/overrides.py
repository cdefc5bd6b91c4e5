"""Staff corrections of the clustering, phrased as a cataloguer thinks of them.

A cataloguer does not say "never-merge A with B"; she says "this library's record is a different
book: take it out of this entry" or "this entry and that one are the same book: join them".  Both
become pair overrides in :class:`dedupe.evidence.EvidenceStore`, which every later build (also
``unioncat build --full``) obeys.  The CLI (``unioncat dedupe split|join``) and the staff record
page (``web.staff_dedupe``) call these functions, so the two paths have the same effect.
"""
from __future__ import annotations

from sqlalchemy.engine import Engine

from .evidence import EvidenceStore, Override
from .members import MemberStore
from .store import ClusterStore

RecordKey = tuple[str, str]


class OverrideError(ValueError):
    """A correction that cannot be made; the message says why, for a page or a terminal."""


def parse_ref(value: str) -> RecordKey:
    """``SOURCE:LOCAL_ID`` → ``(source, local_id)``; an error names the expected form."""
    source, sep, local_id = value.strip().partition(":")
    if not sep or not source or not local_id:
        raise OverrideError(f"{value!r}: expected SOURCE:LOCAL_ID, e.g. lib-a:000123")
    return source, local_id


def _members(engine: Engine, cluster_id: str) -> tuple[str, list[RecordKey]]:
    clusters = ClusterStore(engine)
    live = clusters.resolve(cluster_id)
    cluster = clusters.get(live) if live else None
    if cluster is None:
        raise OverrideError(f"there is no catalogue entry {cluster_id}")
    return cluster.id, [tuple(m) for m in cluster.members]


def split_out(engine: Engine, cluster_id: str, record: RecordKey, note: str = "") -> list[Override]:
    """Keep ``record`` apart from every other member record of the entry: one never-merge per pair.

    The others stay together (their own evidence still joins them); the record goes to an entry of
    its own, or to another entry it matches, at the next build.
    """
    live, members = _members(engine, cluster_id)
    if record not in members:
        raise OverrideError(f"{record[0]}:{record[1]} is not a member record of entry {live}")
    others = [m for m in members if m != record]
    if not others:
        raise OverrideError(f"entry {live} holds only {record[0]}:{record[1]}: there is nothing to split it from")
    store = EvidenceStore(engine)
    return [store.add_override("never", record, other, note) for other in others]


def join(engine: Engine, cluster_id: str, other: str, note: str = "") -> Override:
    """Join the entry with another one, given as its entry id or as ``SOURCE:LOCAL_ID`` of a member record.

    One always-merge between the first member records of the two entries is enough: the union-find
    joins the entries as long as no veto or never-merge keeps two of their records apart.
    """
    live, members = _members(engine, cluster_id)
    if ":" in other:
        target = parse_ref(other)
        if MemberStore(engine).cluster_of(*target) is None:
            raise OverrideError(f"no harvested record {other} is in the catalogue")
    else:
        other_live, other_members = _members(engine, other)
        if other_live == live:
            raise OverrideError(f"{other} is this entry ({live})")
        target = other_members[0]
    if target in members:
        raise OverrideError(f"{target[0]}:{target[1]} is already in entry {live}")
    return EvidenceStore(engine).add_override("always", members[0], target, note)


def undo(engine: Engine, override_id: int) -> Override:
    """Remove one override by its number; the next build re-clusters as if it had never been made."""
    store = EvidenceStore(engine)
    found = next((o for o in store.overrides() if o.id == override_id), None)
    if found is None:
        raise OverrideError(f"there is no override #{override_id}")
    store.remove_override(found.a, found.b)
    return found


def overrides_of(engine: Engine, records: list[RecordKey]) -> list[Override]:
    """The overrides touching any of ``records`` (an entry's page lists these, with an undo each)."""
    wanted = set(records)
    return [o for o in EvidenceStore(engine).overrides() if o.a in wanted or o.b in wanted]
