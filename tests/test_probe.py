"""Probing members without harvesting them."""
from __future__ import annotations

import socket
from pathlib import Path

from consortium.config import Source
from harvester.probe import probe_source
from marc_fixtures import iso2709, make_record, oai_records
from demo.oai_member import DAY, make_app, serve


def test_probe_oai_reports_identify():
    url, stop = serve(make_app(oai_records(3), repository_name="Probe library", granularity=DAY))
    try:
        result = probe_source(Source(id="m", name="M", region="E", protocol="oai", url=url))
    finally:
        stop()
    assert result.ok, result.message
    assert result.details["repositoryName"] == "Probe library"
    assert result.details["granularity"] == DAY and result.details["protocolVersion"] == "2.0"
    assert result.details["earliestDatestamp"].startswith("2024-01-01")
    assert "Probe library" in result.message and result.latency_ms is not None


def test_probe_unreachable_oai():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/oai"
    result = probe_source(Source(id="m", name="M", region="E", protocol="oai", url=url, max_retries=5), timeout=2)
    assert not result.ok and url in result.message and "refused" in result.message.lower()


def test_probe_files(tmp_path: Path):
    (tmp_path / "a.mrc").write_bytes(iso2709(make_record("1")))
    ok = probe_source(Source(id="f", name="F", region="E", protocol="file", path=tmp_path))
    assert ok.ok and ok.details["files"] == 1
    missing = probe_source(Source(id="f", name="F", region="E", protocol="file", path=tmp_path / "nope"))
    assert not missing.ok and "no such file" in missing.message
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    none = probe_source(Source(id="f", name="F", region="E", protocol="file", path=empty_dir))
    assert not none.ok and "no files matching" in none.message


def test_probe_unreachable_sru():
    result = probe_source(Source(id="z", name="Z", region="E", protocol="sru", url="http://127.0.0.1:1/sru"))
    assert not result.ok and "http://127.0.0.1:1/sru" in result.message and "refused" in result.message.lower()
