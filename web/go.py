"""Counting redirects: a reader's click through to a member's OPAC or to an ILL request.

``/go/opac/<entry>/<member>[?record=<local id>]`` and ``/go/ill/<entry>[?home=…&volume=…&year=…]``
count the click (usage events ``opac_click`` and ``ill_request``, per holding library and entry, no
reader id: :mod:`web.usage_store`) and then redirect.  The target is never read from the request:
it is computed again from the catalogue entry and ``sources.yaml`` (the member's OPAC deep-link
template, the home library's or the consortium's ILL URL) exactly as the record page computes it,
so these routes cannot be used as an open redirect.  An on-site target (a relative ILL URL) goes
through :func:`web.present.safe_next`; an off-site one must be an http(s) URL.  An entry, member or
copy the catalogue does not have is a 404, and nothing is counted.
"""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound

from dedupe.model import Cluster

from . import holdings as serial_holdings
from . import reader, usage
from .context import services
from .present import http_url, safe_next
from .record import holdings_by_library

bp = Blueprint("go", __name__, url_prefix="/go")


@bp.get("/opac/<entry>/<member>")
def opac(entry: str, member: str):
    """To ``member``'s OPAC record of ``entry`` (the copy ``record`` when given, else its first link)."""
    cluster = _cluster(entry)
    group = next((g for g in holdings_by_library(cluster) if g["source"] == member), None)
    if group is None:
        raise NotFound(_("%(library)s holds no copy of this record.", library=reader.library_name(member)))
    wanted = request.args.get("record")
    url = next((i["opac_url"] for i in group["items"] if i["local_id"] == wanted and i["opac_url"]), None)
    url = url or group["opac_url"]
    if not url:
        raise NotFound(_("%(library)s has no catalogue link for this record.", library=reader.library_name(member)))
    return _go(url, "opac_click", cluster.id, member)


@bp.get("/ill/<entry>")
def ill(entry: str):
    """To the ILL request form for ``entry`` (the reader's home library's service, else the consortium's)."""
    cluster = _cluster(entry)
    home = services().source(request.args.get("home", "")) or reader.home_library()
    permalink = url_for("record.record", cluster_id=cluster.id, fmt="html", _external=True)
    url = reader.ill_link(cluster.record, home, permalink, serial_holdings.wanted_issue(request.args))
    if not url:
        raise NotFound(_("No interlibrary loan service is configured."))
    return _go(url, "ill_request", cluster.id, None)


def _cluster(entry: str) -> Cluster:
    svc = services()
    live = svc.clusters.resolve(entry)
    cluster = svc.clusters.get(live) if live else None
    if cluster is None:
        raise NotFound(_("There is no record %(id)s in the catalogue.", id=repr(entry)))
    return cluster


def _go(url: str, event: str, entry: str, member: str | None):
    """Count ``event`` and redirect to ``url``: an http(s) URL from the configuration, or a path on this site."""
    target = http_url(url) or safe_next(url)
    if not target:
        raise NotFound(_("The configured link %(url)s is not a web address.", url=repr(url)))
    usage.count(event, holding_library=member, record=entry)
    return redirect(target, 302)
