"""What one visitor may ask of the app: URL length, search filters, and per-client request rates.

A request is refused early and plainly — 400 with what the limit is, or 429 with ``Retry-After`` —
before it can cost a search or a page render.  Limits are per client: the address werkzeug's
``ProxyFix`` gives behind ``TRUSTED_PROXIES`` reverse proxies (:mod:`web.origin`), so clients behind
one proxy get a bucket each instead of sharing the proxy's.

Config keys (all per process; several processes multiply the rates):

``MAX_URL`` (default 4096)
    characters of path and query string; a longer request is a 400
``MAX_FILTERS`` (default 30)
    ``f=`` facet filters on one search; more is a 400 (rendering every filter's links costs
    filters × facet values, so 3,000 filters used to hold a server thread for a minute)
``SEARCH_RATE`` / ``SEARCH_BURST`` (default 5 per second, burst 30)
    the search page and its JSON twin, per client
``SIGNIN_RATE`` / ``SIGNIN_BURST`` (default 1 every 2 seconds, burst 10)
    staff sign-in posts, per client (on top of the per-account lockout of :mod:`web.accounts`)

The JSON API has its own limits (``API_RATE``… in :mod:`web.api`), with the same client address.
"""
from __future__ import annotations

from flask import Flask, current_app, request

from .access import RateLimiter, retry_after
from .errors import RateLimited, RequestTooLarge

DEFAULTS = {"MAX_URL": 4096, "MAX_FILTERS": 30, "SEARCH_RATE": 5.0, "SEARCH_BURST": 30,
            "SIGNIN_RATE": 0.5, "SIGNIN_BURST": 10, "SUGGEST_RATE": 20.0, "SUGGEST_BURST": 60}

#: endpoint → (the limit's name, the config keys of its rate and burst); GET-only unless the method is named
LIMITED = {
    "search.search": ("search", "SEARCH_RATE", "SEARCH_BURST"),
    "search.home": ("search", "SEARCH_RATE", "SEARCH_BURST"),
    "search.suggest": ("suggest", "SUGGEST_RATE", "SUGGEST_BURST"),   # typing asks often: its own, larger bucket
    ("staff.login", "POST"): ("signin", "SIGNIN_RATE", "SIGNIN_BURST"),
}


def client_address() -> str:
    """The client as the rate limits see it (after ``ProxyFix``; never a forwarded header read here)."""
    return request.remote_addr or "?"


def limiter() -> RateLimiter:
    return current_app.extensions["unioncat_limiter"]


def spend(name: str, rate: float, burst: int, client: str | None = None) -> None:
    """Take one request from ``client``'s bucket for ``name``; :class:`RateLimited` when it is empty."""
    wait = limiter().take(f"{name}:{client or client_address()}", rate, burst)
    if wait:
        raise RateLimited(rate, burst, retry_after(wait))


def check_filters(filters: list[str]) -> None:
    """At most ``MAX_FILTERS`` filters on one search."""
    cap = int(current_app.config["MAX_FILTERS"])
    if len(filters) > cap:
        raise RequestTooLarge("filters", cap, len(filters))


def _check_request() -> None:
    cap = int(current_app.config["MAX_URL"])
    size = len(request.environ.get("PATH_INFO", "")) + len(request.environ.get("QUERY_STRING", ""))
    if size > cap:
        raise RequestTooLarge("url", cap, size)
    key = request.endpoint if request.method in ("GET", "HEAD") else (request.endpoint, request.method)
    limit = LIMITED.get(key)
    if limit is not None:
        name, rate, burst = limit
        spend(name, float(current_app.config[rate]), int(current_app.config[burst]))


def init_app(app: Flask) -> None:
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.extensions["unioncat_limiter"] = RateLimiter()
    app.before_request(_check_request)
