"""A loopback Zebra server (``idzebra-2.0``) serving MARC records over Z39.50 and SRU on one port.

Used by the Z39.50/SRU tests, the ZOOM benchmark and (optionally) the demo: a member ILS that really
speaks Z39.50, loaded from a folder of ISO 2709 (``*.mrc``) or MARCXML (``*.xml``) files.

    server = start_zebra(folder, port=0, record_type="mrc")
    ... server.url (z3950://127.0.0.1:PORT/Default), server.sru_url, server.update(files) ...
    server.stop()

The member configuration (``conf_dir``) is the demo's, ``demo/zebra_conf/``; this module fills in
their placeholders, runs ``zebraidx init/update/commit`` and starts ``zebrasrv -f yazgfs.xml``.
No test imports here.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/idzebra-2.0/modules", "/usr/lib/aarch64-linux-gnu/idzebra-2.0/modules",
               "/usr/lib/idzebra-2.0/modules", "/usr/local/lib/idzebra-2.0/modules")
PQF_PROPERTIES = ("/usr/share/yaz/etc/pqf.properties", "/usr/local/share/yaz/etc/pqf.properties")
INSTALL_HINT = "install it with: apt-get install -y idzebra-2.0 yaz libyaz5 libyaz-dev (or run make install)"


class ZebraError(RuntimeError):
    """Zebra is missing, or indexing / starting the server failed (the message has its output)."""


def missing() -> str | None:
    """Why a Zebra server cannot be started here, or None if it can."""
    for tool in ("zebraidx", "zebrasrv"):
        if shutil.which(tool) is None:
            return f"{tool} not found; {INSTALL_HINT}"
    if _first(MODULE_DIRS) is None:
        return f"no Zebra filter modules in {', '.join(MODULE_DIRS)}; {INSTALL_HINT}"
    if _first(PQF_PROPERTIES) is None:
        return f"no pqf.properties (CQL to PQF) in {', '.join(PQF_PROPERTIES)}; install libyaz-dev"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class ZebraServer:
    """A running ``zebrasrv``: where it listens, how to change its records, how to stop it."""

    work: Path
    host: str
    port: int
    database: str
    record_type: str
    process: subprocess.Popen | None = None
    log: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """The Z39.50 address, as a ``z3950`` source's ``url``."""
        return f"z3950://{self.host}:{self.port}/{self.database}"

    @property
    def sru_url(self) -> str:
        """The SRU address (same port), as an ``sru`` source's ``url``."""
        return f"http://{self.host}:{self.port}/{self.database}"

    def update(self, *files: Path) -> None:
        """Add or replace (by 001) the records in ``files`` while the server runs."""
        self._index("update", files)

    def delete(self, *files: Path) -> None:
        """Delete the records (matched by 001) that ``files`` hold."""
        self._index("delete", files)

    def _index(self, action: str, files) -> None:
        zebraidx(self.work, action, *[str(f) for f in files])
        zebraidx(self.work, "commit")

    def stop(self) -> None:
        if self._stopped or self.process is None:
            return
        self._stopped = True
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_zebra(folder: Path | str, port: int = 0, record_type: str = "mrc", *, conf_dir: Path | str, work: Path | str | None = None,
                host: str = "127.0.0.1", database: str = "Default", record_charset: str = "utf-8",
                query_encoding: str = "utf-8", source_charset: str | None = None,
                startup_timeout: float = 15.0) -> ZebraServer:
    """Index every ``*.{record_type}`` file of ``folder`` and start ``zebrasrv`` on ``host:port``.

    ``record_type`` is ``mrc`` (ISO 2709) or ``xml`` (MARCXML collections).  ``source_charset='gbk'``
    reads ISO 2709 files in GBK (a Huiwen-like member); ``record_charset`` is the character set
    of the ISO 2709 records the server sends, ``query_encoding`` the one it expects query terms in.
    ``port=0`` picks a free loopback port.  Returns the running server (call ``stop()``).
    """
    why = missing()
    if why:
        raise ZebraError(why)
    if record_type not in ("mrc", "xml"):
        raise ValueError(f"record_type: expected 'mrc' or 'xml'; got {record_type!r}")
    folder, conf_dir = Path(folder).resolve(), Path(conf_dir).resolve()
    work = Path(work) if work is not None else folder.parent / f"zebra-{folder.name}"
    work = work.resolve()
    for sub in ("register", "shadow", "lock", "tmp"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    dom_marc = "dom-marc.xml"
    if source_charset and source_charset.lower().replace("-", "") != "utf8":
        dom_marc = f"dom-marc-{source_charset.lower()}.xml"
        if not (conf_dir / dom_marc).exists():
            raise ZebraError(f"no {dom_marc} in {conf_dir} for source charset {source_charset!r}")
    values = dict(work=work, conf=conf_dir, modules=_first(MODULE_DIRS), dom_marc=dom_marc,
                  query_encoding=query_encoding, host=host, port=port, pqf_properties=_first(PQF_PROPERTIES),
                  record_charset=record_charset)
    for name in ("zebra.cfg", "yazgfs.xml"):
        text = (conf_dir / f"{name}.in").read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{" + key + "}", str(value))
        (work / name).write_text(text, encoding="utf-8")
    files = sorted(folder.glob(f"*.{record_type}"))
    zebraidx(work, "init")
    if files:
        zebraidx(work, "update", *[str(f) for f in files])
        zebraidx(work, "commit")
    return launch(work, host, port, database, record_type, startup_timeout)


def launch(work: Path, host: str, port: int, database: str = "Default", record_type: str = "xml",
           startup_timeout: float = 15.0) -> ZebraServer:
    """Start ``zebrasrv -f work/yazgfs.xml`` (already written, listening on ``host:port``) and wait for it."""
    log = work / "zebrasrv.log"
    process = subprocess.Popen(["zebrasrv", "-f", str(work / "yazgfs.xml"), "-l", str(log)], cwd=work,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = ZebraServer(work=work, host=host, port=port, database=database, record_type=record_type,
                         process=process, log=log)
    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None:
            raise ZebraError(f"zebrasrv exited with status {process.returncode}: {_tail(log)}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise ZebraError(f"zebrasrv did not listen on {host}:{port} within {startup_timeout:g} s: "
                                 f"{_tail(log)}") from None
            time.sleep(0.05)


def zebraidx(work: Path, *args: str) -> None:
    """Run ``zebraidx -c work/zebra.cfg ARGS``; raise :class:`ZebraError` with its output when it fails."""
    cmd = ["zebraidx", "-c", str(work / "zebra.cfg"), *args]
    result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, errors="replace",
                            env={**os.environ, "LC_ALL": "C"})
    output = result.stdout + result.stderr
    if result.returncode != 0 or "[fatal]" in output or "No such record type" in output:
        raise ZebraError(f"{' '.join(cmd[:4])} … {args[-1] if args else ''} failed ({result.returncode}): "
                         f"{output[-2000:]}")


def module_dir() -> str | None:
    """Where this machine keeps Zebra's filter modules (Debian's path differs from upstream's)."""
    return _first(MODULE_DIRS)


def _first(paths) -> str | None:
    return next((p for p in paths if Path(p).exists()), None)


def _tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"
