"""An HTTP pass-through in front of the real Elasticsearch node, to inject the faults a healthy
node won't produce on demand: HTTP 429 on bulk requests, and the node going away and coming back.

Everything else is forwarded unchanged, headers included (the client insists on
``X-Elastic-Product``), so the backend under test talks to the real cluster.
"""
from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class EsProxy:
    """``url`` forwards to ``upstream``; ``reject_bulk(n)``, ``down()`` and ``up()`` inject faults."""

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.bulk_rejections = 0
        self.bulk_requests = 0
        self._down = False
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reject_bulk(self, times: int) -> None:
        self.bulk_rejections = times

    def up(self) -> None:
        self._down = False
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
            self._server.daemon_threads = True
            self.port = self._server.server_address[1]
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and drop the requests of open ones, like a node that died."""
        self._down = True
        if self._server is not None:
            server, self._server = self._server, None
            threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()

    def close(self) -> None:
        self.down()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy._down:
                    self.close_connection = True
                    self.connection.close()
                    return
                if "_bulk" in self.path:
                    proxy.bulk_requests += 1
                    if proxy.bulk_rejections > 0:
                        proxy.bulk_rejections -= 1
                        self._reply(429, b'{"error":{"type":"es_rejected_execution_exception",'
                                         b'"reason":"rejected by the test proxy"},"status":429}',
                                    {"X-Elastic-Product": "Elasticsearch", "Content-Type": "application/json"})
                        return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"host"}}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self._reply(resp.status, data, {k: v for k, v in resp.getheaders() if k.lower() not in _HOP})
                finally:
                    conn.close()

            def _reply(self, status: int, data: bytes, headers: dict) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        return Handler
