"""One readable line for a harvest or probe error, for staff pages listing 130 members.

The stored message stays as it came (requests/urllib3, YAZ, the OAI client); the pages show
``plain_error(message)`` — "name not found: opac.nju.edu.cn", "connection refused: 10.0.0.5:8080",
"HTTP 503 after 3 tries" — with the raw text one click away.  Unrecognised messages keep their first
line, shortened.
"""
from __future__ import annotations

import re

LIMIT = 120

_HOST = re.compile(r"host='([^']+)'(?:, port=(\d+))?")
_URL_HOST = re.compile(r"(?:https?|z3950|tcp)://([^/\s:'\"]+)(?::(\d+))?")
_NAME = re.compile(r"NameResolutionError|Name or service not known|nodename nor servname|getaddrinfo failed|"
                   r"No address associated|Temporary failure in name resolution|Failed to resolve", re.I)
_REFUSED = re.compile(r"Connection refused|Errno 111|ConnectionRefused|Connect failed", re.I)
_TIMEOUT = re.compile(r"timed out|Timeout", re.I)
_TLS = re.compile(r"CERTIFICATE_VERIFY_FAILED|SSLError|certificate verify failed", re.I)
_RESET = re.compile(r"Connection reset|RemoteDisconnected|Connection aborted", re.I)
_HTTP_TRIES = re.compile(r"HTTP (\d{3})[^()]*\(gave up after (\d+) attempts?\)")
_HTTP = re.compile(r"\bHTTP (\d{3})\b")


def plain_error(message: str | None) -> str:
    """The one line a person reads first; ``""`` for no message."""
    if not message:
        return ""
    text = str(message)
    where = _where(text)
    for pattern, words in ((_NAME, "name not found"), (_TLS, "TLS certificate not trusted"),
                           (_REFUSED, "connection refused"), (_RESET, "connection dropped"),
                           (_TIMEOUT, "no answer in time")):
        if pattern.search(text):
            return f"{words}: {where}" if where else words
    tries = _HTTP_TRIES.search(text)
    if tries:
        return f"HTTP {tries.group(1)} after {tries.group(2)} tries" + (f": {where}" if where else "")
    status = _HTTP.search(text)
    if status and len(text) > LIMIT:
        return f"HTTP {status.group(1)}" + (f": {where}" if where else "")
    first = text.strip().splitlines()[0] if text.strip() else text
    return first if len(first) <= LIMIT else first[:LIMIT - 1] + "…"


def _where(text: str) -> str:
    """``host`` or ``host:port`` named by the message (urllib3's host='…', or the first URL)."""
    named = _HOST.search(text) or _URL_HOST.search(text)
    if not named:
        return ""
    host, port = named.group(1), named.group(2)
    return f"{host}:{port}" if port and port not in ("80", "443") else host
