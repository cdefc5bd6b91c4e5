"""API keys, a per-client rate limit and CORS for the machine interfaces (JSON API, exports).

Keys come in through config (``API_KEYS``: the keys themselves, or
``sha256:<hex>`` digests so the configuration need not hold them); only
their SHA-256 digests are kept and compared in constant time.  A client
sends its key as ``X-API-Key`` or ``Authorization: Bearer <key>``.

The rate limit is an in-process token bucket per client — the key's digest
for key holders, the remote address for everyone else — with separate rates
(``API_RATE``/``API_BURST`` anonymous, ``API_KEY_RATE``/``API_KEY_BURST`` for
keys).  Over the limit a client gets 429 with ``Retry-After``.  In-process
means per worker process: behind several processes the effective rate is
the sum, which the defaults allow for.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_digests(keys: Iterable[str] | str | None) -> tuple[str, ...]:
    """Configured keys (a list, or one comma-separated string) as SHA-256 digests."""
    if not keys:
        return ()
    if isinstance(keys, str):
        keys = keys.split(",")
    out = []
    for key in keys:
        key = key.strip()
        if key:
            out.append(key[7:].lower() if key.startswith("sha256:") else digest(key))
    return tuple(out)


def known_key(given: str, digests: tuple[str, ...]) -> str | None:
    """The digest of ``given`` if it is a configured key (checking every digest, in constant time each)."""
    mine = digest(given)
    found = None
    for d in digests:
        if hmac.compare_digest(mine, d):
            found = d
    return found


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by client; the least recently seen are forgotten past ``max_clients``."""

    def __init__(self, max_clients: int = 10_000, clock=time.monotonic):
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_clients
        self._clock = clock

    def take(self, client: str, rate: float, burst: int) -> float:
        """Spend one token; 0 if allowed, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(client, None) or _Bucket(float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            self._buckets[client] = bucket
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / rate if rate > 0 else 3600.0


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def cors_origin(origin: str | None, allowed: Iterable[str] | str | None) -> str | None:
    """The origin to echo in ``Access-Control-Allow-Origin``, or None when it is not allowed."""
    if not origin or not allowed:
        return None
    if isinstance(allowed, str):
        allowed = [a.strip() for a in allowed.split(",")]
    allowed = [a.rstrip("/") for a in allowed if a]
    if "*" in allowed:
        return "*"
    return origin if origin.rstrip("/") in allowed else None
