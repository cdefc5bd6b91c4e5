"""What the CLI prints, taken from the web app's own JSON views.

``unioncat search --json`` and ``/search.json`` must never disagree, so the
CLI asks the app in-process (as datasette's internal client does) instead of
shaping the same data a second time.
"""
from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask

from web import create_app
from web.auth import secrets_from
from web.dashboard import status_view

from .catalogue import Catalogue


def make_app(cat: Catalogue, page_size: int = 20, use_open_index: bool = False, jobs: Any = None) -> Flask:
    """The web app over this catalogue's stores and index (``jobs``: the staff actions' JobRunner)."""
    config: dict[str, Any] = {
        "SOURCES": cat.sources,
        "DB_ENGINE": cat.engine,
        "SECRET_KEY": cat.settings.secret_key,
        "STAFF_PASSWORD": cat.settings.staff_password,
        "PAGE_SIZE": page_size,
        # sign-on client secrets named in sources.yaml, read here in the wiring, never in the library
        "SECRETS": secrets_from(cat.sources, os.environ),
        "JOBS": jobs,
        "ALERT_FAILURES": cat.settings.alert_failures,
        "API_KEYS": cat.settings.api_keys,
        "CORS_ORIGINS": cat.settings.cors_origins,
        "OAI_ADMIN_EMAIL": cat.settings.admin_email,
        "BASE_URL": cat.settings.base_url,
        "TRUSTED_HOSTS": cat.settings.trusted_hosts,
        "TRUSTED_PROXIES": cat.settings.trusted_proxies,
        "SECURE_COOKIES": cat.settings.secure_cookies,
        "SESSION_IDLE_MINUTES": cat.settings.session_idle,
        "SESSION_MAX_HOURS": cat.settings.session_max,
        "SEARCH_RATE": cat.settings.search_rate,
        "SEARCH_BURST": 6 * cat.settings.search_rate,
        "SAML_KEY_FILE": cat.settings.saml_key,
        "SAML_CERT_FILE": cat.settings.saml_cert,
    }
    if use_open_index or cat.settings.uses_elasticsearch:  # an ES client is cheap and thread-safe
        config["SEARCH_BACKEND"] = cat.index
    else:
        config["INDEX_PATH"] = cat.settings.index_dir
    return create_app(config)


def _get_json(app: Flask, path: str, params: list[tuple[str, str]] | None = None) -> dict:
    with app.test_client() as client:
        response = client.get(path, query_string=params or [])
    if response.status_code != 200:
        raise LookupError(f"{path}: HTTP {response.status_code}")
    return response.get_json()


def search_json(cat: Catalogue, text: str, filters: dict[str, list[str]], page: int = 1, limit: int = 10) -> dict:
    """The ``/search.json`` answer for a query (``{"total", "hits", "facets", …}``)."""
    params = [("q", text), ("page", str(page))]
    params += [("f", f"{name}:{value}") for name, values in filters.items() for value in values]
    return _get_json(make_app(cat, page_size=limit, use_open_index=True), "/search.json", params)


def record_json(cat: Catalogue, cluster_id: str) -> dict:
    return _get_json(make_app(cat, use_open_index=True), f"/record/{cluster_id}.json")


def status_json(cat: Catalogue) -> dict:
    """The staff overview's data (the same function ``/staff/status.json`` uses), plus pipeline totals."""
    app = make_app(cat, use_open_index=True)
    with app.app_context():
        data = status_view(cat.settings.alert_failures)
    data["totals"]["raw_records"] = cat.raw.count()
    data["totals"]["normalised"] = cat.records.count()
    data["totals"]["shared_clusters"] = cat.clusters.count_shared()
    return json.loads(json.dumps(data, default=str))
