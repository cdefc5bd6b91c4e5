"""The dedupe's stored rows read back exactly what was written (``storage.jsoncodec``, orjson underneath)."""
from __future__ import annotations

import json

from dedupe.evidence import EvidenceStore, Pair
from storage.jsoncodec import dumps, loads


def test_values_round_trip_exactly_even_beyond_64_bits():
    value = {"t": "贵州省志 : 文物志", "pg": 10 ** 20, "y": 1902, "title": 100.0, "authors": None, "a": ["mackay"]}
    text = dumps(value)
    back = loads(text)
    assert back == value and type(back["pg"]) is int and type(back["title"]) is float
    assert loads(dumps({"pg": 218})) == {"pg": 218}
    # a row an older version wrote with the standard library reads back the same
    assert loads(json.dumps(value | {"pg": 218}, ensure_ascii=False)) == value | {"pg": 218}


def test_stored_features_and_evidence_read_back_equal(db):
    store = EvidenceStore(db)
    a, b = ("m1", "1"), ("m2", "9")
    features = {a: {"src": "m1", "t": "real kruger", "pg": 10 ** 20, "y": 1902, "isbn": ["9789166183116"], "rp": False},
                b: {"src": "m2", "t": "real kruger", "pg": 218, "y": None, "isbn": [], "rp": True}}
    store.stage(features, {a: ["title:realkruger", "sig:year:1902"], b: ["title:realkruger"]}, [])
    evidence = {"title": 95.2, "authors": None, "year": [1902, None], "shared_ids": ["isbn"],
                "pages": [10 ** 20, 218], "vetoes": ["pages"]}
    store.add_pairs([Pair(a, b, "veto", "pages", 0.0, evidence)])
    assert store.features([a, b]) == features
    [pair] = store.pairs_touching([a])
    assert pair == Pair(a, b, "veto", "pages", 0.0, evidence) and type(pair.evidence["pages"][0]) is int


def test_change_feed_filters_find_compact_rows_and_rows_older_versions_wrote(db):
    """A library's set and a format filter are LIKE patterns over stored JSON: they must match what orjson
    writes (no spaces) and what ``json.dumps`` wrote before (``["cn", "1"]``, ``"record_format": "cnmarc"``)."""
    from sqlalchemy import update

    from dedupe.model import Cluster
    from dedupe.store import ClusterStore, clusters, write_clusters
    from normaliser.model import Record

    store = ClusterStore(db)
    new = Cluster("c-new", Record("cn", "1", record_format="cnmarc", title="新"), [("cn", "1")])
    old = Cluster("c-old", Record("cn", "2", record_format="cnmarc", title="旧"), [("cn", "2"), ("lc", "9")])
    other = Cluster("c-lc", Record("lc", "3", title="Other"), [("lc", "3")])
    with db.begin() as conn:
        write_clusters(conn, [new, old, other])
        conn.execute(update(clusters).where(clusters.c.id == "c-old").values(
            members=json.dumps([list(m) for m in old.members], ensure_ascii=False),
            data=json.dumps(old.record.to_dict(), ensure_ascii=False)))
    def ids(**filters) -> list[str]:
        return sorted(row[1] for row in store.changes_page(0, 10, full=False, **filters)[0])

    assert ids(sources=["cn"]) == ["c-new", "c-old"]
    assert ids(sources=["lc"]) == ["c-lc", "c-old"]
    assert ids(record_formats=["cnmarc"]) == ["c-new", "c-old"]
    assert ids(sources=["c"]) == []      # a source id is matched whole, not as a prefix
