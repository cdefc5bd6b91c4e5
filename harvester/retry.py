"""The one retry policy of every harvest client: what is worth another try, and how long to wait.

Like scrapy's retry middleware, the HTTP statuses worth retrying are listed once
(:data:`RETRY_STATUS`: the server is busy, throttling or briefly broken); refused, dropped or
timed-out connections are retried too (:data:`TRANSIENT`), which sickle does not do.  Waits double
from ``backoff``, a server's ``Retry-After`` (seconds or an HTTP date) is honoured, and no wait is
longer than ``max_wait``.  The OAI-PMH client retries its requests with it and the Z39.50/SRU
harvest reconnects with it.
"""
from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime, timezone

import requests

#: HTTP statuses worth another try.
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: Connection failures worth another try (ZOOM's connect and timeout errors are ConnectionError / TimeoutError).
TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: an integer or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` further tries after the first; waits of ``backoff`` doubling, capped at ``max_wait``."""

    max_retries: int = 3
    backoff: float = 1.0
    max_wait: float = 300.0

    def retryable(self, status: int) -> bool:
        """Is an HTTP response with this status worth another try?"""
        return status in RETRY_STATUS

    def wait(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (0 for the first), honouring ``Retry-After``."""
        asked = retry_after_seconds(retry_after)
        if asked is not None:
            return min(asked, self.max_wait)
        return min(self.backoff * (2 ** attempt), self.max_wait)
