"""The consortium-scale benchmark at a tiny size: the synthetic province is what it claims, and the
benchmark's build (harvest, normalise, dedupe, index in child processes) and incremental pass work."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pymarc
import pytest
from stdnum import isbn

from consortium.load import load_sources
from demo import synthetic
from demo.loc import iter_chunks, loc_file
from services import cache_dir
from unioncat.catalogue import Catalogue
from unioncat.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def loc() -> Path:
    return loc_file(cache_dir("."), log=lambda *a: None)  # the LoC file sits at the cache root


def test_editions_are_distinct_manifestations_with_valid_isbns(loc):
    chunk = next(iter_chunks(loc))
    original = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
    years = set()
    for j in range(1, 5):
        rec = pymarc.Record(data=synthetic.edition(chunk, 7, j), to_unicode=True, force_utf8=True)
        (value,) = [f["a"] for f in rec.get_fields("020")]
        assert isbn.is_valid(value) and rec["250"]["a"] == f"{j + 1}. ed."
        assert rec["245"]["a"] == original["245"]["a"]  # same work: the matcher's vetoes, not its rules, part them
        years.add(rec["008"].data[7:11])
    assert len(years) == 4 and original["008"].data[7:11] not in years


def test_generation_is_deterministic_and_zipf_shaped(loc, tmp_path):
    a = synthetic.generate(loc, tmp_path / "a", 3000, seed=3)
    b = synthetic.generate(loc, tmp_path / "b", 3000, seed=3)
    assert a == b and all((tmp_path / "a" / f.name).read_bytes() == f.read_bytes() for f in (tmp_path / "b").iterdir())
    hist = a.holders_histogram
    few = sum(v for h, v in hist.items() if h <= 3) / a.manifestations
    assert 0.7 < few < 0.9 and max(hist) >= 20  # most held by one to three, popular ones by dozens
    sizes = sorted(a.per_member.values())
    assert sizes[-1] > 3 * sizes[len(sizes) // 2]  # a few large members, many small ones
    assert a.chinese_manifestations >= a.manifestations // 12
    gbk = [p for p in (tmp_path / "a").glob("m006.mrc")][0].read_bytes()  # member 6 exports CNMARC in GBK
    assert HAN.search(gbk.decode("gbk", errors="replace"))


def test_the_benchmark_builds_the_province_and_an_incremental_pass(tmp_path):
    results = tmp_path / "scale.jsonl"
    done = subprocess.run([sys.executable, "bench/scale.py", "--members-records", "2000", "--work", str(tmp_path / "w"),
                           "--keep", "--results", str(results), "--dedupe-workers", "2", "--reference-records", "500"],
                          cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "member records per CPU-second" in done.stdout
    run = json.loads(results.read_text().splitlines()[-1])
    g, full, inc = run["generated"], run["full"], run["incremental"]
    assert run["dedupe_workers"] == 2
    assert g["member_records"] >= 2000 and full["harvest"]["report"]["added"] == g["member_records"]
    assert full["normalise"]["report"]["normalised"] == g["member_records"]
    clusters = full["index"]["report"]["total"]
    assert g["manifestations"] <= clusters <= g["manifestations"] * 1.06  # editions kept apart, copies merged
    assert full["index"]["report"]["shared_clusters"] > g["manifestations"] * 0.3
    assert all(full[s]["peak_rss_mb"] > 30 and full[s]["cpu_s"] > 0 for s in ("harvest", "normalise", "dedupe", "index"))
    assert all(full[s]["peak_wal_mb"] >= 0 for s in ("harvest", "normalise", "dedupe", "index"))   # sampled, kept
    assert all(0 < full[s]["peak_anon_mb"] <= max(full[s]["peak_rss_mb"], full[s]["worker_peak_rss_mb"])
               for s in ("normalise", "dedupe", "index"))
    assert full["sizes"]["database_mb"] > 0 and full["sizes"]["index_mb"] > 0
    # the machine's yardstick, before and after: the build's CPU a member record in pymarc parses of a LoC record
    ref = run["reference"]
    assert ref["before_us"] > 0 and ref["after_us"] > 0 and ref["pymarc"].startswith("5.")
    per_record_us = full["build"]["cpu_s"] / g["member_records"] * 1e6
    assert ref["build_in_parses"] == pytest.approx(per_record_us / min(ref["before_us"], ref["after_us"]), rel=0.01)
    assert min(ref["passes_us"]) == min(ref["before_us"], ref["after_us"]) and len(ref["passes_us"]) == 10
    assert "such parses a member record" in done.stdout
    shown = subprocess.run([sys.executable, "bench/scale.py", "--table", "--results", str(results)], cwd=REPO,
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert f"({ref['build_in_parses']} pymarc parses a record)" in shown.stdout
    # 1% of the largest member changed: only that is harvested, normalised and deduped again
    held = g["per_member"][inc["member"]]
    assert inc["changed"] == -(-held // 100)
    assert inc["harvest"]["report"]["updated"] == inc["changed"]
    assert inc["harvest"]["report"]["unchanged"] == g["member_records"] - inc["changed"]
    assert inc["dedupe"]["report"]["records_changed"] == inc["changed"]
    assert inc["index"]["report"]["total"] == clusters
    work = tmp_path / "w"
    settings = load_settings(env={}, data_dir=work / "var", sources_path=work / "sources.yaml", cache_dir=cache_dir("."))
    cat = Catalogue(settings, load_sources(work / "sources.yaml"))
    try:
        titles = [" ".join([c.record.title, *(p.text for p in c.record.parallel)]) for c in cat.clusters.iter_live()]
    finally:
        cat.close()
    assert len(titles) == clusters and sum(bool(HAN.search(t)) for t in titles) >= 10  # Han script in the catalogue (880s, CNMARC)
    membership = _membership(work / "var" / "unioncat.db")
    done = subprocess.run([sys.executable, "bench/dedupe_one.py", "--data", str(work / "var"), "--records", "2"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    one = json.loads(done.stdout)
    assert one["member_records"] == g["member_records"] and len(one["rounds"]) == 2
    # each round re-deduplicated exactly one record, and a record that only got a new number stays where it was
    assert all(r["clusters_written"] >= 1 and r["records_reclustered"] >= 1 for r in one["rounds"])
    assert _membership(work / "var" / "unioncat.db") == membership


def _membership(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT source, local_id, cluster_id FROM dedupe_members ORDER BY 1, 2").fetchall()
