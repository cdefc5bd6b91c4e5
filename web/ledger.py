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
``/staff/ledger/<member>[.json]`` one member's figures, its rank and its monthly trend.  Every
computation stores the current month's figures (:mod:`web.ledger_store`), so past months stay.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound

from .context import services
from .ledger_store import FIGURES, LedgerSnapshots
from .staff import require_staff
from .usage_store import HELD, UsageStore

bp = Blueprint("staff_ledger", __name__, url_prefix="/staff")
bp.before_request(require_staff)

#: The table's sortable columns: the figures and the member's name.
COLUMNS = ("name", *FIGURES)


def ledger_rows(now: datetime | None = None) -> list[dict]:
    """Every member of sources.yaml with its figures, in sources.yaml's order."""
    svc = services()
    now = now or datetime.now(timezone.utc)
    counter = current_app.extensions.get("unioncat_usage")
    if counter is not None:
        counter.flush()
    sums = UsageStore(svc.engine).sums(("download", "ill_request", *HELD.values()))
    ill_records = {rec for event, _r, _h, rec, _n in sums if event == "ill_request" and rec}
    original, holders = _originals(ill_records)
    contributed = svc.raw.counts_by_source()
    last_ok, _failures = svc.raw.success_streaks()
    given, used = _usage(sums, holders)
    rows = []
    for source in svc.sources.sources:
        ok = last_ok.get(source.id)
        rows.append({
            "member": source.id, "name": source.name, "region": source.region,
            "contributed": contributed.get(source.id, 0), "original": original[source.id],
            "fresh_days": (now - ok).days if ok is not None else None,
            "downloaded_by_others": sum(given[e][source.id] for e in ("download", *HELD.values())),
            "ill_could_fill": given["ill_request"][source.id],
            "downloads_used": used["download"][source.id], "ill_sent": used["ill_request"][source.id],
        })
    return rows


def _originals(wanted: set[str]) -> tuple[Counter, dict[str, set[str]]]:
    """(member → entries it catalogued first, entry → holding members for the ``wanted`` entries): one pass."""
    svc = services()
    first_seen = svc.raw.first_seen()
    original: Counter = Counter()
    holders: dict[str, set[str]] = {}
    for cluster in svc.clusters.iter_live():
        seen = [(first_seen[m], m[0]) for m in cluster.members if m in first_seen]
        if seen:
            original[min(seen)[1]] += 1
        if cluster.id in wanted:
            holders[cluster.id] = set(cluster.sources)
    return original, holders


def _usage(sums, holders: dict[str, set[str]]) -> tuple[dict[str, Counter], dict[str, Counter]]:
    """(event → member → count given to others, event → member → count its readers used)."""
    given = {event: Counter() for event in ("download", "ill_request", *HELD.values())}
    used = {"download": Counter(), "ill_request": Counter()}
    for event, reader, holding, record, n in sums:
        if reader and event in used:
            used[event][reader] += n
        lenders = {holding} if event != "ill_request" and holding else holders.get(record, set())
        for member in lenders - {reader}:
            given[event][member] += n
    return given, used


def snapshot(rows: list[dict], now: datetime | None = None) -> str:
    """Keep ``rows`` as this month's figures; returns the month (``YYYY-MM``)."""
    month = (now or datetime.now(timezone.utc)).strftime("%Y-%m")
    LedgerSnapshots(services().engine).save(month, rows)
    return month


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
    rows = ledger_rows()
    month = snapshot(rows)
    totals = {f: sum(r[f] for r in rows) for f in FIGURES if f != "fresh_days"}
    return {"month": month, "sort": column if column in COLUMNS else "contributed", "descending": descending,
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
    return render_template("staff_ledger.html", user=g.staff, **data)


@bp.get("/ledger/<member>", defaults={"fmt": "html"})
@bp.get("/ledger/<member>.json", defaults={"fmt": "json"})
def member_ledger(member: str, fmt: str):
    if services().source(member) is None:
        raise NotFound(_("There is no member %(id)s in sources.yaml.", id=repr(member)))
    rows = ledger_rows()
    snapshot(rows)
    row = next(r for r in rows if r["member"] == member)
    ranks = {f: 1 + sum(1 for r in rows if (r[f] or 0) > (row[f] or 0)) for f in FIGURES if f != "fresh_days"}
    history = LedgerSnapshots(services().engine).history(member)
    data = {"member": row, "ranks": ranks, "of": len(rows), "history": history, "figures": list(FIGURES)}
    if fmt == "json":
        return jsonify(data)
    peaks = {f: max((h[f] or 0 for h in history), default=0) for f in FIGURES}
    return render_template("staff_ledger_member.html", user=g.staff, peaks=peaks, **data)
