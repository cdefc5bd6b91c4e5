"""The OAI-PMH client's HTTP floor: its two transport errors, what makes a try worth another, and a
response body read under a whole-response deadline and a size cap.

``requests``' ``timeout`` bounds each socket read, not a response: a member dripping one byte every
half second never trips it and held a harvest for over 90 s with ``timeout: 5``; and
``response.content`` holds a page of any size (a 220 MB page took the harvester to 845 MB).
:func:`read_body` streams the body with ``read1`` (which returns whatever has arrived instead of
waiting for a full buffer), so the deadline is checked between arrivals and no more than the cap
is ever held.
"""
from __future__ import annotations

import re
import time

import requests
import urllib3

from ..errors import HarvestError
from ..retry import TRANSIENT

_CHUNK = 64 * 1024


class TransportError(HarvestError):
    """The repository could not be reached or kept failing at the HTTP level."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"{url}: {reason}")


class BadResponse(HarvestError):
    """The repository answered, but not with usable OAI-PMH."""


class Retryable(Exception):
    """A failed try worth another: the error to raise when the tries run out, and the server's Retry-After."""

    def __init__(self, error: TransportError | BadResponse, retry_after: str | None = None):
        super().__init__(str(error))
        self.error, self.retry_after = error, retry_after

    @property
    def problem(self) -> str:
        return self.error.reason if isinstance(self.error, TransportError) else str(self.error)

    def gave_up(self, attempts: int) -> HarvestError:
        """The error to stop the harvest with, saying how often it was tried."""
        suffix = f" (gave up after {attempts} attempt{'s' if attempts > 1 else ''})"
        if isinstance(self.error, TransportError):
            return TransportError(self.error.url, self.error.reason + suffix)
        return type(self.error)(str(self.error) + suffix)


def read_body(response: requests.Response, url: str, started: float, deadline: float, max_bytes: int) -> bytes:
    """The whole body of a streamed response: at most ``max_bytes`` held, none of it read after
    ``deadline`` seconds from ``started`` (a ``time.monotonic()``); either limit, or a connection
    dropped mid-body, raises :class:`Retryable`."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise Retryable(BadResponse(f"{url}: response of {int(declared):,} bytes is over the page size cap "
                                    f"({max_bytes:,} bytes; the source's max_page_mb)"))
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() - started > deadline:
                raise Retryable(TransportError(url, f"no complete response within the {deadline:g} s deadline "
                                                    f"({size:,} bytes received; the source's deadline)"))
            chunk = response.raw.read1(_CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise Retryable(BadResponse(f"{url}: response over the page size cap ({max_bytes:,} bytes; "
                                            "the source's max_page_mb); stopped reading it"))
            chunks.append(chunk)
    except TRANSIENT as exc:
        raise Retryable(TransportError(url, describe(exc))) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Retryable(TransportError(url, f"{type(exc).__name__}: {exc}")) from None
    return b"".join(chunks)


def describe(exc: Exception) -> str:
    """A one-line reason for a requests exception, without urllib3's object reprs."""
    inner = exc.args[0] if exc.args else exc
    text = str(getattr(inner, "reason", None) or inner)
    match = re.search(r"\[Errno -?\d+\][^'\")]*|[Rr]ead timed out[^'\")]*|timed out", text)
    return f"{type(exc).__name__}: {match.group(0).strip() if match else text}"
