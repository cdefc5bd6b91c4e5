"""One JSON codec for every stored row (``storage.jsoncodec``): orjson, with ``json`` behind a marker for
what orjson would misread or refuse, and ``json`` again for the unmarked rows older versions wrote."""
from __future__ import annotations

import json
import sqlite3

import orjson
import pytest

from storage.jsoncodec import MARKER, dumps, loads


def test_ordinary_rows_are_orjson_compact_and_unmarked():
    value = {"t": "贵州省志 : 文物志", "pg": 218, "y": 1902, "title": 100.0, "authors": None, "a": ["mackay"]}
    text = dumps(value)
    assert text == orjson.dumps(value).decode() and not text.startswith(MARKER)
    assert loads(text) == value and type(loads(text)["title"]) is float


@pytest.mark.parametrize("big", [10 ** 20, -(2 ** 70), 123456789012345678901234])
def test_integers_beyond_64_bits_round_trip_as_integers(big):
    text = dumps({"pg": big, "t": "贵州"})
    assert text.startswith(MARKER)        # unmarked, orjson would read it back as a float, silently
    for stored in (text, text.encode()):  # as a database column holds it, and as tantivy's stored bytes
        back = loads(stored)
        assert back == {"pg": big, "t": "贵州"} and type(back["pg"]) is int


def test_lone_surrogates_round_trip_and_the_row_is_storable_utf8():
    value = {"t": "broken \ud800 title", "h": ["\udc80"]}
    text = dumps(value)
    assert text.startswith(MARKER) and loads(text) == value
    with sqlite3.connect(":memory:") as db:     # the databases take valid UTF-8 only
        db.execute("CREATE TABLE t (data TEXT)")
        db.execute("INSERT INTO t VALUES (?)", (text,))
        assert loads(db.execute("SELECT data FROM t").fetchone()[0]) == value


def test_plain_is_what_json_writes_when_orjson_refuses_the_value_itself():
    assert loads(dumps(("x", 2 ** 70), lambda: ["x", 2 ** 70])) == ["x", 2 ** 70]
    assert dumps(("x", 1), lambda: pytest.fail("not needed")) == '["x",1]'


@pytest.mark.parametrize("value", [{"t": "贵州省志", "pg": 218}, {"t": "broken \ud800"}, [1, None, "é"]])
def test_rows_older_versions_wrote_with_json_read_back(value):
    for text in (json.dumps(value, ensure_ascii=False), json.dumps(value)):
        assert loads(text) == value
