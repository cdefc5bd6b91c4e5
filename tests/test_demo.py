"""Acceptance: the demo consortium of real LoC records, end to end.

`unioncat demo` builds seven members from Library of Congress records (the
pymarc 5.4.0 sdist, fetched once and cached), serves one over OAI-PMH with
the oaipmh package's server and one — a Huiwen library sending CNMARC in GBK —
over Z39.50 from a real Zebra, on free ports written into the demo's own
sources.yaml, and runs the pipeline.  Then `unioncat run` on the demo
consortium and `unioncat search --json` for a title several demo libraries
hold return one hit whose holdings name exactly those libraries.  Stopping the
demo (SIGTERM, Ctrl-C) stops its members; a port in use or a member left over
from an earlier demo is one clear line, not a traceback or a silent harvest.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pymarc
import pytest
from click.testing import CliRunner

from demo.cli import demo as demo_command
from demo.consortium import holders
from demo.loc import iter_chunks, loc_file
from demo.members import PID_FILE, check_leftovers, running_members, write_sources
from peers.zebra import zebra_or_skip
from services import free_port, stop_process
from unioncat.cli import main

REPO = Path(__file__).resolve().parents[1]
RECORDS = 400
pytestmark = pytest.mark.loc
# How a separate process runs `unioncat demo` from this tree (SIGTERM and Ctrl-C are sent to it).
UNIONCAT = "import sys; from unioncat.cli import main; sys.exit(main(prog_name='unioncat'))"


def test_the_demo_command_comes_through_the_entry_point():
    assert main.commands["demo"] is demo_command


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    return Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache"))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    zebra_or_skip()
    return tmp_path_factory.mktemp("demo")


def cli(root: Path, data: str, *args: str, code: int = 0, cache: Path, sources: Path | None = None):
    flags = ["--sources", str(sources)] if sources else []
    result = CliRunner().invoke(main, [*flags, "--data", str(root / data), *args],
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
    root = demo_dir
    result = cli(root, "var-demo", "demo", "--no-serve", "--records", str(RECORDS), "--chinese", "60",
                 cache=cache_dir)
    assert "[seu] ok:" in result.stderr and "held by several libraries" in result.stderr
    assert "[njust] ok:" in result.stderr  # the Huiwen member, over Z39.50 from Zebra
    assert "[jiangnan] ok:" in result.stderr and "1 quarantined" in result.stderr  # the cut-short record
    build = root / "var-demo" / "demo"
    assert not (build / PID_FILE).exists()  # the members stopped with the demo

    with running_members(build, free_port(), free_port(), log=lambda _m: None) as members:
        sources = write_sources(build, members)
        run = cli(root, "var", "run", cache=cache_dir, sources=sources)
    assert "7 of 7 sources due" in run.stderr and "[njust] ok:" in run.stderr

    candidates = shared_titles(cache_dir)
    assert len(candidates) > 50
    for title, libraries in candidates[:5]:
        out = json.loads(cli(root, "var", "search", "--json", f'"{title}"', cache=cache_dir,
                             sources=sources).stdout)
        assert out["total"] == 1, (title, out["total"])
        (hit,) = out["hits"]
        assert {h["source"] for h in hit["holdings"]} == libraries, title
        assert hit["library_count"] == len(libraries)
        names = {h["library"] for h in hit["holdings"]}
        assert all(n.endswith("Library") for n in names)
    status = json.loads(cli(root, "var", "status", "--json", cache=cache_dir, sources=sources).stdout)
    assert status["totals"]["shared_clusters"] > 0.5 * status["totals"]["clusters"]


def test_cnmarc_and_marc21_of_one_book_are_one_entry_with_huiwen_holdings(demo_dir, cache_dir):
    """The Huiwen member's CNMARC (GBK, over Z39.50) and MARC 21 members' records share an entry by ISBN;
    its 905 call number shows on the record page with an ISBN-search link; traditional and simplified
    Chinese find the same entry."""
    import opencc

    from unioncat.pipeline import Catalogue
    from unioncat.present import make_app
    from unioncat.settings import load_settings

    root = demo_dir
    demo_sources = root / "var-demo" / "demo" / "sources.yaml"
    cat = Catalogue(load_settings(env={}, sources_path=demo_sources, data_dir=root / "var"))
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
            out = json.loads(cli(root, "var", "search", "--json", form, cache=cache_dir,
                                 sources=demo_sources).stdout)
            assert chosen.id in [h["id"] for h in out["hits"]], form
    finally:
        cat.close()


# -- ports, leftovers and stopping ------------------------------------------------------------

def test_the_catalogue_port_in_use_is_one_clear_line(tmp_path, cache_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(tmp_path, "var", "demo", "--port", str(port), code=2, cache=cache_dir)
    assert result.stderr.strip() == f"Error: port {port} is in use: choose another with --port or make demo PORT=…"
    assert not (tmp_path / "var" / "demo").exists()  # said before anything was built


def test_a_member_port_in_use_is_reported_not_harvested(tmp_path, cache_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(tmp_path, "var", "demo", "--no-serve", "--oai-port", str(port), code=2, cache=cache_dir)
    assert f"port {port} for the demo's OAI-PMH member is in use" in result.stderr and "--oai-port" in result.stderr
    assert "Traceback" not in result.output


def test_a_leftover_member_from_an_earlier_demo_is_detected(tmp_path, cache_dir):
    build = tmp_path / "var" / "demo"
    build.mkdir(parents=True)
    leftover = subprocess.Popen(["sleep", "60"])  # stands in for a zebrasrv whose demo was killed with SIGKILL
    try:
        (build / PID_FILE).write_text(json.dumps({"pids": {"demo": 999_999_999, "zebrasrv": leftover.pid},
                                                  "ports": {"oai": 8081, "z3950": 8210}}))
        result = cli(tmp_path, "var", "demo", "--no-serve", code=2, cache=cache_dir)
        assert f"zebrasrv (pid {leftover.pid})" in result.stderr and f"kill {leftover.pid}" in result.stderr
    finally:
        stop_process(leftover)
    check_leftovers(build)  # once it is gone, the stale pid file no longer stops a demo
    assert not (build / PID_FILE).exists()


def start_demo(cwd: Path, data: str, cache: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "UNIONCAT_CACHE": str(cache)}
    return subprocess.Popen([sys.executable, "-c", UNIONCAT, "--data", data, "demo", "--records", "30",
                             "--chinese", "0", *args], cwd=cwd, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_a_shell_starts_it)


def _as_a_shell_starts_it() -> None:
    """Ctrl-C as a reader's shell leaves it: default and unblocked.  A test run's process may ignore or
    block SIGINT by then (an rq work horse ignores it), and a child inherits both across exec."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(process: subprocess.Popen, text: str) -> str:
    seen = []
    for line in process.stderr:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"the demo ended before {text!r}:\n{''.join(seen)}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_demos_side_by_side_stop_their_members_on_sigterm_and_ctrl_c(tmp_path, cache_dir):
    zebra_or_skip()
    demos = {sig: start_demo(tmp_path, name, cache_dir, "--members-only")
             for sig, name in ((signal.SIGTERM, "a"), (signal.SIGINT, "b"))}
    try:
        pids = {}
        for sig, process in demos.items():
            wait_for(process, "demo members are serving")
            name = "a" if sig == signal.SIGTERM else "b"
            info = json.loads((tmp_path / name / "demo" / PID_FILE).read_text())
            pids[sig] = info["pids"]["zebrasrv"]
            assert f"127.0.0.1:{info['ports']['oai']}" in (tmp_path / name / "demo" / "sources.yaml").read_text()
        assert len({*pids.values()}) == 2
        for sig, process in demos.items():
            process.send_signal(sig)
            # the exit, not the end of its stderr: a process forked meanwhile from another thread of this
            # test run can hold a copy of the pipe's write end past the demo's exit
            process.wait(timeout=30)
            process.stderr.close()
            assert process.returncode == 0
            assert not alive(pids[sig]), f"zebrasrv outlived a demo stopped by {sig.name}"
        assert not (tmp_path / "a" / "demo" / PID_FILE).exists() and not (tmp_path / "b" / "demo" / PID_FILE).exists()
    finally:
        for process in demos.values():
            stop_process(process)


def test_sigterm_stops_a_serving_demo_and_its_members(tmp_path, cache_dir):
    zebra_or_skip()
    port = free_port()
    process = start_demo(tmp_path, "var", cache_dir, "--port", str(port))
    try:
        wait_for(process, f"on http://127.0.0.1:{port}/")
        zebrasrv = json.loads((tmp_path / "var" / "demo" / PID_FILE).read_text())["pids"]["zebrasrv"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.status == 200
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        assert process.returncode == 0 and not alive(zebrasrv)
    finally:
        stop_process(process)
