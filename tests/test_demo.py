"""Acceptance: the demo consortium of real LoC records, end to end.

`unioncat demo` builds six members from Library of Congress records (the
pymarc 5.4.0 sdist, fetched once and cached), serves one over OAI-PMH with
the oaipmh package's server, and runs the pipeline.  Then `unioncat run` on
the demo consortium and `unioncat search --json` for a title several demo
libraries hold return one hit whose holdings name exactly those libraries.
"""
from __future__ import annotations

import json
import os
import socket
from collections import Counter
from pathlib import Path

import pymarc
import pytest
from click.testing import CliRunner

from unioncat.cli import main
from unioncat.demo import holders, serve_oai_member
from unioncat.loc import iter_chunks, loc_file

REPO = Path(__file__).resolve().parents[1]
RECORDS = 400
pytestmark = pytest.mark.loc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    return Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache"))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, cache_dir):
    """A copy of the repository's sources.yaml whose OAI member listens on a free port."""
    root = tmp_path_factory.mktemp("demo")
    port = free_port()
    text = (REPO / "sources.yaml").read_text(encoding="utf-8").replace("127.0.0.1:8081", f"127.0.0.1:{port}")
    (root / "sources.yaml").write_text(text, encoding="utf-8")
    return root, port


def cli(root: Path, data: str, *args: str, code: int = 0, cache: Path):
    result = CliRunner().invoke(main, ["--sources", str(root / "sources.yaml"), "--data", str(root / data), *args],
                                env={"UNIONCAT_CACHE": str(cache)}, catch_exceptions=False)
    assert result.exit_code == code, result.stderr
    return result


def shared_titles(cache: Path) -> list[tuple[str, set[str]]]:
    """Base records held by ≥ 2 members whose title is unique in the sample, with their holders."""
    titles = []
    for i, chunk in enumerate(iter_chunks(loc_file(cache), limit=RECORDS)):
        rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
        titles.append((rec["245"]["a"].strip(" /:;.,"), set(holders(i))))
    counts = Counter(t for t, _ in titles)
    return [(t, h) for t, h in titles if counts[t] == 1 and len(h) >= 2 and len(t) > 12]


def test_demo_then_run_then_search(demo_dir, cache_dir):
    root, port = demo_dir
    result = cli(root, "var-demo", "demo", "--no-serve", "--records", str(RECORDS), "--oai-port", str(port),
                 cache=cache_dir)
    assert "[seu] ok:" in result.stderr and "held by several libraries" in result.stderr
    assert "[jiangnan] ok:" in result.stderr and "1 quarantined" in result.stderr  # the cut-short record

    url, stop = serve_oai_member(root / "demo" / "build", port=port)
    try:
        run = cli(root, "var", "run", cache=cache_dir)
    finally:
        stop()
    assert "6 of 6 sources due" in run.stderr

    candidates = shared_titles(cache_dir)
    assert len(candidates) > 50
    for title, libraries in candidates[:5]:
        out = json.loads(cli(root, "var", "search", "--json", f'"{title}"', cache=cache_dir).stdout)
        assert out["total"] == 1, (title, out["total"])
        (hit,) = out["hits"]
        assert {h["source"] for h in hit["holdings"]} == libraries, title
        assert hit["library_count"] == len(libraries)
        names = {h["library"] for h in hit["holdings"]}
        assert all(n.endswith("Library") for n in names)
    status = json.loads(cli(root, "var", "status", "--json", cache=cache_dir).stdout)
    assert status["totals"]["shared_clusters"] > 0.5 * status["totals"]["clusters"]
