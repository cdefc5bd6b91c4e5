"""The contribution ledger (以贡献换服务, "contribute to be served"): what each member gives and uses.

Per member library, what it gives the consortium:

- ``contributed``: its live records in the catalogue (raw store);
- ``original``: catalogue entries whose earliest harvested member record is its own — the member's
  original cataloguing, which the others' copies came after (ties on ``first_seen`` go to the id);
- ``fresh_days``: days since its last successful harvest (its holdings kept current; None = never);
- ``downloaded_by_others``: its records downloaded as MARC, harvested by OAI-PMH or read through the
  API by readers of other members (or of no known member: a harvester);
- ``ill_could_fill``: ILL requests (counted by ``/go/ill/…``) for entries it holds, sent by readers
  who are not its own;

and what it uses: ``downloads_used`` (MARC downloads by its readers) and ``ill_sent`` (ILL requests
by its readers).  ``/staff/ledger[.json|.csv]`` is the consortium table, sortable by any column;
``/staff/ledger/<member>[.json]`` one member's figures, its rank and its monthly trend.

The pages read the current snapshot, which the ledger job computes (:mod:`web.ledger_figures`: the
scheduler, ``unioncat run`` and ``unioncat ledger refresh``), and say when it was taken; they compute
live only while no snapshot exists (and keep that as the first).  Each computation stores the current
month's figures (:mod:`web.ledger_store`), so past months stay.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound

from consortium.config import display_name

from .context import services
from .ledger_figures import refresh
from .ledger_store import FIGURES, LedgerSnapshots
from .reader import ui_locale
from .staff import require_staff

bp = Blueprint("staff_ledger", __name__, url_prefix="/staff")
bp.before_request(require_staff)

#: The table's sortable columns: the figures and the member's name.
COLUMNS = ("name", *FIGURES)


def current_rows() -> tuple[dict, list[dict]]:
    """({"month", "as_of", "live"}, every member of sources.yaml with its figures) from the current snapshot.

    A member added to sources.yaml since the snapshot has no figures yet (None, shown as "–").  With no
    snapshot at all the figures are computed now (counts written first) and kept as the first one.
    """
    svc = services()
    found = LedgerSnapshots(svc.engine).latest()
    if found is None:
        counter = current_app.extensions.get("unioncat_usage")
        if counter is not None:
            counter.flush()
        now = datetime.now(timezone.utc)
        month, rows = refresh(svc, now)
        return {"month": month, "as_of": now.replace(microsecond=0).isoformat(), "live": True}, rows
    month, taken_at, figures = found
    blank = dict.fromkeys(FIGURES)
    rows = [{"member": s.id, "name": s.name, "region": s.region, **figures.get(s.id, blank)}
            for s in svc.sources.sources]
    return {"month": month, "as_of": taken_at.replace(microsecond=0).isoformat(), "live": False}, rows


def sort_rows(rows: list[dict], column: str, descending: bool) -> list[dict]:
    """Sorted by ``column`` (None — a member never harvested — always last), then by name."""
    if column not in COLUMNS:
        column = "contributed"
    present = [r for r in rows if r[column] is not None]
    missing = [r for r in rows if r[column] is None]
    present.sort(key=lambda r: r["name"])
    present.sort(key=lambda r: r[column], reverse=descending)
    return present + sorted(missing, key=lambda r: r["name"])


def ledger_view(column: str, descending: bool) -> dict:
    snapshot, rows = current_rows()
    totals = {f: sum(r[f] or 0 for r in rows) for f in FIGURES if f != "fresh_days"}
    return {**snapshot, "sort": column if column in COLUMNS else "contributed", "descending": descending,
            "figures": list(FIGURES), "members": sort_rows(rows, column, descending), "totals": totals}


@bp.get("/ledger", defaults={"fmt": "html"})
@bp.get("/ledger.<any(json, csv):fmt>")
def ledger(fmt: str):
    column = request.args.get("sort", "contributed")
    descending = request.args.get("order", "desc" if column != "name" else "asc") != "asc"
    data = ledger_view(column, descending)
    if fmt == "json":
        return jsonify(data)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["member", "name", "region", *FIGURES])
        writer.writeheader()
        writer.writerows(data["members"])
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=ledger-{data['month']}.csv"})
    return render_template("staff_ledger.html", user=g.staff, table=_table(data["members"]), **data)


def _table(rows: list[dict]) -> list[dict]:
    """The table's rows with their link, name and cells as text, made here: at 1,300 members × 8 cells,
    template logic and a ``url_for`` and a locale look-up per row were most of the page (bench/staff.py)."""
    svc, locale, never = services(), ui_locale(), _("never")
    link = url_for("staff_ledger.member_ledger", member="__member__", fmt="html")
    out = []
    for row in rows:
        source = svc.source(row["member"])
        cells = [(f, "–" if row[f] is None else format(row[f], ",")) for f in FIGURES]
        out.append({"member": row["member"], "name": display_name(source, locale) if source else row["member"],
                    "link": link.replace("__member__", quote(row["member"], safe="")),
                    "cells": [(f, never if f == "fresh_days" and row[f] is None else text) for f, text in cells]})
    return out


@bp.get("/ledger/<member>", defaults={"fmt": "html"})
@bp.get("/ledger/<member>.json", defaults={"fmt": "json"})
def member_ledger(member: str, fmt: str):
    if services().source(member) is None:
        raise NotFound(_("There is no member %(id)s in sources.yaml.", id=repr(member)))
    snapshot, rows = current_rows()
    row = next(r for r in rows if r["member"] == member)
    ranks = {f: 1 + sum(1 for r in rows if (r[f] or 0) > (row[f] or 0)) for f in FIGURES if f != "fresh_days"}
    history = LedgerSnapshots(services().engine).history(member)
    data = {**snapshot, "member": row, "ranks": ranks, "of": len(rows), "history": history,
            "figures": list(FIGURES)}
    if fmt == "json":
        return jsonify(data)
    peaks = {f: max((h[f] or 0 for h in history), default=0) for f in FIGURES}
    return render_template("staff_ledger_member.html", user=g.staff, peaks=peaks, **data)
