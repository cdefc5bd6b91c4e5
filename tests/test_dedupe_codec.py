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
