"""The catalogue's web app: search, record pages with holdings and links, staff status.

``create_app(config)`` is the only entry point.  Config keys:

``SOURCES``
    the consortium file: a :class:`consortium.config.SourcesFile`, or a path to ``sources.yaml`` (required)
``DB_ENGINE`` / ``DATABASE_URL``
    a SQLAlchemy engine, or a URL to make one (one of them required), of a database already at the
    newest schema (``unioncat.schema.ensure_schema``); the app never creates tables
``SEARCH_BACKEND`` / ``INDEX_PATH``
    a :class:`index.backend.SearchBackend`, or a zero-argument factory called on first use;
    or the directory of an embedded index (one of them required)
``SECRET_KEY``
    signs the session cookie and OAI-PMH resumption tokens; without one a random key is made (sessions
    and tokens end at restart) — :func:`web.origin.check_serving` refuses that off loopback
``BASE_URL``, ``TRUSTED_HOSTS``, ``TRUSTED_PROXIES``
    the public address, the Host names answered without one, the reverse proxies in front: :mod:`web.origin`
``SESSION_IDLE_MINUTES``, ``SESSION_MAX_HOURS``, ``SECURE_COOKIES``
    staff session timeouts, ``Secure`` cookies and HSTS: :mod:`web.sessions`
``MAX_URL``, ``MAX_FILTERS``, ``SEARCH_RATE``/``SEARCH_BURST``, ``SIGNIN_RATE``/``SIGNIN_BURST``
    request caps and per-client rate limits: :mod:`web.limits`
``STAFF_PASSWORD``
    bootstrap password of the built-in `admin` staff account (web.accounts); without it and without stored
    accounts the staff area is closed
``PAGE_SIZE``
    results per page (default 20)
``SECRETS``
    sign-on client secrets: environment variable name → value, for the ``client_secret_env``
    names in sources.yaml (the CLI passes them with :func:`web.auth.secrets_from`)
``JOBS``
    the job runner staff actions go through (a :class:`web.actions.JobRunner`); unset: actions refused
``ALERT_FAILURES``
    failed harvests in a row that make a member's alert banner (default 3)
``STATUS_CACHE_SECONDS``
    how long the staff overview reuses its run figures while no run started or ended (default 15; 0: never)
``USAGE_STATISTICS``, ``USAGE_FLUSH_SECONDS``
    count reader events for the usage statistics (default on), written every 5 s (see :mod:`web.usage`)
``OAI_*``, ``API_*``, ``CORS_ORIGINS``
    the OAI-PMH provider's and the JSON API's settings: see :mod:`web.oai` and :mod:`web.api`
"""
from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from consortium.config import SourcesFile
from consortium.load import load_sources
from storage.db import make_engine

from . import csrf, errors, i18n, limits, origin, present, sessions
from .context import Services

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "SOURCES": None,
    "DB_ENGINE": None,
    "DATABASE_URL": None,
    "SEARCH_BACKEND": None,
    "INDEX_PATH": None,
    "SECRET_KEY": None,
    "STAFF_PASSWORD": None,
    "PAGE_SIZE": 20,
    "SECRETS": {},
    "JOBS": None,
    "ALERT_FAILURES": 3,
    "STATUS_CACHE_SECONDS": 15,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "JSON_SORT_KEYS": False,
}


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.update(config or {})
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        app.extensions["unioncat_random_secret"] = True
        log.info("no SECRET_KEY configured: using a random one; sessions and OAI-PMH resumption tokens end "
                 "when the app restarts")
    app.extensions["unioncat"] = Services(sources=_sources(app.config), engine=_engine(app.config),
                                          backend_config=_backend(app.config))
    origin.init_app(app)
    sessions.init_app(app)
    app.jinja_env.autoescape = True  # every template, whatever its extension
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True
    app.json.ensure_ascii = False     # readable CJK in the JSON twins
    app.json.sort_keys = False
    present.init_app(app)
    i18n.init_app(app)
    limits.init_app(app)
    csrf.init_app(app)
    errors.register(app)

    from . import api, auth, authors, basket, go, ledger, oai, overlap, reader, record, search, staff, staff_dedupe, usage
    from . import browse, cite
    app.register_blueprint(search.bp)
    app.register_blueprint(browse.bp)
    app.register_blueprint(cite.bp)
    app.register_blueprint(record.bp)
    app.register_blueprint(authors.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(staff_dedupe.bp)
    app.register_blueprint(overlap.bp)
    app.register_blueprint(ledger.bp)
    app.register_blueprint(go.bp)
    app.register_blueprint(oai.bp)
    app.register_blueprint(api.bp)
    reader.init_app(app)
    auth.init_app(app)
    basket.init_app(app)
    staff.init_app(app)
    usage.init_app(app)
    from . import metrics
    metrics.init_app(app)
    app.after_request(_security_headers)
    return app


def _sources(config) -> SourcesFile:
    value = config["SOURCES"]
    if isinstance(value, SourcesFile):
        return value
    if isinstance(value, (str, Path)):
        return load_sources(value)
    raise ValueError("create_app: SOURCES must be a consortium.config.SourcesFile or the path of sources.yaml")


def _engine(config):
    if config["DB_ENGINE"] is not None:
        return config["DB_ENGINE"]
    if config["DATABASE_URL"]:
        return make_engine(config["DATABASE_URL"])
    raise ValueError("create_app: give DB_ENGINE (an SQLAlchemy engine) or DATABASE_URL")


def _backend(config):
    if config["SEARCH_BACKEND"] is not None:
        value = config["SEARCH_BACKEND"]
        if not hasattr(value, "search") and not callable(value):
            raise ValueError("create_app: SEARCH_BACKEND must be a SearchBackend or a factory returning one")
        return value
    if config["INDEX_PATH"]:
        path = Path(config["INDEX_PATH"])

        def open_index():
            from index.embedded import EmbeddedIndex
            return EmbeddedIndex(path)
        return open_index
    raise ValueError("create_app: give SEARCH_BACKEND (a SearchBackend or factory) or INDEX_PATH")


def _security_headers(response):
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    return response
