"""The data of the staff pages, as plain dicts: the HTML pages, their JSON twins and
``unioncat status --json`` all take it from here, so they never disagree.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l
from markupsafe import Markup, escape

from harvester.health import alert_conditions, health
from harvester.stores.records import RAW_SEQ
from normaliser.store import RECORD_SEQ, QualityStore
from storage.db import get_value

from .context import services
from .plain_errors import plain_error

#: Sort order of the overview: what needs a person comes first.
ATTENTION = {"failing": 0, "held": 1, "stale": 2, "overdue": 3, "never": 4, "ok": 5, "paused": 6, "disabled": 7}
#: The states as shown to staff: the keys stay English (CSS classes, JSON); staff_status.html shows
#: ``_(s.attention)``, and these entries put every state's label in the message catalogue.
ATTENTION_LABELS = {"failing": _l("failing"), "held": _l("held"), "stale": _l("stale"), "overdue": _l("overdue"),
                    "never": _l("never"), "ok": _l("ok"), "paused": _l("paused"), "disabled": _l("disabled")}


def run_facts(max_age: float = 0.0) -> tuple:
    """(last runs, health, records, quarantined, trends) — the costly part of the overview, cached.

    ``trends`` starts empty and fills as pages are shown (:func:`_spelt_out` reads only the members it
    lacks).  At 1,300 members × a year of runs these reads cost about a second of CPU (bench/staff.py), yet
    they change only when a run starts or ends.  The answer is reused for ``max_age`` seconds
    (``STATUS_CACHE_SECONDS``, default 15) while the newest run is the same run in the same state and
    no raw or normalised record changed;
    pauses, holds, alerts and jobs are always read fresh.  ``max_age=0`` reads everything every time.
    """
    svc = services()
    now = datetime.now(timezone.utc)
    with svc.engine.connect() as conn:  # raw and normalised records change only with these counters
        changes = (get_value(conn, RAW_SEQ), get_value(conn, RECORD_SEQ))
    key = (changes, tuple((r["id"], r["status"], r["finished_at"]) for r in svc.raw.runs(limit=1)))
    cached = current_app.extensions.get("unioncat_status_facts")
    if max_age > 0 and cached and cached[0] == key and (now - cached[1]).total_seconds() < max_age:
        return cached[2]
    facts = (svc.raw.last_runs(), health(svc.engine, svc.sources.sources, now), svc.raw.counts_by_source(),
             svc.raw.quarantined_by_source(), {})
    current_app.extensions["unioncat_status_facts"] = (key, now, facts)
    return facts


def status_view(failures: int = 3, max_age: float = 0.0,
                pick: Callable[[list[dict]], tuple[list[dict], dict]] | None = None) -> dict:
    """Every member with its last run, freshness, trend and state; failing and stale first.

    ``pick`` chooses the rows shown (the overview's filter, sort and page) from light rows, whose
    ``last_run`` is the stored run and ``health`` a :class:`~harvester.health.Health`, and returns
    them with extra keys for the answer; only the rows shown are then spelt out as dicts and given
    their ``trend`` — at 1,300 members that is 50 rows, not 1,300 (bench/staff.py).
    """
    svc = services()
    now = datetime.now(timezone.utc)
    last, states, records, quarantined, trends = run_facts(max_age)
    paused = svc.ops.paused()
    holds = {h.source: h for h in reversed(svc.ops.holds())}
    rows = []
    for order, source in enumerate(svc.sources.sources):
        row = {
            "id": source.id, "name": source.name, "region": source.region, "protocol": source.protocol,
            "ils": source.ils, "enabled": source.enabled, "schedule": source.schedule_text,
            "records": records.get(source.id, 0), "quarantined": quarantined.get(source.id, 0),
            "last_run": last.get(source.id), "health": states[source.id],
            "paused": paused.get(source.id), "held_deletion": holds.get(source.id),
        }
        row["attention"] = _attention(row, row["health"])
        rows.append((ATTENTION[row["attention"]], order, row))
    rows.sort(key=lambda t: (t[0], t[1]))
    every = [r for _, _, r in rows]
    shown, extra = pick(every) if pick else (every, {})
    backend = svc.backend
    index = backend.stats() if hasattr(backend, "stats") else {"documents": backend.count()}
    alerts = alert_conditions(svc.sources.sources, states, set(paused), failures)
    runner = svc.jobs
    return {
        "consortium": svc.sources.consortium.name,
        "sources": _spelt_out(shown, trends),
        "totals": {
            "sources": len(every),
            "enabled": sum(r["enabled"] for r in every),
            "failing": sum(1 for r in every if r["attention"] == "failing"),
            "stale": sum(1 for r in every if r["attention"] == "stale"),
            "paused": sum(1 for r in every if r["paused"]),
            "held": sum(1 for r in every if r["held_deletion"]),
            "records": sum(r["records"] for r in every),
            "quarantined": sum(r["quarantined"] for r in every),
            "clusters": svc.clusters.count(),
        },
        "index": index,
        "alerts": [{"key": k, "source": s, "kind": kind, "message": m} for k, (s, kind, m) in alerts.items()],
        "mail_problem": _mail_problem(svc.ops.mail_problem()),
        "jobs": runner.status() if runner is not None else None,
        "generated_at": now.replace(microsecond=0).isoformat(),
        **extra,
    }


def _mail_problem(problem: dict | None) -> dict | None:
    """The alert mail's delivery problem as the page and its JSON show it (``since`` an ISO time, as a run's)."""
    return {**problem, "since": _iso(problem["since"])} if problem else None


def _spelt_out(rows: list[dict], trend: dict[str, list[int]]) -> list[dict]:
    """Light rows as the page and its JSON show them: plain dicts and the record-count trend (read into
    ``trend``, the cached facts' own, for the members it lacks)."""
    missing = [r["id"] for r in rows if r["id"] not in trend]
    if missing:
        trend.update(dict.fromkeys(missing, []) | services().raw.record_trend(20, missing))
    return [{**row, "last_run": run_dict(row["last_run"]) if row["last_run"] else None,
             "health": row["health"].as_dict(), "paused": _paused(row["paused"]),
             "held_deletion": _hold(row["held_deletion"]) if row["held_deletion"] else None,
             "trend": trend.get(row["id"], [])} for row in rows]


def _attention(row: dict, state) -> str:
    run = row["last_run"]
    if not row["enabled"]:
        return "disabled"
    if row["paused"]:
        return "paused"
    if run and run["status"] in ("failed", "interrupted"):
        return "failing"
    if row["held_deletion"]:
        return "held"
    if state.stale:
        return "stale"
    if state.overdue:
        return "overdue"
    if run is None:
        return "never"
    return "ok"


def source_view(source_id: str) -> dict | None:
    """One member: its runs, quarantined records (with payloads), held deletions and audit trail."""
    svc = services()
    source = svc.source(source_id)
    if source is None:
        return None
    quarantined = []
    for item in svc.raw.quarantined(source_id, limit=100):
        payload = item["payload"] or b""
        quarantined.append({
            "id": item["id"], "local_id": item["local_id"], "stage": item["stage"], "reason": item["reason"],
            "run_id": item["run_id"], "created_at": _iso(item["created_at"]), "bytes": len(payload),
            "payload": payload[:4000].decode("utf-8", errors="replace"),
        })
    return {
        "source": {"id": source.id, "name": source.name, "region": source.region, "protocol": source.protocol,
                   "endpoint": source.url or (str(source.path) if source.path else None),
                   "schedule": source.schedule_text, "enabled": source.enabled},
        "paused": _paused(svc.ops.paused().get(source_id)),
        "runs": [run_dict(r) for r in svc.raw.runs(source_id, limit=50)],
        "quarantined": quarantined,
        "quarantine_summary": [{"stage": s["stage"], "reason": s["reason"], "count": s["count"]}
                               for s in svc.raw.quarantine_summary(source_id)],
        "held_deletions": [_hold(h) for h in svc.ops.holds(source_id, status=None, limit=20)],
        "trend": svc.raw.record_trend(50, [source_id]).get(source_id, []),
        "quality": _quality(svc.engine, source_id),
        "audit": [_audit(a) for a in svc.accounts.audit_log(50, target=source_id)],
    }


def _quality(engine, source_id: str) -> dict | None:
    """The newest data-quality report kept with a run of this member (normaliser.quality), if any."""
    newest = QualityStore(engine).history(source_id, 1)
    if not newest:
        return None
    report = dict(newest[0])
    report["created_at"] = _iso(report["created_at"])
    return report


def availability_view(history: int = 20) -> dict:
    """The consortium's survey table from the newest `sources check`, and its history over time.

    Harvest endpoints and OPAC deep links are counted apart: a member whose OPAC link failed while its
    endpoint answers is harvestable, and readers' "find it in the library" links are a separate fault.
    ``regions``/``total`` count endpoints; ``opac`` the members whose OPAC link was tried.
    """
    svc = services()
    checks = svc.ops.probe_checks(history)
    order = list(svc.sources.regions)
    latest = checks[0] if checks else []
    members = [_probe_row(r) for r in latest]
    members.sort(key=lambda m: (m["available"], m["opac_ok"] is not False, m["name"].casefold()))
    return {
        "checked_at": _iso(latest[0]["checked_at"]) if latest else None,
        **_survey(latest, order, lambda r: True, lambda r: bool(r["ok"])),
        "opac": _survey(latest, order, lambda r: r["opac_ok"] is not None, lambda r: bool(r["opac_ok"])),
        "members": members,
        "history": [{"check_id": c[0]["check_id"], "checked_at": _iso(c[0]["checked_at"]),
                     **_survey(c, order, lambda r: True, lambda r: bool(r["ok"])),
                     "opac_total": _survey(c, order, lambda r: r["opac_ok"] is not None,
                                           lambda r: bool(r["opac_ok"]))["total"]}
                    for c in checks],
    }


def _probe_row(r: dict) -> dict:
    source = services().source(r["source"])
    return {"source": r["source"], "name": source.name if source else r["source"], "region": r["region"],
            "protocol": r["protocol"], "available": available(r), "ok": r["ok"], "message": r["message"],
            "plain": plain_error(r["message"]) if not r["ok"] else r["message"], "latency_ms": r["latency_ms"],
            "opac_ok": r["opac_ok"], "opac_message": r["opac_message"],
            "opac_plain": plain_error(r["opac_message"]) if r["opac_ok"] is False else r["opac_message"]}


def _survey(rows: list[dict], order: list[str], counted, up) -> dict:
    """Per region (sources.yaml's order): schools counted, available, unavailable and the rate; a total."""
    by_region: dict[str, dict] = {}
    for row in rows:
        if not counted(row):
            continue
        entry = by_region.setdefault(row["region"], {"region": row["region"], "members": 0, "available": 0,
                                                     "unavailable": 0})
        entry["members"] += 1
        entry["available" if up(row) else "unavailable"] += 1
    ordered = sorted(by_region.values(), key=lambda e: (order.index(e["region"]) if e["region"] in order
                                                        else len(order), e["region"]))
    for entry in ordered:
        entry["rate"] = _rate(entry["available"], entry["members"])
    total = {"region": "Total", "members": sum(e["members"] for e in ordered),
             "available": sum(e["available"] for e in ordered),
             "unavailable": sum(e["unavailable"] for e in ordered)}
    total["rate"] = _rate(total["available"], total["members"])
    return {"regions": ordered, "total": total}


def available(row: dict) -> bool:
    """A member is available when its harvest endpoint answered (its OPAC link is counted apart)."""
    return bool(row["ok"])


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def run_dict(run: dict) -> dict:
    started, finished = run.get("started_at"), run.get("finished_at")
    return {
        "id": run["id"], "status": run["status"], "full": bool(run.get("full")),
        "started_at": _iso(started), "finished_at": _iso(finished),
        "duration_s": (finished - started).total_seconds() if started and finished else None,
        "counts": {k: run.get(k) or 0 for k in ("added", "updated", "deleted", "unchanged", "quarantined")},
        "error": run.get("error"),
    }


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _paused(state: dict | None) -> dict | None:
    if not state:
        return None
    return {"by": state["changed_by"], "at": _iso(state["changed_at"]), "reason": state["reason"]}


def _hold(hold) -> dict:
    return {"id": hold.id, "run_id": hold.run_id, "live": hold.live, "unseen": hold.unseen, "reason": hold.reason,
            "status": hold.status, "created_at": _iso(hold.created_at), "sample": hold.sample,
            "decided_by": hold.decided_by, "decided_at": _iso(hold.decided_at), "applied": hold.applied}


def _audit(entry: dict) -> dict:
    return {**entry, "at": _iso(entry["at"])}


def sparkline(points: list[int], width: int = 96, height: int = 22) -> Markup:
    """A record-count trend as inline SVG, drawn here (the CSP allows no scripts).

    The scale is written beside the line (highest and lowest count), the whole line has a tooltip,
    and each point has its own (hover it: "run 7 of 20: 12,345 records"), in the UI's language: the
    point's text is translated once per line, not once per point.
    """
    if len(points) < 2:
        return Markup("")
    low, high = min(points), max(points)
    span = (high - low) or 1
    step = (width - 2) / (len(points) - 1)
    xy = [(1 + i * step, height - 2 - (p - low) / span * (height - 4)) for i, p in enumerate(points)]
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    first, last, lowest, highest = (format(n, ",") for n in (points[0], points[-1], low, high))
    label = escape(_("records over the last %(n)s runs: %(first)s to %(last)s (lowest %(low)s, highest %(high)s)",
                     n=len(points), first=first, last=last, low=lowest, high=highest))
    shrank = " shrank" if points[-1] < points[0] else ""
    point = str(escape(_("run %(n)s of %(total)s: %(records)s records", n="{n}", total=len(points), records="{records}")))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>{point.format(n=i + 1, records=format(p, ","))}'
                   f'</title></circle>' for i, ((x, y), p) in enumerate(zip(xy, points)))
    full = width + 34
    return Markup(f'<svg class="spark{shrank}" width="{full}" height="{height}" viewBox="0 0 {full} {height}" '
                  f'role="img" aria-label="{label}"><title>{label}</title>'
                  f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{coords}"/>{dots}'
                  f'<text class="scale-high" x="{width + 3}" y="8">{_short(high)}</text>'
                  f'<text class="scale-low" x="{width + 3}" y="{height - 1}">{_short(low)}</text></svg>')


def _short(n: int) -> str:
    """12345 → 12.3k: the sparkline's scale labels fit in 30 px."""
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(n)
