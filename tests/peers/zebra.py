"""Test helpers around a real Zebra Z39.50/SRU server (the logic lives in :mod:`publish.zebra_server`).

``zebra_or_skip()`` decides what happens when Zebra or libyaz is missing: in CI (``CI`` set) the
tests FAIL with what to install; elsewhere they are skipped.  ``zebra`` is a fixture factory::

    def test_x(zebra, tmp_path):
        server = zebra([record, ...])          # ISO 2709 records, or record_type="xml"
        server.url, server.sru_url, server.update(...), server.delete(...)

Records are built in code (pymarc), like ``marc_fixtures``; nothing here needs the shared corpus.
"""
from __future__ import annotations

import itertools
import socket
import threading
from pathlib import Path

import pytest
from pymarc import Field, Record

from harvester.clients import zoom
from marc_fixtures import collection, make_record
from services import unavailable
from demo import ZEBRA_CONF
from publish.zebra_server import ZebraServer, missing, start_zebra

_counter = itertools.count(1)


def zebra_or_skip() -> None:
    """Skip (or, in CI, fail) unless zebrasrv, zebraidx and libyaz are installed."""
    why = missing()
    if why is None and not zoom.available():
        why = f"libyaz.so.5 not loadable; {zoom.INSTALL_HINT}"
    if why is None:
        return
    unavailable(why, "the Z39.50 tests")


def bib(n: int, title: str | None = None, year: int | None = None, modified: str = "20240101",
        control: str | None = None) -> Record:
    """Bibliographic record ``n``: 001 ``rec{n:05d}``, a 005 of ``modified`` (yyyymmdd), 008 year."""
    rec = make_record(control or f"rec{n:05d}", title=title or f"Title {n}", year=str(year or 2000 + n % 20),
                      isbn=None)
    rec.add_ordered_field(Field(tag="005", data=f"{modified}120000.0"))
    return rec


def write_mrc(path: Path, records: list[Record]) -> Path:
    path.write_bytes(b"".join(r.as_marc() for r in records))
    return path


def write_xml(path: Path, records: list[Record]) -> Path:
    path.write_bytes(collection(records))
    return path


def iso2709(fields: list[tuple[str, bytes]], leader: bytes = b"00000nam  2200000   450 ") -> bytes:
    """Assemble an ISO 2709 record from already-encoded fields (e.g. GBK UNIMARC)."""
    directory, body = b"", b""
    for tag, data in fields:
        data = data + b"\x1e"
        directory += tag.encode() + b"%04d%05d" % (len(data), len(body))
        body += data
    base = 24 + len(directory) + 1
    total = base + len(body) + 1
    leader = b"%05d" % total + leader[5:12] + b"%05d" % base + leader[17:]
    return leader + directory + b"\x1e" + body + b"\x1d"


def unimarc_gbk(control: str, title: str, author: str = "作者", year: str = "2020") -> bytes:
    """A UNIMARC book record encoded in GBK, as a Huiwen member sends it (leader 9 blank)."""
    general = f"20200101d{year}    em y0chiy0110    ea".encode("ascii")
    return iso2709([
        ("001", control.encode()),
        ("005", b"20240101120000.0"),
        ("100", b"  \x1fa" + general),
        ("200", "1 \x1fa{}\x1ff{}".format(title, author).encode("gbk")),
        ("700", " 0\x1fa{}".format(author).encode("gbk")),
    ])


@pytest.fixture
def zebra(tmp_path: Path):
    """Factory: ``zebra(records, record_type='mrc', **start_zebra kwargs) -> ZebraServer``."""
    zebra_or_skip()
    servers: list[ZebraServer] = []

    def start(records: list[Record] | None = None, record_type: str = "mrc", raw: list[bytes] | None = None,
              **kwargs) -> ZebraServer:
        folder = tmp_path / f"records{next(_counter)}"
        folder.mkdir()
        if raw is not None:
            (folder / "records.mrc").write_bytes(b"".join(raw))
        elif record_type == "xml":
            write_xml(folder / "records.xml", records or [])
        else:
            write_mrc(folder / "records.mrc", records or [])
        server = start_zebra(folder, record_type=record_type, conf_dir=ZEBRA_CONF, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class SilentServer:
    """A TCP server that accepts connections and never answers (the fault a hung ILS produces)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()
