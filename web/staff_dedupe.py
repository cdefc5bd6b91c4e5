"""Dedupe from the web: a catalogue entry's evidence for staff, and the corrections an operator makes.

``/staff/record/<id>`` shows which rule joined which member records (scores, vetoes, what was kept
apart and why) and the overrides touching the entry.  An operator splits a member record out
(never-merge with every other member) or joins the entry with another one (always-merge), with a
note, and undoes any override; each is audited and queues a build when a job runner is configured.
The corrections are :mod:`dedupe.overrides`, the functions ``unioncat dedupe split|join|undo``
call, so web and CLI have the same effect, and every later build (also ``--full``) keeps them.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound

from dedupe.evidence import EvidenceStore, Override
from dedupe.explain import explain, words
from dedupe.overrides import OverrideError, join, overrides_of, parse_ref, split_out, undo
from dedupe.members import MemberStore

from .context import services
from .staff import flash_result, require_staff, role

bp = Blueprint("staff_dedupe", __name__, url_prefix="/staff")
bp.before_request(require_staff)
NOTE_LIMIT = 500


@bp.get("/record/<cluster_id>", defaults={"fmt": "html"})
@bp.get("/record/<cluster_id>.json", defaults={"fmt": "json"})
def entry(cluster_id: str, fmt: str):
    svc = services()
    data = explain(svc.engine, cluster_id)
    if data is None:
        raise NotFound(_("There is no catalogue entry %(id)s.", id=cluster_id))
    if data["cluster"] != cluster_id:
        return redirect(url_for("staff_dedupe.entry", cluster_id=data["cluster"], fmt=fmt))
    members = [(m["source"], m["local_id"]) for m in data["members"]]
    data["overrides"] = [o.as_dict() for o in overrides_of(svc.engine, members)]
    for m in data["members"]:
        source = svc.source(m["source"])
        m["library"] = source.name if source else m["source"]
    if fmt == "json":
        return jsonify(data)
    for p in data["joined_by"]:
        p["why"] = _(words(p["rule"]))
    for p in data["kept_apart"]:
        p["why_apart"] = (_("vetoed: %(why)s", why="; ".join(_(words(v)) for v in p["vetoes"])) if p.get("vetoes")
                          else _(p["why_apart"]))
    return render_template("staff_record.html", user=g.staff, **data)


@bp.get("/overrides", defaults={"fmt": "html"})
@bp.get("/overrides.json", defaults={"fmt": "json"})
def overrides(fmt: str):
    svc = services()
    found = EvidenceStore(svc.engine).overrides()
    where = _clusters_of(found)
    listed = [o.as_dict() | {"a_entry": where.get(o.a), "b_entry": where.get(o.b)} for o in reversed(found)]
    if fmt == "json":
        return jsonify({"overrides": listed})
    return render_template("staff_overrides.html", user=g.staff, overrides=listed)


@bp.post("/record/<cluster_id>/split")
@role("operator")
def split(cluster_id: str):
    note = _note()

    def do(who, ip):
        record = parse_ref(request.form.get("record", ""))
        made = split_out(services().engine, cluster_id, record, note)
        ref = _ref(record)
        detail = f"{ref} kept apart from {len(made)} record(s)" + (f": {note}" if note else "")
        return _applied(who, ip, "dedupe-split", cluster_id, detail,
                        _("%(record)s will be split out of %(entry)s.", record=ref, entry=cluster_id))
    return flash_result(do, url_for("staff_dedupe.entry", cluster_id=cluster_id, fmt="html"))


@bp.post("/record/<cluster_id>/join")
@role("operator")
def join_entry(cluster_id: str):
    note = _note()

    def do(who, ip):
        other = request.form.get("other", "").strip()
        if not other:
            raise OverrideError(_("Give the entry id or SOURCE:LOCAL_ID of the record to join."))
        made = join(services().engine, cluster_id, other, note)
        detail = f"always-merge #{made.id} with {other}" + (f": {note}" if note else "")
        return _applied(who, ip, "dedupe-join", cluster_id, detail,
                        _("%(entry)s will be joined with %(other)s.", entry=cluster_id, other=other))
    return flash_result(do, url_for("staff_dedupe.entry", cluster_id=cluster_id, fmt="html"))


@bp.post("/override/<int:override_id>/undo")
@role("operator")
def undo_override(override_id: int):
    back = request.form.get("back_entry")

    def do(who, ip):
        gone = undo(services().engine, override_id)
        detail = f"#{gone.id} {gone.kind}-merge {_ref(gone.a)} {_ref(gone.b)} removed"
        return _applied(who, ip, "dedupe-undo", back or _ref(gone.a), detail,
                        _("Override #%(id)s removed.", id=override_id))
    target = (url_for("staff_dedupe.entry", cluster_id=back, fmt="html") if back
              else url_for("staff_dedupe.overrides", fmt="html"))
    return flash_result(do, target)


def _applied(who: str, ip: str | None, action: str, target: str, detail: str, message: str) -> str:
    """Audit the correction and queue a build (or say when it applies)."""
    svc = services()
    if svc.jobs is not None:
        job = svc.jobs.build(requested_by=who)
        detail += f"; build job {job}"
        message += " " + _("Build queued as job %(job)s", job=job)
    else:
        message += " " + _("It applies at the next build.")
    svc.accounts.audit(who, action, target, detail, ip)
    return message


def _note() -> str:
    return request.form.get("note", "").strip()[:NOTE_LIMIT]


def _ref(key: tuple[str, str]) -> str:
    return f"{key[0]}:{key[1]}"


def _clusters_of(found: list[Override]) -> dict:
    return MemberStore(services().engine).clusters_of({k for o in found for k in (o.a, o.b)})
