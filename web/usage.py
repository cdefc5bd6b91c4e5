"""Usage statistics in the web app: the one-line ``count(...)`` the reader views call, the staff page
``/staff/usage`` (per month, per member library, top records; charts drawn as HTML bars, no script),
its ``.json`` and ``.csv`` downloads, and the ``unioncat_usage_events_total`` Prometheus counters.

``USAGE_STATISTICS`` (default on) turns counting off; ``USAGE_FLUSH_SECONDS`` (default 5) is how often
the batched counts are written (:mod:`web.usage_store`).  Only counts are kept: no IP, no reader id.
"""
from __future__ import annotations

import csv
import io
from typing import Mapping

from flask import Blueprint, Flask, Response, after_this_request, current_app, g, jsonify, render_template
from prometheus_client.core import CounterMetricFamily

from .context import services
from .reader import home_library
from .staff import require_staff
from .usage_store import EVENTS, HELD, KEYS, UsageCounter, UsageStore

bp = Blueprint("staff_usage", __name__, url_prefix="/staff")
bp.before_request(require_staff)


def init_app(app: Flask) -> None:
    engine = app.extensions["unioncat"].engine
    enabled = app.config.get("USAGE_STATISTICS", True)
    app.extensions["unioncat_usage"] = (UsageCounter(engine, float(app.config.get("USAGE_FLUSH_SECONDS", 5)))
                                        if enabled else None)
    app.register_blueprint(bp)


def count(event: str, *, holding_library: str | None = None, record: str | None = None, n: int = 1) -> None:
    """Count one reader event (``n`` records for OAI-PMH/API pages); the reader's library when known."""
    counter = _counter()
    if counter is None or n <= 0:
        return
    home = home_library()
    counter.count(event, reader_library=home.id if home else None, holding_library=holding_library,
                  record=record, n=n)


def count_served(event: str, served: int, holders: Mapping[str, int], *, record: str | None = None) -> None:
    """``served`` records went out by OAI-PMH or the API (``event``); ``holders``: member → how many of
    them it holds (stored as :data:`~web.usage_store.HELD`), so each holding library's share is known."""
    counter = _counter()
    if counter is None or served <= 0:
        return
    home = home_library()
    reader = home.id if home else None
    counter.count(event, reader_library=reader, record=record, n=served)
    if holders:
        counter.count_many(HELD[event], holders, reader_library=reader)


def count_if_served(event: str, **keys) -> None:
    """Count ``event`` once the response turns out a success (a 404 download is not a download)."""
    @after_this_request
    def _counted(response):
        if response.status_code < 400:
            count(event, **keys)
        return response


class UsageCollector:
    """``unioncat_usage_events_total{event}``: stored totals plus what this process has not written yet."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        counter = self.app.extensions.get("unioncat_usage")
        family = CounterMetricFamily("unioncat_usage_events", "Reader events counted for the usage statistics",
                                     labels=["event"])
        stored = UsageStore(self.app.extensions["unioncat"].engine).totals()
        pending = counter.totals() if counter is not None else {}
        for event in EVENTS:
            family.add_metric([event], stored.get(event, 0) + pending.get(event, 0))
        yield family


def usage_view() -> dict:
    """Everything the staff page shows; counts written first so the page is current."""
    svc, counter = services(), _counter()
    if counter is not None:
        counter.flush()
    store = UsageStore(svc.engine)
    months = store.per_month()
    peak = max((n for m in months.values() for n in m.values()), default=0)
    names = {s.id: s.name for s in svc.sources.sources}
    return {
        "enabled": counter is not None,
        "events": list(EVENTS),
        "months": [{"month": m, "counts": {e: c.get(e, 0) for e in EVENTS}} for m, c in months.items()],
        "peak": peak,
        "holding": _members(store.per_member("holding_library"), names),
        "readers": _members(store.per_member("reader_library"), names),
        "top_records": [{"record": r, "count": n} for r, n in store.top_records()],
    }


def _members(counts: dict[str, dict[str, int]], names: dict[str, str]) -> list[dict]:
    rows = [{"source": s, "name": names.get(s, s), "counts": {e: c.get(e, 0) for e in EVENTS},
             "total": sum(c.values())} for s, c in counts.items()]
    return sorted(rows, key=lambda r: (-r["total"], r["name"]))


@bp.get("/usage", defaults={"fmt": "html"})
@bp.get("/usage.<any(json, csv):fmt>")
def usage(fmt: str):
    if fmt == "csv":
        counter = _counter()
        if counter is not None:
            counter.flush()
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[*KEYS, "count"])
        writer.writeheader()
        writer.writerows(UsageStore(services().engine).rows())
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=usage-daily.csv"})
    data = usage_view()
    if fmt == "json":
        return jsonify({**data, "daily": UsageStore(services().engine).rows()})
    return render_template("staff_usage.html", user=g.staff, **data)


def _counter() -> UsageCounter | None:
    return current_app.extensions.get("unioncat_usage")
