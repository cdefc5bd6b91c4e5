"""The JSON API under /api/v1: its answers, API keys, the rate limit, CORS, streamed exports —
and schemathesis against the OpenAPI description of the running app."""
from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys

import pymarc
import pytest

from browser import LiveServer
from peers.provider_fixtures import app_for, cat  # noqa: F401 - fixture

KEY = "k-" + "3" * 30


@pytest.fixture
def client(cat):
    return app_for(cat, API_KEYS=[KEY], CORS_ORIGINS="https://portal.example.edu.cn").test_client()


def test_search_with_facets_record_and_holdings(cat, client):
    answer = client.get("/api/v1/search?q=computer&limit=5").get_json()
    assert answer["total"] == 2 and {h["title"] for h in answer["hits"]} == {
        "The art of computer programming", "Structure and interpretation of computer programs"}
    assert {v["value"]: v["count"] for v in answer["facets"]["library"]} == {"lib-a": 1, "lib-b": 2}
    narrowed = client.get("/api/v1/search?q=computer&filter=library:lib-a").get_json()
    assert [h["title"] for h in narrowed["hits"]] == ["The art of computer programming"]
    hit = next(h for h in client.get("/api/v1/search?isbn=9787020002207").get_json()["hits"])
    record = client.get(hit["url"]).get_json()
    assert record["id"] == hit["id"] and record["record"]["title"] == "Dream of the red chamber"
    assert sorted(m["source"] for m in record["members"]) == ["cn", "lib-a", "lib-b"]
    holdings = client.get(f"/api/v1/records/{hit['id']}/holdings").get_json()["holdings"]
    assert {(h["source"], h["library_name"], h["region"]) for h in holdings} == {
        ("lib-a", "Library A", "Nanjing"), ("lib-b", "Library B", "Nanjing"), ("cn", "Huiwen Library", "Su zhou")}
    assert client.get("/api/v1/search?filter=colour:red").status_code == 400
    assert client.get("/api/v1/search?limit=1000").get_json()["status"] == 400
    missing = client.get("/api/v1/records/nope")
    assert missing.status_code == 404 and missing.get_json()["error"]
    unknown = client.get("/api/v1/no-such-endpoint")        # not routed at all: still the API's JSON shape
    assert unknown.status_code == 404 and unknown.get_json()["status"] == 404


def test_a_merged_away_id_redirects(cat, client):
    live = next(cat.clusters.iter_live())
    cat.clusters.save([], redirects={"uc-old-merged": live.id})
    response = client.get("/api/v1/records/uc-old-merged")
    assert response.status_code == 301 and response.headers["Location"].endswith(f"/api/v1/records/{live.id}")


def test_changes_since_a_time(cat, client):
    everything = client.get("/api/v1/changes?limit=1000").get_json()
    assert len({c["id"] for c in everything["changes"]}) >= cat.clusters.count()
    first = client.get("/api/v1/changes?limit=3").get_json()
    assert first["more"] and len(first["changes"]) == 3
    rest = client.get(f"/api/v1/changes?limit=1000&after={first['next_after']}").get_json()
    assert [c["seq"] for c in first["changes"] + rest["changes"]] == [c["seq"] for c in everything["changes"]]
    assert client.get("/api/v1/changes?since=2999-01-01T00:00:00Z").get_json()["changes"] == []
    assert client.get("/api/v1/changes?since=yesterday").status_code == 400


def test_keys_and_exports(cat, client):
    assert client.get("/api/v1/export").status_code == 401
    assert client.get("/api/v1/search", headers={"X-API-Key": "wrong"}).status_code == 401
    lines = client.get("/api/v1/export?format=jsonl", headers={"X-API-Key": KEY}).data.decode().splitlines()
    assert len(lines) == cat.clusters.count()
    first = json.loads(lines[0])
    assert first["kind"] == "merged" and first["marc"]["fields"][0] == {"001": first["id"]}
    # a member's own records, each with the cluster it is in
    response = client.get("/api/v1/export?set=members:lib-b&format=iso2709&gzip=true",
                          headers={"Authorization": f"Bearer {KEY}"})
    assert response.mimetype == "application/gzip"
    records = list(pymarc.MARCReader(io.BytesIO(gzip.decompress(response.data)), to_unicode=True))
    assert len(records) == 5
    for rec in records:
        clusters = [f["a"] for f in rec.get_fields("035") if f["a"].startswith("(UNIONCAT)")]
        assert clusters == ["(UNIONCAT)" + cat.members.cluster_of("lib-b", rec["001"].data)]
    xml = client.get("/api/v1/export?set=region:Su-zhou&format=marcxml", headers={"X-API-Key": KEY}).data
    assert len(pymarc.parse_xml_to_array(io.BytesIO(xml))) == sum(
        1 for c in cat.clusters.iter_live() if "cn" in c.sources)


def test_rate_limit_answers_429_with_retry_after(cat):
    client = app_for(cat, API_RATE=0.01, API_BURST=2, API_KEYS=KEY, API_KEY_RATE=100).test_client()
    assert [client.get("/api/v1/libraries").status_code for _ in range(3)] == [200, 200, 429]
    limited = client.get("/api/v1/libraries")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert client.get("/api/v1/libraries", headers={"X-API-Key": KEY}).status_code == 200  # keys have their own bucket


def test_cors_for_configured_origins_only(client):
    allowed = client.get("/api/v1/libraries", headers={"Origin": "https://portal.example.edu.cn"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://portal.example.edu.cn"
    preflight = client.options("/api/v1/search", headers={"Origin": "https://portal.example.edu.cn",
                                                          "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 200 and "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    other = client.get("/api/v1/libraries", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_api_conforms_to_its_openapi_description(cat, tmp_path):
    """The schemathesis CLI, every default check and both generation modes, against the live app."""
    server = LiveServer(app_for(cat, API_KEYS=[KEY], API_RATE=10_000, API_BURST=10_000, API_KEY_RATE=10_000,
                                API_KEY_BURST=10_000))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", server.url + "/api/v1/openapi.json",
             "--max-examples", "15", "--seed", "1", "--generation-database", "none", "--workers", "1",
             "-H", f"X-API-Key: {KEY}", "--phases", "examples,coverage,fuzzing",
             "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=240, cwd=tmp_path)
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
