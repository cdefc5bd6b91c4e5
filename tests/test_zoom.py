"""The ctypes ZOOM binding on its own, and probing Z39.50 / SRU members, against a real Zebra."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from harvester.clients import zoom
from consortium.config import Source
from harvester.probe import probe_source
from harvester.clients.zoom import Connection, ZoomConnectError, ZoomQueryError, ZoomTimeout
from publish.zebra_server import free_port
from peers.zebra import SilentServer, bib, zebra  # noqa: F401 - zebra is a fixture

ALL = '@attr 1=_ALLRECORDS @attr 2=103 ""'


def test_records_are_copied_whole_before_the_result_set_dies(zebra):
    server = zebra([bib(1, title="Long title " * 30), bib(2)])
    with Connection(server.url, syntax="usmarc", batch_size=2) as conn:
        with conn.search('@attr 1=12 rec00001') as rs:
            assert rs.size == 1
            data = rs.records(0, 1)[0].data
    # copied with string_at(ptr, len) (Zebra's XML path cannot carry a NUL, so the length is the check)
    assert len(data) == int(data[:5]) and data.endswith(b"\x1e\x1d") and b"Long title" in data


def test_batched_present_and_piggyback(zebra):
    server = zebra([bib(n) for n in range(1, 26)])
    with Connection(server.url, batch_size=10) as conn:
        rs = conn.search(ALL, piggyback=5)
        assert len(rs) == 25
        got = list(rs)
        assert [r.position for r in got] == list(range(1, 26))
        assert rs.records(24, 10)[0].position == 25 and rs.records(25, 10) == []
        rs.close()


def test_errors_carry_code_message_and_addinfo(zebra):
    server = zebra([bib(1)])
    with Connection(server.url) as conn:
        with pytest.raises(ZoomQueryError) as err:
            conn.search("@attr 1=9999 x")
        assert (err.value.code, err.value.diagset, err.value.addinfo) == (114, "Bib-1", "9999")
        with pytest.raises(ZoomQueryError) as err:
            conn.search("@and x")
        assert err.value.code == zoom.ZOOM_ERROR_INVALID_QUERY
    with Connection(server.sru_url, record_schema="marcxml") as conn:
        with pytest.raises(ZoomQueryError) as err:
            conn.search("dc.title=(((", cql=True)
        assert err.value.code == 10 and err.value.diagset.startswith("info:srw/diagnostic")


def test_refused_and_silent_servers():
    with pytest.raises(ZoomConnectError) as err:
        Connection(f"z3950://127.0.0.1:{free_port()}/Default")
    assert err.value.code == zoom.ZOOM_ERROR_CONNECT
    silent = SilentServer()
    try:
        with pytest.raises(ZoomTimeout) as err:
            Connection(f"z3950://127.0.0.1:{silent.port}/Default", timeout=1)
        assert err.value.code == zoom.ZOOM_ERROR_TIMEOUT
    finally:
        silent.close()


def test_one_connection_per_thread_in_parallel(zebra):
    server = zebra([bib(n) for n in range(1, 41)])
    counts, errors = [], []

    def work():
        try:
            with Connection(server.url, batch_size=8) as conn, conn.search(ALL) as rs:
                counts.append(sum(1 for _ in rs))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and counts == [40] * 4


def test_zurl():
    assert zoom.zurl("z3950://h.example:2100/uacn_bib") == ("tcp:h.example:2100", "uacn_bib", "z3950")
    assert zoom.zurl("z3950://h.example/db")[0] == "tcp:h.example:210"
    assert zoom.zurl("http://h:9210/Default") == ("http://h:9210/Default", None, "sru")


def test_missing_libyaz_is_a_clear_failure(tmp_path):
    # A fresh interpreter where libyaz cannot be found: Z39.50 fails with what to install; OAI imports fine.
    code = """
import ctypes, ctypes.util
real = ctypes.CDLL
def fake(name, *a, **k):
    if 'yaz' in str(name):
        raise OSError(name + ': cannot open shared object file')
    return real(name, *a, **k)
ctypes.CDLL = fake
ctypes.util.find_library = lambda name: None
from consortium.config import Source
from storage.db import make_engine, metadata, sqlite_url
from harvester.harvest import harvest_source
from harvester.probe import probe_source
from harvester.store import RawStore
import harvester.clients.oai
engine = make_engine(sqlite_url(%r))
metadata.create_all(engine)
src = Source(id='z', name='Z', region='E', protocol='z3950', url='z3950://127.0.0.1:1/db')
report = harvest_source(src, RawStore(engine))
print(report.status, '|', report.error)
print(probe_source(src).message)
""" % str(tmp_path / "x.db")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first.startswith("failed |") and "apt-get install libyaz5" in first
    assert "apt-get install libyaz5" in second


def test_probe_z3950_and_sru(zebra):
    server = zebra([bib(n) for n in range(1, 6)])
    z = probe_source(Source(id="z", name="Z", region="E", protocol="z3950", url=server.url,
                            options={"query": ALL}))
    assert z.ok, z.message
    assert z.details["hits"] == 5 and "Zebra" in z.message and "5 hit(s)" in z.message
    s = probe_source(Source(id="s", name="S", region="E", protocol="sru", url=server.sru_url))
    assert s.ok, s.message
    assert "explain ok" in s.message
    bad = probe_source(Source(id="z", name="Z", region="E", protocol="z3950", url=server.url,
                              options={"query": "@attr 1=9999 x"}))
    assert not bad.ok and "Bib-1 error 114" in bad.message


def test_probe_z3950_refused():
    url = f"z3950://127.0.0.1:{free_port()}/Default"
    result = probe_source(Source(id="z", name="Z", region="E", protocol="z3950", url=url))
    assert not result.ok and url in result.message and "Connect failed" in result.message
