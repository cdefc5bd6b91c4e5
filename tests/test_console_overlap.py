"""Collection overlap (馆藏比对) from a real build: three members share one book and each holds one of its
own; unique vs shared counts, the member × member matrix, by class, and the two CSV lists."""
from __future__ import annotations

import csv
import io

from dedupe.members import MemberStore
from staff_env import login
from test_staff_dedupe import merged  # noqa: F401 - fixture
from web import create_app


def _client(cat):
    app = create_app({"SOURCES": cat.sources, "DB_ENGINE": cat.engine, "SEARCH_BACKEND": cat.index,
                      "SECRET_KEY": "t", "TESTING": True})
    client = app.test_client()
    login(client, "viewer-1")
    return client


def test_unique_and_shared_counts_and_the_matrix(merged):  # noqa: F811
    cat, _args = merged
    data = _client(cat).get("/staff/overlap.json").get_json()
    assert data["entries"] == 4
    rows = {m["source"]: m for m in data["members"]}
    for member in ("lib-a", "lib-b", "lib-c"):
        assert (rows[member]["held"], rows[member]["unique"], rows[member]["1"], rows[member]["2-5"]) == (2, 1, 0, 1)
        assert rows[member]["unique_share"] == 50.0
    assert data["matrix"] == [[2, 1, 1], [1, 2, 1], [1, 1, 2]] and data["peak"] == 1
    assert data["classes"] == [{"class": "?", "unique": 3, "1": 0, "2-5": 1, "6+": 0}]


def test_a_scope_the_lists_and_the_page(merged):  # noqa: F811
    cat, _args = merged
    client = _client(cat)
    shared = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-1")
    own = MemberStore(cat.engine).cluster_of("lib-b", "lib-b-2")
    unique = list(csv.DictReader(io.StringIO(client.get("/staff/overlap/unique/lib-b.csv").text)))
    assert [(r["entry"], r["title"], r["held_by"]) for r in unique] == [(own, "Tax law in practice", "lib-b")]
    none = list(csv.DictReader(io.StringIO(client.get("/staff/overlap/none.csv?region=Nanjing").text)))
    assert none == []  # every entry is held in Nanjing
    html = client.get("/staff/overlap").text
    assert 'class="heatmap"' in html and "heat-self" in html and "heat-4" in html and "Library B" in html
    assert shared not in html  # counts, not titles, on the page
    assert client.get("/staff/overlap?group=nosuch").status_code == 404
    assert client.get("/staff/overlap/unique/nosuch.csv").status_code == 404
