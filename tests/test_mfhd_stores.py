"""The holdings-link and authority stores on SQLite and PostgreSQL: either order of arrival, deletions, orphans,
entities by identifier."""
from __future__ import annotations

from dedupe.build import dedupe_changes
from dedupe.members import MemberStore
from dedupe.store import ClusterStore
from normaliser.authorities import AuthorityStore
from normaliser.links import LinkStore
from normaliser.model import Holding, Record
from normaliser.store import RecordStore, stored

DATABASES = ("sqlite", "postgresql")


def bib(source: str, local_id: str, control: str) -> Record:
    return Record(source, local_id, title="A journal", control_number=control)


def mfhd(source: str, local_id: str, of: str) -> Record:
    return Record(source, local_id, kind="holdings", holdings_of=of, holdings=[Holding(source, of, holdings_id=local_id)])


def test_links_in_either_order_deletions_and_orphans(db):
    links = LinkStore(db)
    # the holdings record first: nothing to re-merge yet, and it is an orphan
    assert links.update([(("a", "h1"), mfhd("a", "h1", "100"))]) == set()
    assert links.orphans() == [("a", "h1", "100")]
    # its bib arrives under another local id (an OAI identifier); same 001 in another member does not count
    assert links.update([(("b", "x"), bib("b", "x", "100"))]) == set()
    links.update([(("a", "oai:1"), bib("a", "oai:1", "100"))])
    assert links.orphans() == []
    # the merge reads the Holding rows of the live holdings records it finds
    RecordStore(db).put([(stored(mfhd("a", "h1", "100")), "a", "h1", 1)])
    assert links.attached([bib("a", "oai:1", "100"), bib("b", "x", "100")]) == {
        ("a", "oai:1"): [[Holding("a", "100", holdings_id="h1")]]}
    # a second holdings record, then it moves to another bib: both bibs are reported for a new merge
    links.update([(("a", "oai:2"), bib("a", "oai:2", "200"))])
    assert links.update([(("a", "h2"), mfhd("a", "h2", "100"))]) == {("a", "oai:1")}
    assert links.update([(("a", "h2"), mfhd("a", "h2", "200"))]) == {("a", "oai:1"), ("a", "oai:2")}
    # deleting a holdings record re-merges its bib; deleting a bib leaves its holdings as orphans
    assert links.update([(("a", "h1"), None)]) == {("a", "oai:1")}
    links.update([(("a", "oai:2"), None)])
    assert links.orphans("a") == [("a", "h2", "200")] and links.orphans("b") == []


def test_authorities_by_identifier_and_form(db):
    store = AuthorityStore(db)
    lc = Record("lc", "n1", kind="authority", heading="Ouyang, Hui", heading_type="person", lccns=["n80094057"],
                see_from=["Ou-yang, Hui", "歐陽輝"])
    local = Record("lib", "7", kind="authority", heading="Ouyang, Hui", heading_type="person",
                   lccns=["n80094057"], see_from=["欧阳辉"], dates="1947-")
    assert store.update([(lc.key, lc), (local.key, local)]) == 2
    (entity,) = store.entities("歐陽輝")
    assert entity["entity"] == "lccn:n80094057" and entity["dates"] == "1947-"
    assert set(entity["variants"]) == {"Ou-yang, Hui", "歐陽輝", "欧阳辉"} and len(entity["records"]) == 2
    assert set(store.variants(["Ouyang, Hui."])["ouyang hui"]) == {"Ouyang, Hui", "Ou-yang, Hui", "歐陽輝", "欧阳辉"}
    assert store.variants(["Ou-yang, Hui"]) == {}   # a see-from is not a heading: no expansion from it
    assert store.update([(lc.key, None)]) == 1
    (entity,) = store.entities("Ouyang, Hui")
    assert entity["variants"] == ["欧阳辉"]


def test_holdings_records_keep_kind_004_and_rows_in_their_own_columns(db):
    """The dedupe stage reads a holdings record's kind and 004, and the merge its Holding rows, without
    decoding its JSON: the cost of attaching one MFHD per bib was mostly decoding each one twice."""
    store = RecordStore(db)
    held = mfhd("a", "h1", "100")
    held.holdings[0].summary = "v.1 (1990)-"
    store.put([(bib("a", "b1", "100"), "a", "b1", 1), (stored(held), "a", "h1", 2),
               (stored(mfhd("a", "h2", "100")), "a", "h2", 3)])
    store.put([(None, "a", "h2", 4)])
    brief = {(s, l): r for _, s, l, r in store.changed_since(0, holdings_brief=True)}
    assert brief[("a", "h2")] is None
    assert brief[("a", "h1")] == Record("a", "h1", kind="holdings", holdings_of="100")   # no rows decoded
    assert brief[("a", "b1")].title == "A journal"
    full = {(s, l): r for _, s, l, r in store.changed_since(0)}
    assert full[("a", "h1")] == held
    # rows only, of live holdings records only (h2 was deleted)
    links = LinkStore(db)
    links.update([(("a", "b1"), bib("a", "b1", "100")), (("a", "h1"), held), (("a", "h2"), mfhd("a", "h2", "100"))])
    assert links.attached([bib("a", "b1", "100")]) == {("a", "b1"): [held.holdings]}


def test_a_member_without_holdings_records_is_not_asked_again_until_it_sends_one(db):
    links, store = LinkStore(db), RecordStore(db)
    links.update([(("a", "b1"), bib("a", "b1", "100"))])
    assert links.attached([bib("a", "b1", "100")]) == {}
    assert links._holders == {"a": False}     # asked once; the next merge batch skips the member
    held = mfhd("a", "h1", "100")
    store.put([(stored(held), "a", "h1", 1)])
    links.update([(("a", "h1"), held)])       # the same store links it: the member is asked again
    assert links.attached([bib("a", "b1", "100")]) == {("a", "b1"): [held.holdings]}
    assert LinkStore(db).attached([bib("a", "b1", "100")]) == {("a", "b1"): [held.holdings]}


def test_dedupe_attaches_holdings_without_decoding_a_holdings_record(db, monkeypatch):
    store = RecordStore(db)
    held = mfhd("a", "h1", "100")
    store.put([(bib("a", "b1", "100"), "a", "b1", 1), (held, "a", "h1", 2)])
    decode = Record.from_dict.__func__

    def no_holdings(cls, data):
        assert data.get("kind") != "holdings", "the dedupe stage decoded a holdings record"
        return decode(cls, data)

    monkeypatch.setattr(Record, "from_dict", classmethod(no_holdings))
    clusters = ClusterStore(db)
    report = dedupe_changes(store, clusters, MemberStore(db), 0)
    assert report.holdings_changed == 1 and report.records_changed == 1
    (cluster,) = list(clusters.iter_live())
    assert [h.holdings_id for h in cluster.record.holdings] == ["h1"]
    assert cluster.record.holdings[0].local_id == "b1"


def test_holdings_for_names_another_source_that_sends_bibliographic_records(tmp_path):
    import pytest

    from consortium.config import ConfigError
    from consortium.load import parse_sources

    def sources(*extra: dict):
        base = {"id": "lib-a", "name": "A", "region": "r", "protocol": "file", "path": "a.mrc"}
        return {"consortium": {"name": "c"}, "sources": [base, *extra]}

    feed = {"id": "lib-a-mfhd", "name": "A holdings", "region": "r", "protocol": "file", "path": "h.mrc"}
    parsed = parse_sources(sources({**feed, "holdings_for": "lib-a"}), tmp_path / "sources.yaml")
    assert {s.id: s.holdings_for for s in parsed.sources} == {"lib-a": None, "lib-a-mfhd": "lib-a"}
    with pytest.raises(ConfigError, match="no source 'lib-b'.*did you mean `lib-a`"):
        parse_sources(sources({**feed, "holdings_for": "lib-b"}), tmp_path / "sources.yaml")
    with pytest.raises(ConfigError, match="own holdings records"):
        parse_sources(sources({**feed, "holdings_for": "lib-a-mfhd"}), tmp_path / "sources.yaml")
    chained = {**feed, "id": "lib-a-more", "holdings_for": "lib-a-mfhd"}
    with pytest.raises(ConfigError, match="is a holdings feed itself"):
        parse_sources(sources({**feed, "holdings_for": "lib-a"}, chained), tmp_path / "sources.yaml")
    with pytest.raises(ConfigError, match="holdings_for"):
        parse_sources(sources({**feed, "holdings_for": 7}), tmp_path / "sources.yaml")


def test_links_of_a_holdings_feed_point_at_its_bib_source(db):
    links = LinkStore(db, feeds={"a-mfhd": "a"})
    assert links.update([(("a-mfhd", "h1"), mfhd("a-mfhd", "h1", "100"))]) == set()
    assert links.orphans() == [("a-mfhd", "h1", "100")] and links.orphans("a-mfhd") == [("a-mfhd", "h1", "100")]
    links.update([(("a", "b1"), bib("a", "b1", "100")), (("x", "b2"), bib("x", "b2", "100"))])
    assert links.orphans() == []
    RecordStore(db).put([(stored(mfhd("a-mfhd", "h1", "100")), "a-mfhd", "h1", 1)])
    assert links.attached([bib("a", "b1", "100"), bib("x", "b2", "100")]) == {
        ("a", "b1"): [[Holding("a-mfhd", "100", holdings_id="h1")]]}
    # the feed's record moves to another bib: the old one is merged again
    links.update([(("a", "b3"), bib("a", "b3", "300"))])
    assert links.update([(("a-mfhd", "h1"), mfhd("a-mfhd", "h1", "300"))]) == {("a", "b1"), ("a", "b3")}
    # without the feed declared, the same rows resolve nowhere
    assert LinkStore(db).orphans() == [("a-mfhd", "h1", "300")]


def test_migration_0007_fills_the_columns_of_holdings_records_stored_before_it(tmp_path):
    """A catalogue built before the columns existed keeps its MFHD attached after the upgrade."""
    import json

    from sqlalchemy import text

    from storage.db import make_engine, sqlite_url
    from unioncat import schema

    engine = make_engine(sqlite_url(tmp_path / "old.db"))
    schema.upgrade(engine, "0006")
    held = mfhd("a", "h1", "100")
    with engine.begin() as conn:
        for i, rec in enumerate([bib("a", "b1", "100"), held]):
            conn.execute(text("INSERT INTO records (source, local_id, raw_seq, deleted, data, seq, updated_at) "
                              "VALUES (:s, :l, 1, 0, :d, :q, '2026-01-01 00:00:00')"),
                         dict(s=rec.source, l=rec.local_id, d=json.dumps(rec.to_dict()), q=i + 1))
    schema.upgrade(engine)
    store = RecordStore(engine)
    links = LinkStore(engine)
    links.update([(("a", "b1"), bib("a", "b1", "100")), (("a", "h1"), held)])
    assert links.attached([bib("a", "b1", "100")]) == {("a", "b1"): [held.holdings]}
    brief = {(s, l): r for _, s, l, r in store.changed_since(0, holdings_brief=True)}
    assert brief[("a", "h1")] == Record("a", "h1", kind="holdings", holdings_of="100")
    assert brief[("a", "b1")].kind == "bibliographic"
    engine.dispose()
