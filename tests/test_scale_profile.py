"""``bench/scale_profile.py``: each stage of a tiny synthetic province run under py-spy, its samples sorted into
SQLite, orjson, tantivy, IPC, other C and Python, and the shares adding up to the stage's CPU."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from services import cache_dir

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))   # scale_profile imports its sibling scale.py, as it does run as a script
_spec = importlib.util.spec_from_file_location("scale_profile", REPO / "bench" / "scale_profile.py")
profile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile)
sys.path.remove(str(REPO / "bench"))


@pytest.mark.parametrize("leaf, expected", [
    ("CursorFetchStrategy.fetchall (sqlalchemy/engine/cursor.py:1151)", "SQLite"),
    ("DefaultDialect.do_executemany (sqlalchemy/engine/default.py:942)", "SQLite"),
    ("loads (storage/jsoncodec.py:41)", "orjson"),
    ("to_tantivy (index/embedded_doc.py:60)", "tantivy calls"),
    ("Connection._send (multiprocessing/connection.py:373)", "IPC"),
    ("cdist (rapidfuzz/process_cpp.py:60)", "other C"),
    ("record_features (dedupe/features.py:300)", "Python"),
    ("Result.all (sqlalchemy/engine/result.py:1370)", "Python"),   # SQLAlchemy's own Python is Python
])
def test_a_sample_goes_to_the_category_of_its_leaf_frame(leaf, expected):
    assert profile.category(leaf) == expected


def test_what_py_spy_cannot_see_is_the_cpu_left_over(tmp_path):
    raw = tmp_path / "stacks.txt"
    raw.write_text("process 1:\"python x\";run (x.py:3);loads (storage/jsoncodec.py:41) 50\n"
                   "process 1:\"python x\";run (x.py:3);to_tantivy (index/embedded_doc.py:60) 100\n"
                   "process 1:\"python x\";run (x.py:4) 150\n")
    by_category, by_function = profile.classify(raw)
    assert by_category == Counter({"Python": 150, "tantivy calls": 100, "orjson": 50})
    assert by_function["loads (storage/jsoncodec.py)"] == 50 and by_function["run (x.py)"] == 150
    table = profile.shares(by_category, 50, cpu_s=10.0)       # 6 s sampled of 10 CPU-s: 4 s in unseen threads
    assert table["unsampled threads"] == {"seconds": 4.0, "share": 0.4}
    assert table["Python"] == {"seconds": 3.0, "share": 0.3}
    assert sum(row["share"] for row in table.values()) == pytest.approx(1.0)
    busy = profile.shares(by_category, 50, cpu_s=5.0)         # sampled beyond the CPU (load): shares of the samples
    assert busy["unsampled threads"]["seconds"] == 0 and busy["Python"]["share"] == 0.5


def test_every_stage_of_a_tiny_province_profiled(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "UNIONCAT_CACHE": str(cache_dir("."))}

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    work = tmp_path / "w"
    generated = json.loads(run("bench/scale_stage.py", str(work), "generate", "1500", "130", "7").splitlines()[-1])
    run("bench/scale_stage.py", str(work), "harvest")
    seen = {}
    for stage in ("normalise", "dedupe", "index"):
        out = run("bench/scale_profile.py", str(work), stage, "--rate", "200", "--top", "5")
        seen[stage] = json.loads(out.splitlines()[-1])
        assert f"{stage}: " in out and "own time, the top 5:" in out
    assert seen["normalise"]["report"]["normalised"] == generated["member_records"]
    assert seen["dedupe"]["report"]["records_changed"] == generated["member_records"]
    assert seen["index"]["report"]["indexed"] == seen["dedupe"]["report"]["total_clusters"]
    for stage, result in seen.items():
        table = result["categories"]
        assert result["cpu_s"] > 0 and result["samples"] > 0 and len(result["top"]) == 5
        assert sum(row["share"] for row in table.values()) == pytest.approx(1.0, abs=0.01)
        assert table["Python"]["seconds"] > 0
        assert set(table) <= {name for name, _ in profile.CATEGORIES} | {profile.PYTHON, profile.UNSAMPLED}
    # a tiny stage is mostly its start-up: only what takes a good part of it is surely sampled
    assert seen["dedupe"]["categories"]["SQLite"]["seconds"] > 0
