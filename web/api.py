"""The JSON API under ``/api/v1``, described by OpenAPI 3 at ``/api/v1/openapi.json``.

For portals and scripts: search with facets, a record and its holdings, the
clusters changed since a time (a change feed with deletions), the member
libraries, and streamed bulk exports for API-key holders.  Every answer is
JSON (errors too: ``{"error", "status"}``); :mod:`web.access` does the keys,
the rate limit and CORS.

Config keys: ``API_KEYS`` (keys or ``sha256:<hex>`` digests; a list or a
comma-separated string), ``API_RATE``/``API_BURST`` (anonymous requests per
second / burst, default 5/30), ``API_KEY_RATE``/``API_KEY_BURST`` (default
50/200), ``CORS_ORIGINS`` (origins allowed to call the API from a browser,
list or comma-separated; ``*`` for any).
"""
from __future__ import annotations

import re
from datetime import datetime

from flask import Blueprint, Response, current_app, g, jsonify, request, stream_with_context, url_for
from werkzeug.exceptions import HTTPException

from dedupe.model import Cluster
from index.backend import FACETS, FIELDS, MAX_WINDOW, SORTS, SearchQuery
from publish.export import EXTENSIONS, FORMATS as EXPORT_FORMATS, MEDIA_TYPES, export_chunks, gzip_chunks
from publish.feed import Published, Window, find_set

from . import access, usage
from .limits import check_filters, client_address
from .context import services
from .openapi import api_index, openapi_document
from .present import http_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_LIMIT = 100
MAX_TEXT = 500
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    response = jsonify({"error": exc.message, "status": exc.status})
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    response = jsonify({"error": exc.description or exc.name, "status": exc.code})
    response.status_code = exc.code or 500
    return response


# -- keys, rate limit, CORS -------------------------------------------------------

def _limiter() -> access.RateLimiter:
    ext = current_app.extensions
    if "unioncat_rate" not in ext:
        ext["unioncat_rate"] = access.RateLimiter()
        ext["unioncat_api_keys"] = access.key_digests(current_app.config.get("API_KEYS"))
    return ext["unioncat_rate"]


def _given_key() -> str | None:
    key = request.headers.get("X-API-Key")
    auth = request.headers.get("Authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key or None


@bp.before_request
def _admit() -> None:
    if request.method == "OPTIONS":
        return None
    limiter = _limiter()
    g.api_key = None
    cfg = current_app.config
    anonymous = "ip:" + client_address(), float(cfg.get("API_RATE", 5)), int(cfg.get("API_BURST", 30))
    given = _given_key()
    if given is not None:
        g.api_key = access.known_key(given, current_app.extensions["unioncat_api_keys"])
        if g.api_key is None:  # a wrong key spends the address's allowance: keys are not guessed at full speed
            _spend(limiter, *anonymous)
            raise ApiError(401, "unknown API key")
    if g.api_key:
        _spend(limiter, "key:" + g.api_key, float(cfg.get("API_KEY_RATE", 50)), int(cfg.get("API_KEY_BURST", 200)))
    else:
        _spend(limiter, *anonymous)
    return None


def _spend(limiter: access.RateLimiter, client: str, rate: float, burst: int) -> None:
    wait = limiter.take(client, rate, burst)
    if wait:
        raise ApiError(429, f"rate limit exceeded: {rate:g} requests per second (burst {burst}); "
                            f"retry after {access.retry_after(wait)}s", {"Retry-After": access.retry_after(wait)})


@bp.after_request
def _cors(response: Response) -> Response:
    origin = access.cors_origin(request.headers.get("Origin"), current_app.config.get("CORS_ORIGINS"))
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = "X-API-Key, Authorization"
        response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        response.headers["Access-Control-Expose-Headers"] = "Retry-After, X-Next-After"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers.add("Vary", "Origin")
    return response


# -- parameters -------------------------------------------------------------------

def _int_arg(name: str, default: int, low: int, high: int) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number") from None
    if not low <= number <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return number


def _text_arg(name: str) -> str:
    value = request.args.get(name, "")
    if len(value) > MAX_TEXT:
        raise ApiError(400, f"{name} is longer than {MAX_TEXT} characters")
    return value


def _bool_arg(name: str) -> bool:
    value = request.args.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(400, f"{name} must be true or false")
    return value in ("true", "1")


# -- endpoints ---------------------------------------------------------------------

@bp.get("/", strict_slashes=False)
def index():
    """``/api/v1`` and ``/api/v1/``: where a client starts (links to the description and every endpoint)."""
    return jsonify(api_index(request.host_url.rstrip("/") + "/api/v1"))


@bp.get("/openapi.json")
def openapi() -> Response:
    example = next(services().clusters.iter_live(batch=1), None)
    return jsonify(openapi_document(request.host_url.rstrip("/") + "/api/v1", example.id if example else None))


@bp.get("/search")
def search() -> Response:
    text = _text_arg("q")
    fields = {name: _text_arg(name) for name in FIELDS if _text_arg(name).strip()}
    filters: dict[str, list[str]] = {}
    check_filters(request.args.getlist("filter"))
    for item in request.args.getlist("filter"):
        name, sep, value = item.partition(":")
        if not sep or name not in FACETS or not value or len(value) > MAX_TEXT:
            raise ApiError(400, f"filter {item[:80]!r}: expected <facet>:<value> with a facet in {', '.join(FACETS)}")
        filters.setdefault(name, []).append(value)
    sort = request.args.get("sort", "relevance")
    if sort not in SORTS:
        raise ApiError(400, f"sort must be one of {', '.join(SORTS)}")
    offset = _int_arg("offset", 0, 0, MAX_WINDOW)
    limit = _int_arg("limit", 20, 0, MAX_LIMIT)
    limit = min(limit, MAX_WINDOW - offset)
    facet_size = _int_arg("facet_size", 10, 1, 100)
    results = services().backend.search(SearchQuery(text=text, filters=filters, fields=fields, sort=sort,
                                                    offset=offset, limit=limit, facet_size=facet_size))
    return jsonify({
        "total": results.total, "offset": offset, "limit": limit,
        "hits": [_hit(h.doc) for h in results.hits],
        "facets": {name: [{"value": str(v), "count": int(n)} for v, n in results.facets.get(name, [])]
                   for name in FACETS},
    })


def _hit(doc: dict) -> dict:
    return {
        "id": doc["id"], "title": doc.get("title", ""), "author": doc.get("author", ""), "year": doc.get("year"),
        "format": doc.get("format", ""), "languages": list(doc.get("languages", [])),
        "publisher": doc.get("publisher", ""), "isbns": [i for i in doc.get("isbns", []) if len(i) == 13],
        "libraries": list(doc.get("libraries", [])), "library_count": int(doc.get("library_count", 0)),
        "url": url_for("api.record", cluster_id=doc["id"], _external=True),
    }


def _live_cluster(cluster_id: str) -> Cluster:
    svc = services()
    live = svc.clusters.resolve(cluster_id)
    if live is None:
        raise ApiError(404, f"there is no record {cluster_id!r}")
    if live != cluster_id:
        target = url_for(request.endpoint, cluster_id=live, _external=True)
        raise ApiError(301, f"{cluster_id} was merged into {live}", {"Location": target})
    cluster = svc.clusters.get(live)
    if cluster is None:
        raise ApiError(404, f"there is no record {cluster_id!r}")
    return cluster


def _holdings(cluster) -> list[dict]:
    svc = services()
    out = []
    for h in cluster.record.holdings:
        source = svc.source(h.source)
        out.append({"source": h.source, "library_name": source.name if source else h.source,
                    "region": source.region if source else "", "local_id": h.local_id, "library": h.library,
                    "location": h.location, "call_number": h.call_number, "barcode": h.barcode,
                    "status": h.status, "volume": h.volume, "note": h.note, "holdings_id": h.holdings_id,
                    "summary": h.summary, "coverage": [list(c) for c in h.coverage],
                    "urls": [u for u in map(http_url, h.urls) if u]})
    return out


@bp.get("/records/<cluster_id>")
def record(cluster_id: str) -> Response:
    cluster = _live_cluster(cluster_id)
    usage.count_served("api_record", 1, dict.fromkeys(set(cluster.sources), 1), record=cluster.id)
    data = cluster.record.to_dict()
    data.pop("holdings", None)
    data.pop("warnings", None)
    return jsonify({"id": cluster.id, "record": data,
                    "members": [{"source": s, "local_id": l} for s, l in cluster.members],
                    "match_keys": list(cluster.match_keys), "holdings": _holdings(cluster)})


@bp.get("/records/<cluster_id>/holdings")
def holdings(cluster_id: str) -> Response:
    cluster = _live_cluster(cluster_id)
    return jsonify({"id": cluster.id, "holdings": _holdings(cluster)})


@bp.get("/changes")
def changes() -> Response:
    since_text = request.args.get("since")
    since = None
    if since_text is not None:
        try:
            if not _DATE_TIME.match(since_text):
                raise ValueError(since_text)
            since = datetime.fromisoformat(since_text.upper().replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "since must be an RFC 3339 date-time, e.g. 2026-01-31T00:00:00Z") from None
    after = _int_arg("after", 0, 0, 2 ** 62)
    limit = _int_arg("limit", 100, 1, 1000)
    items = Published(services().engine).page(Window(kind="merged", start=since), after, limit, full=False)
    next_after = items[-1].seq if items else after
    response = jsonify({
        "changes": [{"id": i.cluster_id, "seq": i.seq, "deleted": i.deleted,
                     "updated": i.datestamp.strftime("%Y-%m-%dT%H:%M:%SZ")} for i in items],
        "next_after": next_after, "more": len(items) == limit,
    })
    response.headers["X-Next-After"] = str(next_after)
    return response


@bp.get("/libraries")
def libraries() -> Response:
    sources = services().sources
    groups = {s.id: [g.id for g in sources.groups if s.id in g.members] for s in sources.sources}
    return jsonify({"libraries": [{"id": s.id, "name": s.name, "region": s.region, "groups": groups[s.id]}
                                  for s in sources.sources],
                    "regions": list(sources.regions),
                    "groups": [{"id": g.id, "name": g.name, "members": list(g.members)} for g in sources.groups]})


@bp.get("/export")
def export() -> Response:
    """Stream a set (default ``merged``) as ISO 2709, MARCXML or JSON lines; API keys only."""
    if not g.api_key:
        raise ApiError(401, "exports need an API key (X-API-Key header or Authorization: Bearer)",
                       {"WWW-Authenticate": 'Bearer realm="unioncat"'})
    spec = request.args.get("set", "merged")
    chosen = find_set(services().sources, spec)
    if chosen is None:
        raise ApiError(404, f"there is no set {spec[:80]!r} (see /oai?verb=ListSets)")
    fmt = request.args.get("format", "jsonl")
    if fmt not in EXPORT_FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(EXPORT_FORMATS)}")
    after = _int_arg("after", 0, 0, 2 ** 62)
    deletions = _bool_arg("deletions")
    gz = _bool_arg("gzip")
    published = Published(services().engine)
    window = Window(kind=chosen.kind, sources=chosen.sources)
    chunks = export_chunks(published, window, fmt, after=after, deletions=deletions)
    if gz:
        chunks = gzip_chunks(chunks)
    name = f"unioncat-{spec.replace(':', '-')}.{EXTENSIONS[fmt]}" + (".gz" if gz else "")
    body = stream_with_context(data for data, _seq in chunks)
    return Response(body, mimetype="application/gzip" if gz else MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "X-Last-Seq-At-Start": str(published.last_seq(chosen.kind))})

