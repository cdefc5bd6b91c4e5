"""The staff area: sign-in, the sources overview, run history, availability, actions, audit log.

Closed (503 with the reason) until a staff account exists or the bootstrap ``STAFF_PASSWORD`` is
set (see :mod:`web.accounts`); every page but the sign-in form needs a live server-side session
(:mod:`web.sessions`: ended by sign-out, a new password, idleness or age), every form a CSRF token, and
every action the ``operator`` role.  Each page has a ``.json`` twin.
"""
from __future__ import annotations

import logging
from functools import wraps

from flask import (
    Blueprint, Flask, current_app, flash, g, has_request_context, jsonify, redirect, render_template, request, url_for,
)

from flask_babel import gettext as _, lazy_gettext as _l
from werkzeug.exceptions import NotFound

from dedupe.overrides import OverrideError
from harvester.ops import OpsStore

from . import csrf, sessions
from .plain_errors import plain_error
from .reader import library_name
from .present import safe_next
from .accounts import Accounts
from .actions import ActionError, Actions
from .context import services
from .console import STATES, OverviewQuery, overview
from .dashboard import availability_view, source_view, sparkline, status_view
from .errors import Forbidden, LoginRequired, StaffDisabled, TooManyAttempts

bp = Blueprint("staff", __name__, url_prefix="/staff")
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    svc = app.extensions["unioncat"]
    svc.ops = OpsStore(svc.engine)
    svc.accounts = Accounts(svc.engine, app.config.get("STAFF_PASSWORD"))
    svc.jobs = app.config.get("JOBS")
    app.jinja_env.globals["sparkline"] = sparkline
    app.jinja_env.filters["member_name"] = library_name   # every staff page names members so: name_zh in Chinese
    app.jinja_env.filters["plain_error"] = plain_error


@bp.before_request
def require_staff():
    svc = services()
    if not svc.accounts.enabled():
        raise StaffDisabled()
    if request.endpoint == "staff.login":
        return None
    name = sessions.signed_in()
    user = svc.accounts.user(name) if name is not None else None
    if user is not None:
        g.staff = user
        return None
    if request.path.endswith(".json") or request.method != "GET":
        raise LoginRequired()
    return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))


@bp.app_context_processor
def _staff_page() -> dict:
    """Staff pages (every ``staff*`` blueprint) leave out the reader's "choose your library" bar: 1,300
    options at the national centre, half the overview's HTML."""
    return {"staff_page": has_request_context() and (request.blueprint or "").startswith("staff")}


@bp.after_request
def no_store(response):
    """Staff pages hold who-did-what and error texts: never kept by a shared cache or the back button."""
    response.headers["Cache-Control"] = "no-store"
    return response


def role(required: str):
    """Only for accounts with at least ``required`` (viewer < operator < admin)."""
    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not g.staff.can(required):
                services().accounts.audit(g.staff.name, "refused", request.path, f"needs {required}",
                                          request.remote_addr)
                raise Forbidden(_l("Your account (%(name)s, %(role)s) may look but not act: "
                                   "this needs the %(required)s role.",
                                   name=g.staff.name, role=g.staff.role, required=required))
            return view(*args, **kwargs)
        return wrapped
    return decorate


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    next_url = safe_next(request.values.get("next"))
    status = 200
    if request.method == "POST":
        accounts = services().accounts
        name = request.form.get("username", "").strip()
        ip = request.remote_addr or "?"
        wait = accounts.wait_seconds(name, ip)
        if wait:
            accounts.audit(name or "?", "login-delayed", None, f"retry after {wait} s", ip)
            raise TooManyAttempts(wait)
        user = accounts.authenticate(name, request.form.get("password", ""))
        accounts.attempt(name, ip, user is not None)
        if user is not None:
            sessions.sign_in(user.name)
            csrf.rotate()
            accounts.audit(user.name, "login", None, user.role, ip)
            return redirect(next_url or url_for("staff.status", fmt="html"))
        log.warning("failed staff sign-in for %r from %s", name, ip)
        accounts.audit(name or "?", "login-failed", None, None, ip)
        error, status = _("That name and password do not match an account."), 401
    return render_template("staff_login.html", error=error, next=next_url), status


@bp.post("/logout")
def logout():
    services().accounts.audit(g.staff.name, "logout", None, None, request.remote_addr)
    sessions.sign_out()
    return redirect(url_for("search.home"))


@bp.get("/", defaults={"fmt": "html"})
@bp.get("/status.json", defaults={"fmt": "json"})
def status(fmt: str):
    query = OverviewQuery.from_args(request.args)
    data = status_view(current_app.config["ALERT_FAILURES"], current_app.config["STATUS_CACHE_SECONDS"],
                       overview(query, services().sources))
    if fmt == "json":
        return jsonify(data)
    page = {k: v for k, v in data.items() if k != "consortium"}  # the template's `consortium` is the object
    return render_template("staff_status.html", user=g.staff, query=query, regions=services().sources.regions,
                           groups=services().sources.groups, states=STATES, **page)


@bp.get("/source/<source_id>", defaults={"fmt": "html"})
@bp.get("/source/<source_id>.json", defaults={"fmt": "json"})
def source(source_id: str, fmt: str):
    data = source_view(source_id)
    if data is None:
        raise NotFound(_("There is no member %(id)s in sources.yaml.", id=repr(source_id)))
    if fmt == "json":
        return jsonify(data)
    return render_template("staff_source.html", user=g.staff, **data)


@bp.get("/availability", defaults={"fmt": "html"})
@bp.get("/availability.json", defaults={"fmt": "json"})
def availability(fmt: str):
    data = availability_view()
    if fmt == "json":
        return jsonify(data)
    return render_template("staff_availability.html", user=g.staff, **data)


@bp.get("/audit", defaults={"fmt": "html"})
@bp.get("/audit.json", defaults={"fmt": "json"})
def audit(fmt: str):
    entries = [{**e, "at": e["at"].isoformat()} for e in services().accounts.audit_log(300)]
    if fmt == "json":
        return jsonify({"audit": entries})
    return render_template("staff_audit.html", user=g.staff, entries=entries)


# -- actions (POST, CSRF-checked by web.csrf, operator role) -----------------------------------
def _actions() -> Actions:
    svc = services()
    return Actions(svc.raw, svc.ops, svc.accounts, svc.jobs, set(svc.sources.by_id()))


def flash_result(do, back: str):
    """Run an action ``do(user, ip) -> message``; flash its message or why it could not be done; go back."""
    try:
        message = do(g.staff.name, request.remote_addr)
        flash(message, "ok")
    except (ActionError, OverrideError) as exc:
        flash(str(exc), "error")
    return redirect(safe_next(request.form.get("next")) or back)


@bp.post("/source/<source_id>/harvest")
@role("operator")
def harvest(source_id: str):
    full = request.form.get("full") == "1"

    def do(who, ip):
        job = _actions().harvest(source_id, full, who, ip)
        if full:
            return _("Full re-harvest of %(source)s queued as job %(job)s", source=source_id, job=job)
        return _("Harvest of %(source)s queued as job %(job)s", source=source_id, job=job)
    return flash_result(do, url_for("staff.status", fmt="html"))


@bp.post("/source/<source_id>/pause")
@role("operator")
def pause(source_id: str):
    paused = request.form.get("paused", "1") == "1"
    reason = request.form.get("reason", "").strip()[:500]

    def do(who, ip):
        _actions().pause(source_id, paused, who, ip, reason)
        if paused:
            return _("%(source)s paused: scheduled harvests skip it", source=source_id)
        return _("%(source)s resumed", source=source_id)
    return flash_result(do, url_for("staff.status", fmt="html"))


@bp.post("/build")
@role("operator")
def build():
    reindex = request.form.get("reindex") == "1"

    def do(who, ip):
        job = _actions().build(reindex, who, ip)
        if reindex:
            return _("Index rebuild queued as job %(job)s", job=job)
        return _("Build queued as job %(job)s", job=job)
    return flash_result(do, url_for("staff.status", fmt="html"))


@bp.post("/hold/<int:hold_id>/<any(approve, reject):decision>")
@role("operator")
def decide(hold_id: int, decision: str):
    return flash_result(lambda who, ip: _actions().decide_hold(hold_id, decision == "approve", who, ip),
                url_for("staff.status", fmt="html"))


@bp.post("/quarantine/<int:item_id>/retry")
@role("operator")
def retry(item_id: int):
    return flash_result(lambda who, ip: _actions().retry(item_id, who, ip), url_for("staff.status", fmt="html"))
