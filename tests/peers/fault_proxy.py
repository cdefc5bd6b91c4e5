"""A fault-injecting HTTP proxy in front of a real OAI-PMH member, for the harvest fault suite.

The member (``demo.oai_member`` on the ``oaipmh`` server) is healthy; this loopback proxy forwards
every request to it and, for the requests a fault matches, answers badly instead — the way members
misbehave in the field and a real server won't on demand: 503 with ``Retry-After``, 500, a
connection reset half-way through the body, a truncated XML page, an HTML login page served with
200, a body dripped one byte at a time, a 200 MB page (generated as it is sent, never held), a
resumption token handed back twice, a token the member has forgotten (``badResumptionToken``), a
record repeated on the next page.  Each fault fires ``times`` times, then the proxy passes through,
so every case can end with the member's records in the store.
"""
from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KINDS = ("503", "500", "reset", "truncated", "html", "drip", "huge", "repeat_token", "expired_token",
         "duplicate")
_RECORD = re.compile(rb"<record>.*?</record>", re.S)
_TOKEN = re.compile(rb"<resumptionToken[^>]*>([^<]*)</resumptionToken>")
_BAD_TOKEN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
              b'<responseDate>2024-01-01T00:00:00Z</responseDate><request verb="ListRecords">x</request>'
              b'<error code="badResumptionToken">The token has expired</error></OAI-PMH>')
_HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>Password</form></body></html>"


@dataclass
class Fault:
    """``kind`` for the next ``times`` ListRecords requests that carry a resumption token (mid-list),
    or any ListRecords request when ``mid_list`` is false."""

    kind: str
    times: int = 1
    mid_list: bool = True
    huge_bytes: int = 200 * 2**20
    drip_seconds: float = 0.5
    fired: int = 0

    def matches(self, params: dict[str, str]) -> bool:
        return (self.fired < self.times and params.get("verb") == "ListRecords"
                and (not self.mid_list or "resumptionToken" in params))


@dataclass
class FaultProxy:
    """``url`` forwards to ``upstream``; :meth:`inject` arms a fault; ``log`` lists (params, fault or None);
    ``delay`` slows every page down."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[dict[str, str], str | None]] = field(default_factory=list)
    huge_sent: int = 0
    #: seconds to wait before answering each ListRecords request (a slow member; 0: at once)
    delay: float = 0.0

    def __post_init__(self) -> None:
        self._up = urlsplit(self.upstream)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._lock = threading.Lock()
        self._previous: dict[str, bytes] = {}  # the last page answered, for repeat_token and duplicate
        threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._up.path}"

    def inject(self, kind: str, **kw: object) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(KINDS)}")
        fault = Fault(kind, **kw)  # type: ignore[arg-type]
        with self._lock:
            self.faults.append(fault)
        return fault

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take(self, params: dict[str, str]) -> Fault | None:
        with self._lock:
            fault = next((f for f in self.faults if f.matches(params)), None)
            if fault is not None:
                fault.fired += 1
            self.log.append((params, fault.kind if fault else None))
            return fault

    def _fetch(self, path: str) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection(self._up.hostname, self._up.port, timeout=60)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read(), resp.getheader("Content-Type", "text/xml; charset=utf-8")
        finally:
            conn.close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                fault = proxy._take(params)
                if params.get("verb") == "ListRecords" and proxy.delay:
                    time.sleep(proxy.delay)
                if fault is not None and fault.kind in ("503", "500", "html", "huge", "expired_token"):
                    return self._synthetic(fault)
                status, body, kind = proxy._fetch(self.path)
                if fault is not None:
                    body = self._mangle(fault, body)
                    if body is None:
                        return
                if params.get("verb") == "ListRecords" and status == 200:
                    proxy._previous["page"] = body
                self._send(status, body, kind)

            def _synthetic(self, fault: Fault) -> None:
                if fault.kind == "503":
                    self._send(503, b"busy", "text/plain", [("Retry-After", "1")])
                elif fault.kind == "500":
                    self._send(500, b"Internal Server Error", "text/plain")
                elif fault.kind == "html":
                    self._send(200, _HTML, "text/html; charset=utf-8")
                elif fault.kind == "expired_token":
                    self._send(200, _BAD_TOKEN, "text/xml; charset=utf-8")
                else:
                    self._huge(fault.huge_bytes)

            def _mangle(self, fault: Fault, body: bytes) -> bytes | None:
                """The faulty body, or None when the fault already answered (reset, drip)."""
                if fault.kind == "truncated":
                    return body[: len(body) // 2]
                if fault.kind == "repeat_token" and "page" in proxy._previous:
                    return proxy._previous["page"]  # the last page again, with the token just used
                if fault.kind == "duplicate" and "page" in proxy._previous:
                    first = _RECORD.search(proxy._previous["page"])
                    return body.replace(b"<record>", first.group(0) + b"<record>", 1) if first else body
                if fault.kind == "reset":
                    self._reset(body)
                elif fault.kind == "drip":
                    self._drip(body, fault.drip_seconds)
                else:
                    return body
                return None

            def _send(self, status: int, body: bytes, kind: str, headers: list[tuple[str, str]] = ()) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _reset(self, body: bytes) -> None:
                """Half the promised body, then a TCP reset (SO_LINGER 0)."""
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def _drip(self, body: bytes, every: float) -> None:
                """One byte every ``every`` seconds until the client gives up (or the body ends)."""
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.close_connection = True
                try:
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(every)
                except OSError:
                    pass  # the client hung up: what the deadline is for

            def _huge(self, size: int) -> None:
                """A ``size``-byte page in HTTP chunks, generated as it goes (no Content-Length to refuse it by)."""
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.close_connection = True
                head = b'<?xml version="1.0"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><!-- '
                block = b"x" * (1 << 20)
                try:
                    self._chunk(head)
                    sent = len(head)
                    while sent < size:
                        self._chunk(block)
                        sent += len(block)
                        proxy.huge_sent = sent
                    self._chunk(b" --></OAI-PMH>")
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client stopped reading at its cap

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        return Handler
