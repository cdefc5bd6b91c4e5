"""The record page (``/record/<id>``) and its JSON twin (``/record/<id>.json``).

Ids are permalinks: an id retired by a merge answers 301 to the live cluster
that now holds its records; an id never seen (or withdrawn everywhere) is 404.
The page reads the cluster from the store, not the index, so it is exact even
while the index catches up.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from dedupe.model import Cluster
from index.documents import holdings_of, original_title
from normaliser.text import has_han

from . import citations, holdings as serial_holdings, links, reader, usage
from .context import services
from .errors import RecordNotFound

bp = Blueprint("record", __name__)

#: which 880 parallel fields are shown beside which part of the description
PARALLEL_GROUPS = {
    "title": ("245", "246", "240", "130"),
    "contributors": ("100", "110", "111", "700", "710", "711"),
    "edition": ("250",),
    "publication": ("260", "264"),
    "series": ("490", "800", "810", "830"),
    "subjects": ("600", "610", "611", "630", "650", "651"),
    "summary": ("520",),
    "notes": tuple(f"5{n:02d}" for n in range(100) if n != 20),
}


@bp.get("/record/<cluster_id>", defaults={"fmt": "html"})
@bp.get("/record/<cluster_id>.json", defaults={"fmt": "json"})
def record(cluster_id: str, fmt: str) -> ResponseReturnValue:
    svc = services()
    live = svc.clusters.resolve(cluster_id)
    if live is None:
        raise RecordNotFound(cluster_id)
    if live != cluster_id:
        return redirect(url_for("record.record", cluster_id=live, fmt=fmt), 301)
    cluster = svc.clusters.get(live)
    if cluster is None:  # withdrawn between resolve and get
        raise RecordNotFound(cluster_id)
    data = record_view(cluster)
    usage.count("record_view", record=cluster.id)
    if fmt == "json":
        return jsonify(data)
    data["browse"] = results_context(cluster.id)
    return render_template("record.html", **data,
                           json_ld=citations.json_ld(cluster.record, data["permalink"], data["holdings"]))


def record_view(cluster: Cluster) -> dict:
    svc = services()
    rec = cluster.record
    consortium = svc.sources.consortium
    permalink = _absolute(url_for("record.record", cluster_id=cluster.id, fmt="html"))
    home = svc.source(request.args.get("home", "")) or reader.home_library()
    wanted = serial_holdings.wanted_issue(request.args)
    holdings = reader.order_holdings(holdings_by_library(cluster), home)
    serial_holdings.annotate(holdings, rec.holdings, wanted["year"])
    home_id = home.id if home else None
    description = rec.to_dict()
    description.pop("holdings")
    description.pop("warnings")
    description["full_title"] = rec.full_title
    description["main_author"] = rec.main_author
    return {
        "id": cluster.id,
        "permalink": permalink,
        "record": description,
        "parallel": parallel_groups(cluster),
        "heading_original": heading_original(cluster),
        "holdings": holdings,
        "library_count": len(holdings),
        "home_id": home_id,
        "get_it": reader.get_it(rec, holdings, home, permalink, wanted),
        "online": serial_holdings.online_access(holdings, rec.holdings, rec.urls, home_id),
        "wanted": wanted,
        "lenders": serial_holdings.lenders(holdings, home_id, wanted["year"]),
        "members": [{"source": s, "local_id": i, "library": reader.library_name(s),
                     "format": _member_format(s)} for s, i in cluster.members],
        "other_editions": other_editions(cluster),
        # the dedupe evidence ("author:ruskin|1900, words:…") is for cataloguers, not readers
        "match_keys": cluster.match_keys if _is_staff() else [],
        "citation": links.citation(rec, permalink),
        "links": {
            "ill": reader.ill_link(rec, home, permalink, wanted),
            "ask": links.ask_url(consortium.ask_url, rec, permalink),
            "login": _login_link(),
        },
    }


def holdings_by_library(cluster: Cluster) -> list[dict]:
    """Holdings grouped by member library, each copy with its OPAC deep link."""
    svc = services()
    rec = cluster.record
    isbn = rec.isbns[0] if rec.isbns else None
    groups: dict[str, dict] = {}
    for h in holdings_of(cluster, svc.libraries()):
        source = svc.source(h["source"])
        control = rec.control_number if rec.source == h["source"] else None
        opac = source.opac_link(h["local_id"] or None, isbn, control or None) if source else None
        group = groups.setdefault(h["source"], {
            "source": h["source"], "library": reader.library_name(h["source"], h["library"]),
            "region": reader.region_name(h["region"]), "opac_url": opac, "items": []})
        group["opac_url"] = group["opac_url"] or opac
        group["items"].append({k: h[k] for k in ("call_number", "location", "status", "branch", "volume",
                                                   "local_id")} | {"opac_url": opac})
    return list(groups.values())


def other_editions(cluster: Cluster) -> list[dict]:
    """The other editions of the same work (clusters sharing dedupe's work key), newest first."""
    return [{"id": c.id, "title": c.record.full_title, "edition": c.record.edition, "year": c.record.year,
             "format": c.record.format or "other",
             "publisher": c.record.publisher, "library_count": len(set(c.sources)),
             "url": url_for("record.record", cluster_id=c.id, fmt="html")}
            for c in services().clusters.other_editions(cluster)]


def results_context(cluster_id: str) -> dict | None:
    """"Back to results" and the previous / next result, when the record is in the reader's last results
    (:func:`web.search.remember_results`), or was reached from them by previous / next (``pos``)."""
    from .search import RESULTS_KEY
    last = session.get(RESULTS_KEY)
    if not isinstance(last, dict) or not isinstance(last.get("ids"), list):
        return None
    ctx = str(last.get("ctx", ""))[:2000]
    pos = request.args.get("pos", "")
    if cluster_id in last["ids"]:
        pos = str(int(last.get("offset", 0)) + last["ids"].index(cluster_id))
    if not pos.isdigit():
        return None
    from urllib.parse import parse_qsl

    from werkzeug.datastructures import MultiDict

    from .search import query_from
    args = MultiDict(parse_qsl(ctx, keep_blank_values=True))
    page_size = int(current_app.config["PAGE_SIZE"])
    index = int(pos)
    query = query_from(args)
    query.offset, query.limit, query.facets = max(index - 1, 0), 3, ()
    hits = [h.id for h in services().backend.search(query).hits]
    mine = index - query.offset
    if mine >= len(hits) or hits[mine] != cluster_id:
        return {"back": url_for("search.search", fmt="html", **_page_args(args, index // page_size + 1))}

    def link(at: int) -> str | None:
        if 0 <= at - query.offset < len(hits) and at != index:
            return url_for("record.record", cluster_id=hits[at - query.offset], fmt="html", pos=at)
        return None
    return {"back": url_for("search.search", fmt="html", **_page_args(args, index // page_size + 1)),
            "prev": link(index - 1) if index > 0 else None, "next": link(index + 1), "position": index + 1}


def _page_args(args, page: int) -> dict:
    params = {k: args.getlist(k) for k in args if k != "page"}
    if page > 1:
        params["page"] = str(page)
    return params


def _is_staff() -> bool:
    """A signed-in staff account (the staff console's session), still enabled."""
    from .sessions import signed_in
    name = signed_in()
    accounts = getattr(services(), "accounts", None)
    return isinstance(name, str) and accounts is not None and accounts.user(name) is not None


def _login_link() -> str | None:
    """Our own sign-on page when a member offers OIDC or CAS, else the consortium's ``login_url``."""
    if session.get("reader"):
        return None
    if any(s.sign_on for s in services().sources.sources):
        return url_for("auth.login", next=request.full_path.rstrip("?"))
    return links.login_url(services().sources.consortium.login_url, _absolute(request.full_path.rstrip("?")))


def _member_format(source_id: str) -> str:
    source = services().source(source_id)
    return source.format if source else "marc21"


def heading_original(cluster: Cluster) -> str:
    """The title in its own script (the 880 paired with 245) when the 245 is romanised; else ""."""
    rec = cluster.record
    if has_han(rec.full_title):
        return ""
    original = original_title(rec)
    return original if has_han(original) else ""


def parallel_groups(cluster: Cluster) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {name: [] for name in (*PARALLEL_GROUPS, "other")}
    for p in cluster.record.parallel:
        name = next((n for n, tags in PARALLEL_GROUPS.items() if p.tag in tags), "other")
        if p.text and p.text not in out[name]:
            out[name].append(p.text)
    return out


def _absolute(path: str) -> str:
    base = services().sources.consortium.base_url
    return (base.rstrip("/") + path) if base else request.host_url.rstrip("/") + path
