"""Acceptance: the demo consortium of real LoC records, end to end.

`unioncat demo` builds seven members from Library of Congress records (the
pymarc 5.4.0 sdist, fetched once and cached), serves one over OAI-PMH with
the oaipmh package's server and one — a Huiwen library sending CNMARC in GBK —
over Z39.50 from a real Zebra, and runs the pipeline.  Then `unioncat run` on
the demo consortium and `unioncat search --json` for a title several demo
libraries hold return one hit whose holdings name exactly those libraries.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pymarc
import pytest
from click.testing import CliRunner

from unioncat.cli import main
from demo.consortium import holders, serve_oai_member, serve_zebra_member
from demo.loc import iter_chunks, loc_file
from services import free_port
from peers.zebra import zebra_or_skip

REPO = Path(__file__).resolve().parents[1]
RECORDS = 400
pytestmark = pytest.mark.loc


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    return Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache"))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, cache_dir):
    """A copy of the repository's sources.yaml whose OAI member listens on a free port."""
    zebra_or_skip()
    root = tmp_path_factory.mktemp("demo")
    port, zport = free_port(), free_port()
    text = (REPO / "sources.yaml").read_text(encoding="utf-8").replace("127.0.0.1:8081", f"127.0.0.1:{port}")
    text = text.replace("127.0.0.1:8210", f"127.0.0.1:{zport}")
    (root / "sources.yaml").write_text(text, encoding="utf-8")
    return root, port, zport


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
    root, port, zport = demo_dir
    result = cli(root, "var-demo", "demo", "--no-serve", "--records", str(RECORDS), "--chinese", "60",
                 "--oai-port", str(port), "--zebra-port", str(zport), cache=cache_dir)
    assert "[seu] ok:" in result.stderr and "held by several libraries" in result.stderr
    assert "[njust] ok:" in result.stderr  # the Huiwen member, over Z39.50 from Zebra
    assert "[jiangnan] ok:" in result.stderr and "1 quarantined" in result.stderr  # the cut-short record

    url, stop = serve_oai_member(root / "demo" / "build", port=port)
    zebra = serve_zebra_member(root / "demo" / "build", port=zport)
    try:
        run = cli(root, "var", "run", cache=cache_dir)
    finally:
        stop()
        zebra.stop()
    assert "7 of 7 sources due" in run.stderr and "[njust] ok:" in run.stderr

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


def test_cnmarc_and_marc21_of_one_book_are_one_entry_with_huiwen_holdings(demo_dir, cache_dir):
    """The Huiwen member's CNMARC (GBK, over Z39.50) and MARC 21 members' records share an entry by ISBN;
    its 905 call number shows on the record page with an ISBN-search link; traditional and simplified
    Chinese find the same entry."""
    import opencc

    from unioncat.pipeline import Catalogue
    from unioncat.present import make_app
    from unioncat.settings import load_settings

    root, _, _ = demo_dir
    cat = Catalogue(load_settings(env={}, sources_path=root / "sources.yaml", data_dir=root / "var"))
    try:
        chosen = None
        for cluster in cat.clusters.iter_live():
            sources = {s for s, _ in cluster.members}
            if "njust" in sources and len(sources) >= 2 and any(k.startswith("isbn:") for k in cluster.match_keys) \
                    and any(p.tag == "245" for p in cluster.record.parallel):
                chosen = cluster
                break
        assert chosen is not None, "no CNMARC + MARC 21 entry joined by ISBN in the demo"
        njust = [h for h in chosen.record.holdings if h.source == "njust"]
        assert njust and njust[0].call_number and njust[0].library == "NJUST"
        client = make_app(cat).test_client()
        page = client.get(f"/record/{chosen.id}").get_data(as_text=True)
        assert "Nanjing University of Science and Technology Library" in page
        assert njust[0].call_number in page and "strSearchType=isbn" in page
        han = next(p.text for p in chosen.record.parallel if p.tag == "245").split(" / ")[0].strip(" /:;")
        for form in (opencc.OpenCC("t2s").convert(han), opencc.OpenCC("s2t").convert(han)):
            out = json.loads(cli(root, "var", "search", "--json", form, cache=cache_dir).stdout)
            assert chosen.id in [h["id"] for h in out["hits"]], form
    finally:
        cat.close()
