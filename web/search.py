"""The search page (``/``, ``/search``) and its JSON twin (``/search.json``).

Query parameters: ``q`` (words, "phrases", -excluded, or an ISBN), advanced
``title``/``author``/``subject``/``publisher``/``isbn``/``issn``/``callnumber``/
``classification``, ``year_from``/``year_to``, ``f=<facet>:<value>`` (repeatable
facet filters), ``scope`` (``region:<name>``, ``group:<id>`` from sources.yaml's
``groups``, or ``library:<id>``), ``sort``, ``page`` and ``expand=subject`` (the subject facet is counted
only when the reader expands it or filters on a subject: :data:`index.backend.ON_REQUEST`).
Anything malformed is ignored rather than refused: readers edit URLs.  Only size is refused: more than
``MAX_FILTERS`` filters is a 400 (:mod:`web.limits`), as is a URL longer than ``MAX_URL``.
"""
from __future__ import annotations

import math
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from index.backend import FACETS, FIELDS, MAX_WINDOW, ON_REQUEST, SORTS, SearchQuery, page_facets
from index.querytext import as_isbn13
from normaliser.text import fold_for_search

from . import citations, reader, usage
from .context import services
from .limits import check_filters
from .present import current_args, facet_label

bp = Blueprint("search", __name__)
MAX_QUERY = 500
MAX_SUGGEST = 100
RESULTS_KEY = "results"
SORT_LABELS = {"relevance": _l("Relevance"), "-year": _l("Newest first"), "year": _l("Oldest first"),
               "title": _l("Title A–Z")}
#: The link that asks for a facet counted only on request.
EXPAND_LABELS = {"subject": _l("Show subjects")}


@bp.get("/", defaults={"fmt": "html"}, endpoint="home")
@bp.get("/search", defaults={"fmt": "html"}, endpoint="search")
@bp.get("/search.json", defaults={"fmt": "json"}, endpoint="search")
def search(fmt: str):
    data, isbn_lookup = run_search()
    if request.args.get("q", "").strip():
        usage.count("search")
    if fmt == "json":
        return jsonify(data)
    if isbn_lookup and data["records"] == 1:
        return redirect(url_for("record.record", cluster_id=data["hits"][0]["id"], fmt="html"))
    remember_results(data)
    return render_template("search.html", **data, sort_labels=SORT_LABELS, scopes=scope_options())


@bp.get("/suggest.json", endpoint="suggest")
def suggest():
    """Autocomplete for the search box: ``{q, suggestions: [{text, kind, url}]}``, titles, authors and subjects
    beginning with ``q`` (Han or pinyin too), most-held first; ``limit`` 1–20 (default 8)."""
    text = request.args.get("q", "")[:MAX_SUGGEST]
    limit = min(max(_int(request.args.get("limit"), 8), 1), 20)
    items = services().backend.suggest(text, limit)
    for item in items:
        field = {"title": "q", "author": "author", "subject": "subject"}[item["kind"]]
        item["url"] = url_for("search.search", fmt="html", **{field: item["text"]})
    response = jsonify({"q": text, "suggestions": items})
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def remember_results(data: dict) -> None:
    """The reader's last results page, for the record page's "back to results" and previous / next: the
    search's parameters (without the page), where the page starts and its record ids (in the session)."""
    args = request.args
    session[RESULTS_KEY] = {"ctx": urlencode([(k, v) for k, vs in args.lists() if k != "page" for v in vs]),
                            "offset": (data["page"] - 1) * data["page_size"], "ids": [h["id"] for h in data["hits"]]}


def query_from(args) -> SearchQuery:
    """The backend query for a search page's parameters (``q``, fields, ``f``, years, ``sort``, ``scope``,
    ``page``, ``expand``); anything malformed is ignored."""
    page_size = int(current_app.config["PAGE_SIZE"])
    fields = {name: args.get(name, "")[:MAX_QUERY] for name in FIELDS if args.get(name, "").strip()}
    filters: dict[str, list[str]] = {}
    check_filters(args.getlist("f"))
    for item in args.getlist("f"):
        name, _, value = item.partition(":")
        if name in FACETS and value:
            filters.setdefault(name, []).append(value)
    year_from, year_to = _year(args.get("year_from")), _year(args.get("year_to"))
    if year_from or year_to:
        filters.setdefault("year", []).append(f"{year_from}-{year_to}")
    sort = args.get("sort", "relevance")
    page = min(max(_int(args.get("page"), 1), 1), MAX_WINDOW // page_size)
    return SearchQuery(text=args.get("q", "")[:MAX_QUERY], filters=filters, fields=fields,
                       sort=sort if sort in SORTS else "relevance", any_of=read_scope(args.get("scope", ""))[1],
                       offset=(page - 1) * page_size, limit=page_size, group_works=True,
                       facets=page_facets(filters, args.getlist("expand")))


def run_search() -> tuple[dict, bool]:
    """Read the request, search, and shape the answer both the page and the JSON twin show."""
    args = request.args
    page_size = int(current_app.config["PAGE_SIZE"])
    max_page = MAX_WINDOW // page_size
    query = query_from(args)
    text, fields, filters, sort = query.text, query.fields, query.filters, query.sort
    year_from, year_to = _year(args.get("year_from")), _year(args.get("year_to"))
    page = query.offset // page_size + 1
    scope = read_scope(args.get("scope", ""))[0]
    svc = services()
    results = svc.backend.search(query)
    names = {s.id: reader.name_of(s) for s in svc.sources.sources}
    selected = {(n, v) for n, vs in filters.items() for v in vs}
    data = {
        "query": {"q": text, "fields": fields, "year_from": year_from, "year_to": year_to, "sort": sort,
                  "scope": scope,
                  "filters": [{"name": n, "value": v, "label": _label(n, v, names)} for n, v in
                              sorted(selected)]},
        # works (editions and formats of one work are one result, index.works); "about" above a few thousand
        "total": results.total,
        "total_is_estimate": results.total_is_estimate,
        "records": results.records if results.records is not None else results.total,
        "page": page,
        "pages": min(math.ceil(results.total / page_size), max_page) if results.total else 0,
        "page_size": page_size,
        "took_ms": results.took_ms,
        # "Did you mean": the words as typed found nothing; these results are for the corrected query
        "suggestion": results.suggestion,
        "corrected": results.corrected,
        "suggestion_url": url_for("search.search", fmt="html", **_with_text(args, results.suggestion)) if results.suggestion
        else None,
        "hits": [hit_summary(h.doc) for h in results.hits],
        "works": [work_summary(h) for h in results.hits],
        "facets": {name: [{"value": value, "label": _label(name, value, names), "count": count,
                           "selected": (name, value) in selected}
                          for value, count in results.facets.get(name, [])]
                   for name in FACETS},
        # facets not counted for this page, each with the link that counts it
        "expandable": {name: {"label": str(EXPAND_LABELS[name]), "url": _expand_url(name)}
                       for name in ON_REQUEST if name not in query.facets},
    }
    isbn_lookup = bool(as_isbn13(fold_for_search(text)) or (set(fields) == {"isbn"} and not text.strip()))
    return data, isbn_lookup


def _expand_url(name: str) -> str:
    """This page with facet ``name`` counted too (``expand`` stays on as the reader refines the search)."""
    args = current_args()
    args["expand"] = [*args.get("expand", []), name]
    return url_for("search.search", fmt="html", **args)


def read_scope(value: str) -> tuple[str, dict[str, list[str]]]:
    """``region:Nanjing`` / ``group:xianlin`` / ``library:nju`` → the backend's ``any_of``; unknown → no scope."""
    svc = services()
    kind, _, name = value.partition(":")
    if kind == "region" and name in {s.region for s in svc.sources.sources}:
        return value, {"region": [name]}
    if kind == "library" and svc.source(name):
        return value, {"library": [name]}
    group = next((g for g in svc.sources.groups if g.id == name), None) if kind == "group" else None
    if group is not None:
        return value, {"library": list(group.members)}
    return "", {}


def scope_options() -> list[dict]:
    """What the scope selector offers: the regions, then the named groups of libraries."""
    svc = services()
    regions = list(dict.fromkeys([*svc.sources.regions, *(s.region for s in svc.sources.sources)]))
    return ([{"value": f"region:{r}", "label": reader.region_name(r), "kind": "region"} for r in regions]
            + [{"value": f"group:{g.id}", "label": reader.name_of(g), "kind": "group"} for g in svc.sources.groups])


def _label(name: str, value: str, library_names: dict[str, str]) -> str:
    """A facet value as shown: libraries and regions in the UI's language."""
    return reader.region_name(value) if name == "region" else facet_label(name, value, library_names)


def work_summary(hit) -> dict:
    """A work as the list shows it: its best-ranked edition's row, the engine's other editions of it (format,
    year, link) in rank order, and the formats among them."""
    head = hit_summary(hit.doc)
    head["editions"] = [{"id": e["id"], "url": url_for("record.record", cluster_id=e["id"], fmt="html"),
                         **{k: e.get(k) for k in ("title", "title_original", "format", "year", "publisher")},
                         "library_count": e.get("library_count", 0)} for e in hit.editions]
    head["formats"] = list(dict.fromkeys([head["format"], *(e["format"] for e in head["editions"])]))
    return head


def hit_summary(doc: dict) -> dict:
    """One result row: what the list shows, with holdings named from sources.yaml and OPAC links."""
    svc = services()
    isbn = doc.get("isbns", [None])[0] if doc.get("isbns") else None
    holdings = []
    for h in doc.get("holdings", []):
        source = svc.source(h["source"])
        holdings.append({
            "source": h["source"],
            "library": reader.name_of(source) if source else h.get("library", h["source"]),
            "region": reader.region_name(source.region) if source else h.get("region", ""),
            "call_number": h.get("call_number", ""),
            "location": h.get("location", ""),
            "opac_url": source.opac_link(h.get("local_id") or None, isbn) if source else None,
        })
    return {
        "id": doc["id"],
        "url": url_for("record.record", cluster_id=doc["id"], fmt="html"),
        "title": doc.get("title", ""),
        # the title in its own script (an 880 beside a romanised 245): what a Chinese reader looks for
        "title_original": doc.get("title_original", ""),
        "author": doc.get("author", ""),
        "year": doc.get("year"),
        "format": doc.get("format", ""),
        "languages": doc.get("languages", []),
        "publisher": doc.get("publisher", ""),
        "holdings": holdings,
        "library_count": doc.get("library_count", len({h["source"] for h in holdings})),
        "work_key": doc.get("work_key", ""),
        "coins": citations.coins_title(citations.record_from_document(doc),
                                       rft_id=url_for("record.record", cluster_id=doc["id"], fmt="html",
                                                      _external=True)),
    }


def _with_text(args, text: str) -> dict:
    """The request's parameters with ``q`` replaced and the page reset (a corrected query starts at page 1)."""
    params = {k: args.getlist(k) for k in args if k not in ("q", "page")}
    params["q"] = text
    return params


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _year(value) -> str:
    value = (value or "").strip()
    return value if value.isdigit() and len(value) <= 4 else ""
