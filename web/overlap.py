"""Collection overlap (馆藏比对): how much of each member's collection no one else holds, which members
hold the same titles, by class; lists of a member's unique titles and of titles a group holds none of.

``/staff/overlap?region=…|group=…`` reads every live catalogue entry once (``ClusterStore.iter_live``)
and counts, per member of the scope, the entries it holds alone and those shared with 1, 2–5 or 6+
other members (of the whole consortium), the member × member matrix of shared entries (a heatmap) and
the same split by the first letter of the entry's CLC or LCC class.  ``/staff/overlap/unique/<member>.csv``
(for ILL and preservation decisions) and ``/staff/overlap/none.csv?group=…`` (titles held by no member
of a group, for acquisitions) are the downloads.
"""
from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict

from flask import Blueprint, Response, g, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound

from dedupe.model import Cluster

from .context import services
from .staff import require_staff

bp = Blueprint("staff_overlap", __name__, url_prefix="/staff")
bp.before_request(require_staff)
BANDS = ("unique", "1", "2-5", "6+")


def _band(others: int) -> str:
    return "unique" if others == 0 else "1" if others == 1 else "2-5" if others <= 5 else "6+"


def _class_of(cluster: Cluster) -> str:
    """The first letter of the entry's CLC class (else LCC), "?" without one: the classes' main divisions."""
    for scheme in ("clc", "lcc"):
        for c in cluster.record.classifications:
            if c.scheme == scheme and c.value.strip():
                return f"{scheme.upper()} {c.value.strip()[0].upper()}"
    return "?"


def scope_members(region: str, group: str) -> list[str]:
    """The members a view is about: a group's, a region's, or every member, in sources.yaml's order."""
    sources = services().sources
    if group:
        found = next((gr for gr in sources.groups if gr.id == group), None)
        if found is None:
            raise NotFound(_("There is no group %(id)s in sources.yaml.", id=repr(group)))
        return list(found.members)
    return [s.id for s in sources.sources if not region or s.region == region]


def overlap_view(region: str = "", group: str = "") -> dict:
    members = scope_members(region, group)
    wanted = set(members)
    bands = {m: Counter() for m in members}
    matrix = {m: Counter() for m in members}
    classes: dict[str, Counter] = defaultdict(Counter)
    entries = 0
    for cluster in services().clusters.iter_live():
        held = set(cluster.sources)
        inside = held & wanted
        if not inside:
            continue
        entries += 1
        band = _band(len(held) - 1)
        classes[_class_of(cluster)][band] += 1
        for m in inside:
            bands[m][band] += 1
            for other in inside:
                matrix[m][other] += 1
    peak = max((matrix[a][b] for a in members for b in members if a != b), default=0)
    return {
        "region": region, "group": group, "entries": entries, "bands": list(BANDS),
        "members": [{"source": m, "held": matrix[m][m], **{b: bands[m][b] for b in BANDS},
                     "unique_share": round(100 * bands[m]["unique"] / matrix[m][m], 1) if matrix[m][m] else None}
                    for m in members],
        "matrix": [[matrix[a][b] for b in members] for a in members],
        "peak": peak,
        "classes": [{"class": c, **{b: n[b] for b in BANDS}} for c, n in sorted(classes.items())],
    }


@bp.get("/overlap", defaults={"fmt": "html"})
@bp.get("/overlap.json", defaults={"fmt": "json"})
def overlap(fmt: str):
    svc = services()
    data = overlap_view(request.args.get("region", "").strip(), request.args.get("group", "").strip())
    if fmt == "json":
        return jsonify(data)
    return render_template("staff_overlap.html", user=g.staff, regions=svc.sources.regions,
                           groups=svc.sources.groups, **data)


@bp.get("/overlap/unique/<source_id>.csv")
def unique_titles(source_id: str):
    """The entries only ``source_id`` holds: id, title, year, ISBNs, class."""
    if services().source(source_id) is None:
        raise NotFound(_("There is no member %(id)s in sources.yaml.", id=repr(source_id)))
    rows = (c for c in services().clusters.iter_live() if set(c.sources) == {source_id})
    return _csv(rows, f"unique-{source_id}.csv")


@bp.get("/overlap/none.csv")
def held_by_none():
    """The entries no member of the group (or region) holds: what it could acquire or borrow."""
    wanted = set(scope_members(request.args.get("region", "").strip(), request.args.get("group", "").strip()))
    rows = (c for c in services().clusters.iter_live() if not set(c.sources) & wanted)
    return _csv(rows, "held-by-none.csv")


def _csv(clusters, name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["entry", "title", "year", "isbn", "class", "held_by"])
    for c in clusters:
        writer.writerow([c.id, c.record.full_title, c.record.year or "", " ".join(c.record.isbns), _class_of(c),
                         " ".join(c.sources)])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}"})
