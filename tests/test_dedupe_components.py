"""A full dedupe pass clusters a batch of whole components at a time: same clusters and ids as clustering
everything at once, nothing read catalogue-wide, and an interrupted pass ends where an uninterrupted one does."""
from __future__ import annotations

from collections import defaultdict

import pytest
import yaml

from dedupe import components, recluster
from dedupe.evidence import EvidenceStore
from dedupe.members import MemberStore
from dedupe_reference import stored_clusters
from test_dedupe_matching import BOOKS, _dump, catalogue
from unioncat import pipeline


def _consortium(folder, books):
    folder.mkdir(parents=True, exist_ok=True)
    _dump(folder, books)
    sources = {"consortium": {"name": "Test"}, "sources": [
        {"id": m, "name": m, "region": "R", "protocol": "file", "path": f"{m}.mrc"} for m in ("lib-a", "lib-b", "lib-c")]}
    (folder / "sources.yaml").write_text(yaml.safe_dump(sources), encoding="utf-8")
    return folder


def _state(cat) -> tuple:
    """Who is with whom, under which id, and where retired ids point."""
    with cat.engine.connect() as conn:
        members = sorted(conn.exec_driver_sql(
            "SELECT source, local_id, cluster_id, match_keys FROM dedupe_members").all())
        redirects = sorted(conn.exec_driver_sql("SELECT old_id, new_id FROM cluster_redirects").all())
        live = sorted(conn.exec_driver_sql("SELECT id, members FROM clusters WHERE deleted = 0").all())
    return members, redirects, live


#: The books after a change: the Dream's romanised copy gains the ISBN (a merge), A2 leaves (its cluster
#: keeps going without it), a copy arrives.
CHANGED = [b for b in BOOKS if b[1] != "A2"] + [("lib-c", "C77", "Dream of the red chamber", "Cao, Xueqin", None,
                                                   "1982")]
CHANGED = [(m, cn, t, a, "9787020002207" if cn == "C2" else i, y) for m, cn, t, a, i, y in CHANGED]


def _two_builds(folder, monkeypatch=None, fail_after: int | None = None) -> tuple:
    """A first build, then a full one over the changed books (interrupted after ``fail_after`` batches, rerun)."""
    cat = catalogue(folder)
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        pipeline.build(cat)
        EvidenceStore(cat.engine).add_override("always", ("lib-b", "B10"), ("lib-b", "B11"))
        _dump(folder, CHANGED)
        pipeline.harvest(cat, pipeline.select_sources(cat), full=True)
        if fail_after is not None:
            commit, calls = MemberStore.commit_assignment, []

            def failing(self, *args):
                calls.append(1)
                if len(calls) > fail_after:
                    raise RuntimeError("interrupted")
                commit(self, *args)

            monkeypatch.setattr(MemberStore, "commit_assignment", failing)
            with pytest.raises(RuntimeError):
                pipeline.build(cat, full=True)
            monkeypatch.setattr(MemberStore, "commit_assignment", commit)
        pipeline.build(cat, full=True)
        return _state(cat)
    finally:
        cat.close()


def test_full_pass_reads_nothing_catalogue_wide_and_matches_clustering_everything(tmp_path, monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("a full pass must not hold every member or every pair")

    folder = _consortium(tmp_path / "c", BOOKS)
    monkeypatch.setattr(components, "BATCH", 3)
    with monkeypatch.context() as m:
        m.setattr(MemberStore, "load", refuse)
        m.setattr(EvidenceStore, "all_pairs", refuse)
        members, _, _ = _two_builds(folder)
    cat = catalogue(folder)
    try:
        stored = cat.members.load()
        groups = stored_clusters({k: keys for k, (keys, _) in stored.items()}, EvidenceStore(cat.engine))
    finally:
        cat.close()
    by_cluster = defaultdict(list)
    for source, local_id, cid, _ in members:
        by_cluster[cid].append((source, local_id))
    assert sorted(map(sorted, by_cluster.values())) == groups
    assert len(members) == len(CHANGED)
    together = {k: cid for s, l, cid, _ in members for k in [(s, l)]}
    assert together[("lib-b", "B10")] == together[("lib-b", "B11")]           # the always-merge override


def test_interrupted_full_pass_ends_where_an_uninterrupted_one_does(tmp_path, monkeypatch):
    monkeypatch.setattr(components, "BATCH", 2)
    monkeypatch.setattr(recluster, "COMMIT_EVERY", 2)     # interrupted at the third batch: two committed
    whole = _two_builds(_consortium(tmp_path / "whole", BOOKS))
    again = _two_builds(_consortium(tmp_path / "again", BOOKS), monkeypatch, fail_after=2)
    assert again == whole


def test_batches_never_cut_a_component_and_loners_come_last(tmp_path, monkeypatch):
    folder = _consortium(tmp_path / "c", BOOKS)
    cat = catalogue(folder)
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        pipeline.build(cat)
        batches = list(components.component_batches(cat.engine, [], size=1))
        with cat.engine.connect() as conn:
            where = dict(conn.exec_driver_sql(
                "SELECT r.id, m.cluster_id FROM records r JOIN dedupe_members m "
                "ON m.source = r.source AND m.local_id = r.local_id").all())
    finally:
        cat.close()
    assert sorted(i for ids, _ in batches for i in ids) == sorted(where)
    alone = [flag for _, flag in batches]
    assert alone == sorted(alone)                    # every batch of loners after every other one
    clusters_in = [{where[i] for i in ids} for ids, _ in batches]
    assert all(not a & b for n, a in enumerate(clusters_in) for b in clusters_in[n + 1:])   # a cluster in one batch
    assert [len(ids) for ids, flag in batches if flag] == [1] * sum(alone)
    assert any(len(ids) == 3 for ids, flag in batches if not flag)   # Chadman's three copies, one batch
