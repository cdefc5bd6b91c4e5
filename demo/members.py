"""The demo's served members (OAI-PMH and Zebra): their ports, their consortium file, their lifetime.

Why a module of its own: a member server left over from an earlier demo (one
killed with SIGKILL, or still running in another shell) would otherwise be
harvested silently in place of this demo's, with other records.  So the
members get free ports unless told otherwise, the build folder keeps a pid file
while they run, the consortium file the demo harvests is written with the ports
they really got, and they stop with the demo however it ends (Ctrl-C, SIGTERM,
an error).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harvester.stores.locks import process_alive
from publish.zebra_server import ZebraError, ZebraServer

from .consortium import serve_oai_member, serve_zebra_member

PID_FILE = "members.json"
SOURCES_TEMPLATE = Path(__file__).resolve().parent / "sources.yaml"
LOOPBACK = "127.0.0.1"


class DemoError(Exception):
    """The demo cannot start as asked; the message says why and what to do instead."""


@dataclass(frozen=True)
class Members:
    """Where this demo's members listen (``zebra`` is None when Zebra is not installed)."""

    oai_url: str
    zebra: ZebraServer | None

    @property
    def oai_port(self) -> int:
        return urlsplit(self.oai_url).port or 0


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (binds like the servers do, with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def check_leftovers(build: Path) -> None:
    """Raise DemoError when an earlier demo's members (per the pid file in ``build``) still run."""
    path = Path(build) / PID_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    pids = info.get("pids", {}) if isinstance(info, dict) else {}
    alive = {name: pid for name, pid in pids.items() if process_alive(pid) and pid != os.getpid()}
    if alive:
        running = ", ".join(f"{name} (pid {pid})" for name, pid in alive.items())
        raise DemoError(f"an earlier demo's members are still running from {build}: {running}, "
                        f"ports {info.get('ports')}; stop them (kill {' '.join(map(str, alive.values()))}) "
                        "or give this demo another --data")
    path.unlink(missing_ok=True)


def preflight(build: Path, oai_port: int = 0, zebra_port: int = 0) -> None:
    """Raise DemoError when the members cannot start as asked: a leftover demo, or a given port in use.

    Checked before anything is built, and again just before the members start.
    """
    check_leftovers(build)
    for what, port, flag in (("OAI-PMH", oai_port, "--oai-port"), ("Z39.50", zebra_port, "--zebra-port")):
        if port and port_in_use(LOOPBACK, port):
            raise DemoError(f"port {port} for the demo's {what} member is in use (an earlier demo, or another "
                            f"server): choose another with {flag}, or leave it out for a free port")


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """A plain ``kill`` ends the demo like Ctrl-C does: through every ``finally`` that stops a member."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def running_members(build: Path, oai_port: int = 0, zebra_port: int = 0,
                    log: Callable[[str], None] = print) -> Iterator[Members]:
    """Serve the OAI-PMH and Z39.50 members from ``build`` until the block ends (port 0: a free one)."""
    build = Path(build)
    preflight(build, oai_port, zebra_port)
    with _stop_on_sigterm():
        url, stop_oai = serve_oai_member(build, port=oai_port)
        zebra = None
        pid_file = build / PID_FILE
        try:
            log(f"demo OAI-PMH member serving at {url}")
            try:
                zebra = serve_zebra_member(build, port=zebra_port)
                log(f"demo Z39.50 member (Zebra) serving at {zebra.url}")
            except ZebraError as exc:
                log(f"note: the Z39.50 member is left out of this demo run: {exc}")
            members = Members(url, zebra)
            pids = {"demo": os.getpid(), **({"zebrasrv": zebra.process.pid} if zebra and zebra.process else {})}
            ports = {"oai": members.oai_port, **({"z3950": zebra.port} if zebra else {})}
            pid_file.write_text(json.dumps({"pids": pids, "ports": ports}), encoding="utf-8")
            yield members
        finally:
            stop_oai()
            if zebra is not None:
                zebra.stop()
            pid_file.unlink(missing_ok=True)


def write_sources(build: Path, members: Members) -> Path:
    """Write ``build/sources.yaml``: the demo consortium with the ports its members really got.

    Without Zebra the Z39.50 member keeps a placeholder port; the demo leaves it out of the harvest.
    """
    zebra_port = members.zebra.port if members.zebra else 210
    text = SOURCES_TEMPLATE.read_text(encoding="utf-8")
    text = text.replace("{oai_port}", str(members.oai_port)).replace("{zebra_port}", str(zebra_port))
    path = Path(build) / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return path
