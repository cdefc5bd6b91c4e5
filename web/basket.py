"""Exports for cataloguers and readers, one record at a time or a basket of them.

* ``/record/<id>/export.<fmt>`` — the merged record, or with
  ``?member=<source>:<local id>`` a member's own record as it catalogued it
  (MARC 21 stays MARC 21, CNMARC stays UNIMARC, decoded to UTF-8): the MARC
  every path out gives (:func:`publish.marc.item_marc`, which also decides
  what an unreadable member record becomes).  ``fmt``: ``mrc`` (ISO 2709), ``xml`` (MARCXML),
  ``json`` (MARC-in-JSON), ``ris``, ``bib`` (BibTeX); ``original`` gives a
  member's payload byte for byte as harvested (a Huiwen member's GBK UNIMARC).
* ``/record/<id>/member/<source>/<local id>`` — a member's record as a tagged
  MARC display.
* ``/basket`` — records collected in the session (``POST /basket/add``,
  ``/basket/remove``, ``/basket/clear``; at most :data:`BASKET_MAX`, so the
  signed session cookie stays under browsers' 4 KB), downloaded as one file
  with ``/basket/export.<fmt>``.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from pymarc import Record as MarcRecord

from dedupe.model import Cluster
from normaliser.errors import RecordError
from publish.feed import Item, Published
from publish.marc import item_marc
from publish.marcout import member_family
from publish.writers import to_iso2709, to_marc_json, to_marcxml

from . import citations, usage
from .context import services
from .errors import RecordNotFound
from .present import safe_next

bp = Blueprint("basket", __name__)
BASKET_MAX = 100
#: format → (media type, file extension)
FORMATS = {
    "mrc": ("application/marc", "mrc"),
    "xml": ("application/marcxml+xml", "xml"),
    "json": ("application/json", "json"),
    "ris": ("application/x-research-info-systems", "ris"),
    "bib": ("application/x-bibtex", "bib"),
}


def _cluster(cluster_id: str) -> Cluster:
    svc = services()
    live = svc.clusters.resolve(cluster_id)
    cluster = svc.clusters.get(live) if live else None
    if cluster is None:
        raise RecordNotFound(cluster_id)
    return cluster


def _permalink(cluster_id: str) -> str:
    return url_for("record.record", cluster_id=cluster_id, fmt="html", _external=True)


def merged(cluster: Cluster) -> MarcRecord:
    """The cluster as every path out gives it (MARC 21 on its display record's own MARC when it has some)."""
    item = Published(services().engine).merged_item(cluster.id)
    if item is None or item.deleted:  # withdrawn since it was resolved
        raise RecordNotFound(cluster.id)
    return item_marc(item)


def _member_item(cluster: Cluster, member: str) -> Item:
    """A live member record of ``cluster`` given as ``<source>:<local id>``; 404 for any other."""
    source, _sep, local_id = member.partition(":")
    if (source, local_id) not in set(cluster.members):
        abort(404)
    item = Published(services().engine).member_item(source, local_id)
    if item is None or item.deleted:
        abort(404)
    return item


def _serialise(fmt: str, clusters: list[Cluster], marc_records: list, single: bool = True) -> bytes:
    if fmt == "mrc":
        return b"".join(to_iso2709(r) for r in marc_records)
    if fmt == "xml":
        return to_marcxml(marc_records)
    if fmt == "json":
        items = [to_marc_json(r) for r in marc_records]
        return json.dumps(items[0] if single else items, ensure_ascii=False, indent=1).encode()
    if fmt == "ris":
        return "".join(citations.to_ris(c.record, _permalink(c.id)) for c in clusters).encode()
    return "\n".join(citations.to_bibtex(c.record, citations.bibtex_key(c.record, c.id), _permalink(c.id))
                     for c in clusters).encode()


def _download(body: bytes, fmt: str, name: str) -> Response:
    media, ext = FORMATS[fmt]
    charset = "; charset=utf-8" if fmt != "mrc" else ""
    response = Response(body, mimetype=media)
    response.headers["Content-Type"] = media + charset
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{ext}"'
    return response


@bp.get("/record/<cluster_id>/export.<fmt>")
def export_record(cluster_id: str, fmt: str) -> ResponseReturnValue:
    cluster = _cluster(cluster_id)
    member = request.args.get("member", "")
    usage.count_if_served("download", record=cluster.id, holding_library=member.partition(":")[0] or None)
    if fmt == "original":
        raw = _member_item(cluster, member).raw
        ext = "mrc" if raw.syntax == "iso2709" else "xml"
        response = Response(raw.payload, mimetype="application/marc" if ext == "mrc" else "application/xml")
        name = f"{_safe(raw.source)}-{_safe(raw.local_id)}.{ext}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    if fmt not in FORMATS:
        abort(404)
    if member and fmt in ("mrc", "xml", "json"):
        item = _member_item(cluster, member)
        marc = item_marc(item, Published(services().engine).records)
        return _download(_serialise(fmt, [cluster], [marc]), fmt, f"{_safe(item.source)}-{_safe(item.local_id)}")
    marc_records = [merged(cluster)] if fmt in ("mrc", "xml", "json") else []
    return _download(_serialise(fmt, [cluster], marc_records), fmt, _safe(cluster.id))


@bp.get("/record/<cluster_id>/member/<source>/<path:local_id>")
def member_record(cluster_id: str, source: str, local_id: str) -> ResponseReturnValue:
    """A member's own record as a tagged MARC display, for copy cataloguers (the same MARC as its download)."""
    cluster = _cluster(cluster_id)
    item = _member_item(cluster, f"{source}:{local_id}")
    marc = item_marc(item, Published(services().engine).records)
    try:
        family = member_family(item.raw)
    except RecordError:
        family = "marc21"  # unreadable: shown as the MARC 21 rebuilt from its model
    lib = services().source(source)
    return render_template("member_record.html", cluster=cluster, raw=item.raw, marc=marc, family=family,
                           library=lib.name if lib else source, member=f"{source}:{local_id}")


# -- the basket ---------------------------------------------------------------------------------------------------

def basket_ids() -> list[str]:
    return list(session.get("basket", []))


@bp.post("/basket/add")
def add() -> ResponseReturnValue:
    ids = basket_ids()
    cluster_id = request.form.get("id", "")
    if services().clusters.resolve(cluster_id) and cluster_id not in ids:
        if len(ids) >= BASKET_MAX:
            flash(_("The basket holds at most %(n)d records; download and clear it first.", n=BASKET_MAX))
        else:
            ids.append(cluster_id)
            session["basket"] = ids
    return redirect(safe_next(request.form.get("next")) or url_for("basket.show"), 303)


@bp.post("/basket/remove")
def remove() -> ResponseReturnValue:
    session["basket"] = [i for i in basket_ids() if i != request.form.get("id")]
    return redirect(safe_next(request.form.get("next")) or url_for("basket.show"), 303)


@bp.post("/basket/clear")
def clear() -> ResponseReturnValue:
    session.pop("basket", None)
    return redirect(url_for("basket.show"), 303)


def _basket_clusters() -> list[Cluster]:
    svc = services()
    found = []
    for cluster_id in basket_ids():
        live = svc.clusters.resolve(cluster_id)
        cluster = svc.clusters.get(live) if live else None
        if cluster is not None:
            found.append(cluster)
    return found


@bp.get("/basket")
def show() -> ResponseReturnValue:
    return render_template("basket.html", clusters=_basket_clusters(), formats=FORMATS, limit=BASKET_MAX)


@bp.get("/basket/export.<fmt>")
def export_basket(fmt: str) -> ResponseReturnValue:
    if fmt not in FORMATS:
        abort(404)
    clusters = _basket_clusters()
    usage.count("basket_export", n=len(clusters))
    marc_records = [merged(c) for c in clusters] if fmt in ("mrc", "xml", "json") else []
    return _download(_serialise(fmt, clusters, marc_records, single=False), fmt, "basket")


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80] or "record"


def init_app(app) -> None:
    app.register_blueprint(bp)

    @app.context_processor
    def basket_context() -> dict:
        return {"basket": basket_ids()}
