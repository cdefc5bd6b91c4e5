"""The staff area: sign-in, and the harvest status of every member library.

Disabled (503 with the reason) unless ``STAFF_PASSWORD`` is configured; every
page but the sign-in form needs a signed-in session.
"""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for

from . import csrf
from .context import services
from .errors import LoginRequired, StaffDisabled

bp = Blueprint("staff", __name__, url_prefix="/staff")
log = logging.getLogger(__name__)
SESSION_KEY = "staff"


@bp.before_request
def require_staff():
    if not current_app.config.get("STAFF_PASSWORD"):
        raise StaffDisabled()
    if request.endpoint in ("staff.login",) or session.get(SESSION_KEY):
        return None
    if request.path.endswith(".json"):
        raise LoginRequired()
    return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    next_url = _safe_next(request.values.get("next"))
    if request.method == "POST":
        given = request.form.get("password", "").encode("utf-8")
        expected = str(current_app.config["STAFF_PASSWORD"]).encode("utf-8")
        if hmac.compare_digest(given, expected):
            session.clear()
            session[SESSION_KEY] = True
            csrf.rotate()
            log.info("staff sign-in from %s", request.remote_addr)
            return redirect(next_url or url_for("staff.status", fmt="html"))
        log.warning("failed staff sign-in from %s", request.remote_addr)
        error = "That password is not right."
    return render_template("staff_login.html", error=error, next=next_url), 401 if error else 200


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("search.home"))


@bp.get("/", defaults={"fmt": "html"})
@bp.get("/status.json", defaults={"fmt": "json"})
def status(fmt: str):
    data = status_view()
    if fmt == "json":
        return jsonify(data)
    return render_template("staff_status.html", **data)


def status_view() -> dict:
    svc = services()
    last = svc.raw.last_runs()
    rows = []
    for source in svc.sources.sources:
        run = last.get(source.id)
        rows.append({
            "id": source.id, "name": source.name, "region": source.region, "protocol": source.protocol,
            "ils": source.ils, "enabled": source.enabled, "schedule": source.schedule_text,
            "records": svc.raw.count(source.id),
            "quarantined": svc.raw.count_quarantined(source.id),
            "last_run": _run(run) if run else None,
        })
    backend = svc.backend
    index = backend.stats() if hasattr(backend, "stats") else {"documents": backend.count()}
    return {
        "consortium": svc.sources.consortium.name,
        "sources": rows,
        "totals": {
            "sources": len(rows),
            "enabled": sum(r["enabled"] for r in rows),
            "failing": sum(1 for r in rows if r["last_run"] and r["last_run"]["status"] == "failed"),
            "records": sum(r["records"] for r in rows),
            "quarantined": sum(r["quarantined"] for r in rows),
            "clusters": svc.clusters.count(),
        },
        "index": index,
    }


def _run(run: dict) -> dict:
    started, finished = run.get("started_at"), run.get("finished_at")
    return {
        "id": run["id"], "status": run["status"], "full": bool(run.get("full")),
        "started_at": started.isoformat() if started else None,
        "finished_at": finished.isoformat() if finished else None,
        "duration_s": (finished - started).total_seconds() if started and finished else None,
        "counts": {k: run.get(k) or 0 for k in ("added", "updated", "deleted", "unchanged", "quarantined")},
        "error": run.get("error"),
    }


def _safe_next(value: str | None) -> str | None:
    """Only a path on this site (never ``//host`` or ``http://…``): no open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None
