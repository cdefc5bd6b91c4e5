"""Where the app says it lives: the public base URL, trusted hosts, the reverse proxies in front of it.

Every absolute URL the app writes — canonical links, JSON-LD, OpenURL ``rft_id``, COinS, OAI-PMH
``baseURL``, API links, sign-on callbacks — comes from ``url_for(..., _external=True)`` or
``request.host_url``, i.e. from the request's scheme and ``Host``.  A visitor chooses that header, so:

* with ``BASE_URL`` set (``UNIONCAT_BASE_URL``, else the consortium's ``base_url`` in sources.yaml) the
  request's scheme, host and path prefix are replaced by the configured ones before Flask sees the
  request (:class:`BaseURL`): whatever the Host said, every URL names the configured site;
* without it, only a ``Host`` in ``TRUSTED_HOSTS`` is answered (Flask's own check: anything else is a 400);
  with neither configured only the loopback names are trusted, which is what a development server needs;
* ``TRUSTED_PROXIES`` (``UNIONCAT_TRUSTED_PROXIES``) is how many reverse proxies stand in front of the app:
  werkzeug's ``ProxyFix`` then takes the client's address and scheme from that many ``X-Forwarded-For`` /
  ``X-Forwarded-Proto`` entries — the standard handling, nothing parsed here — so rate limits and sign-in
  lockout see each client, not the proxy.  With 0 (the default) forwarded headers are ignored: a visitor
  cannot pick the address the limits see.

:func:`check_serving` refuses to serve on a non-loopback address without a configured secret key and a
base URL or trusted hosts.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


class BaseURL:
    """WSGI middleware: the request's scheme, ``Host`` and script root become those of ``base_url``."""

    def __init__(self, app, base_url: str):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"BASE_URL {base_url!r}: expected an http(s) URL such as https://union.example.edu.cn/")
        self.app = app
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.prefix = parts.path.rstrip("/")

    def __call__(self, environ, start_response):
        environ["wsgi.url_scheme"] = self.scheme
        environ["HTTP_HOST"] = self.host
        environ.pop("HTTP_X_FORWARDED_HOST", None)
        if self.prefix:
            environ["SCRIPT_NAME"] = self.prefix
        return self.app(environ, start_response)


def hosts(value: Iterable[str] | str | None) -> list[str]:
    """Configured host names (a list, or one comma-separated string) without ports or blanks."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def base_url(app: Flask) -> str | None:
    """The configured public URL: ``BASE_URL``, else the consortium's ``base_url`` in sources.yaml."""
    configured = app.config.get("BASE_URL") or app.extensions["unioncat"].sources.consortium.base_url
    return configured.rstrip("/") + "/" if configured else None


def init_app(app: Flask) -> None:
    """Wrap the WSGI app (proxy handling outside, base URL inside) and set Flask's ``TRUSTED_HOSTS``."""
    base = base_url(app)
    app.config["BASE_URL"] = base
    trusted = hosts(app.config.get("TRUSTED_HOSTS"))
    if base:
        app.wsgi_app = BaseURL(app.wsgi_app, base)
        trusted.append(urlsplit(base).hostname or "")
    app.config["TRUSTED_HOSTS"] = trusted or list(LOOPBACK_HOSTS)
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies < 0:
        raise ValueError(f"TRUSTED_PROXIES: expected 0 or more reverse proxies, got {proxies}")
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)


def waitress_options(app: Flask) -> dict:
    """What waitress must be told so ``ProxyFix`` sees the forwarded headers (waitress drops them by default).

    With no trusted proxies waitress keeps dropping them: one more guard against a visitor's own
    ``X-Forwarded-For``.
    """
    return {"clear_untrusted_proxy_headers": False} if app.config.get("TRUSTED_PROXIES") else {}


def is_loopback(host: str) -> bool:
    """Is ``host`` (as given to ``serve --host``) reachable from this machine only?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serving(app: Flask, host: str) -> None:
    """Refuse (ValueError naming the setting) to serve beyond loopback with development defaults.

    Off loopback a random per-process secret key would make OAI-PMH tokens and sessions end at each
    restart and differ between processes, and without a base URL or trusted hosts only loopback
    names would be answered.
    """
    if is_loopback(host):
        return
    if app.extensions.get("unioncat_random_secret"):
        raise ValueError(f"serving on {host}: set UNIONCAT_SECRET_KEY (a long random string, the same for every "
                         "web process) — it signs sessions and OAI-PMH resumption tokens")
    if not app.config.get("BASE_URL") and app.config["TRUSTED_HOSTS"] == list(LOOPBACK_HOSTS):
        raise ValueError(f"serving on {host}: set UNIONCAT_BASE_URL (the catalogue's public address, e.g. "
                         "https://union.example.edu.cn/) or UNIONCAT_TRUSTED_HOSTS (the host names it answers to)")
