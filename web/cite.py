"""Formatted references for readers: a record's or the basket's citation in APA, MLA, Chicago or GB/T 7714.

The formatting is ``citations.cite``'s (CSL through citeproc-py); this module
only finds the clusters and answers in the shape asked for: JSON with every
style for the record page's script and API users, plain text of one style
for pasting into a paper.  A citation counts as a download in the usage
statistics (it is the record leaving the catalogue), the basket's as a basket export.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify
from flask.typing import ResponseReturnValue

from . import citations, usage
from .basket import basket_ids
from .context import services
from .errors import RecordNotFound

bp = Blueprint("cite", __name__)


@bp.app_context_processor
def _style_labels() -> dict:
    """The styles' names for the record page's and the basket's "Cite" lists."""
    return {"cite_labels": citations.STYLE_LABELS}


def _clusters(cluster_ids: list[str]) -> list:
    """The live clusters for these ids (merged ones followed), in order; the unknown left out."""
    svc = services()
    found = []
    for cluster_id in cluster_ids:
        live = svc.clusters.resolve(cluster_id)
        cluster = svc.clusters.get(live) if live else None
        if cluster is not None:
            found.append(cluster)
    return found


def _all_styles(clusters: list) -> dict:
    pairs = [(c.record, c.id) for c in clusters]
    return {style: {"label": citations.STYLE_LABELS[style],
                    "text": citations.cite(pairs, style),
                    "html": citations.cite(pairs, style, html=True)}
            for style in citations.CSL_STYLES}


def _text(clusters: list, style: str) -> Response:
    if style not in citations.CSL_STYLES:
        abort(404, description=f"no citation style {style!r}; offered: {', '.join(citations.CSL_STYLES)}")
    entries = citations.cite([(c.record, c.id) for c in clusters], style)
    return Response("".join(entry + "\n" for entry in entries), mimetype="text/plain")


def _one(cluster_id: str) -> list:
    clusters = _clusters([cluster_id])
    if not clusters:
        raise RecordNotFound(cluster_id)
    return clusters


@bp.get("/record/<cluster_id>/cite.json")
def record_json(cluster_id: str) -> ResponseReturnValue:
    """``{"id", "styles": {style: {"label", "text": [entry], "html": [entry]}}}`` for one record."""
    clusters = _one(cluster_id)
    usage.count_if_served("download", record=clusters[0].id)
    return jsonify({"id": clusters[0].id, "styles": _all_styles(clusters)})


@bp.get("/record/<cluster_id>/cite/<style>.txt")
def record_text(cluster_id: str, style: str) -> ResponseReturnValue:
    clusters = _one(cluster_id)
    usage.count_if_served("download", record=clusters[0].id)
    return _text(clusters, style)


@bp.get("/basket/cite.json")
def basket_json() -> ResponseReturnValue:
    """The basket as a reference list in every style, in the basket's order (numbered styles number so)."""
    clusters = _clusters(basket_ids())
    usage.count("basket_export", n=len(clusters))
    return jsonify({"ids": [c.id for c in clusters], "styles": _all_styles(clusters)})


@bp.get("/basket/cite/<style>.txt")
def basket_text(style: str) -> ResponseReturnValue:
    clusters = _clusters(basket_ids())
    usage.count_if_served("basket_export", n=len(clusters))
    return _text(clusters, style)
