"""The OpenAPI 3 description of ``/api/v1`` (served at ``/api/v1/openapi.json``), and the API's index.

Kept beside :mod:`web.api` and checked against the running app by
schemathesis in the tests, so the two cannot drift apart unnoticed.  The
index (``/api/v1``) is made from the same paths, so a client that starts at
the top finds every endpoint and the description.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as package_version

from publish.export import FORMATS as EXPORT_FORMATS, MEDIA_TYPES
from index.backend import FACETS, MAX_WINDOW, SORTS


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str, headers: dict | None = None) -> dict:
    out = _json(_ref("Error"), description)
    if headers:
        out["headers"] = headers
    return out


_RETRY = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_COMMON = {"429": _error("Rate limit exceeded", _RETRY), "401": _error("Unknown API key")}


def _string(**kw) -> dict:
    return {"type": "string", **kw}


def _strings() -> dict:
    return {"type": "array", "items": {"type": "string"}}


API_TITLE = "unioncat union catalogue API"
API_VERSION = "1.0.0"


def api_index(server_url: str) -> dict:
    """What ``/api/v1`` answers: name, versions, and a link to the description and to every endpoint."""
    try:
        software = package_version("unioncat")
    except PackageNotFoundError:  # run from a checkout that was never installed
        software = "unknown"
    paths = openapi_document(server_url)["paths"]
    links = {"self": server_url, "openapi": f"{server_url}/openapi.json"}
    links |= {op["operationId"]: server_url + path for path, item in paths.items() for op in item.values()
              if op["operationId"] != "index"}
    return {"name": API_TITLE, "version": software, "api_version": API_VERSION, "links": links}


def openapi_document(server_url: str, example_id: str | None = None) -> dict:
    """The description; ``example_id`` (a live cluster) lets clients and fuzzers reach a real record."""
    text = {"type": "string", "maxLength": 500}
    record_id = {"name": "cluster_id", "in": "path", "required": True,
                 "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"},
                 "description": "a cluster id (ids merged into another answer 301 with the new location)"}
    if example_id:
        record_id["example"] = example_id
    record_answers = {"301": {"description": "the record was merged into another; see Location",
                              "headers": {"Location": {"schema": {"type": "string"}}},
                              "content": {"application/json": {"schema": _ref("Error")}}},
                      "404": _error("No such record"), **_COMMON}
    return {
        "openapi": "3.0.3",
        "info": {"title": API_TITLE, "version": API_VERSION,
                 "description": "Search, records, holdings, a change feed and bulk exports of the union catalogue. "
                                "Anonymous use is rate limited per address; API keys (X-API-Key or "
                                "Authorization: Bearer) get a higher rate and the exports."},
        "servers": [{"url": server_url}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                "bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "status"],
                          "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
                "Hit": {"type": "object", "required": ["id", "title", "url"], "properties": {
                    "id": _string(), "title": _string(), "author": _string(),
                    "year": {"type": "integer", "nullable": True}, "format": _string(), "languages": _strings(),
                    "publisher": _string(), "isbns": _strings(), "libraries": _strings(),
                    "library_count": {"type": "integer"}, "url": _string()}},
                "FacetValue": {"type": "object", "required": ["value", "count"],
                               "properties": {"value": _string(), "count": {"type": "integer"}}},
                "SearchResults": {"type": "object", "required": ["total", "offset", "limit", "hits", "facets"],
                                  "properties": {
                                      "total": {"type": "integer"}, "offset": {"type": "integer"},
                                      "limit": {"type": "integer"}, "hits": {"type": "array", "items": _ref("Hit")},
                                      "facets": {"type": "object", "additionalProperties": {
                                          "type": "array", "items": _ref("FacetValue")}}}},
                "Holding": {"type": "object", "required": ["source", "library_name", "call_number"], "properties": {
                    **{name: _string() for name in ("source", "library_name", "region", "local_id", "library",
                                                    "location", "call_number", "barcode", "status", "volume", "note",
                                                    "holdings_id", "summary")},
                    "coverage": {"type": "array", "description": "[first year, last year] pairs; 9999 = ongoing",
                                 "items": {"type": "array", "items": {"type": "integer"}}},
                    "urls": _strings()}},
                "Record": {"type": "object", "required": ["id", "record", "members", "holdings"], "properties": {
                    "id": _string(), "record": {"type": "object", "description": "the merged description"},
                    "members": {"type": "array", "items": {"type": "object", "properties": {
                        "source": _string(), "local_id": _string()}}},
                    "match_keys": _strings(), "holdings": {"type": "array", "items": _ref("Holding")}}},
                "Holdings": {"type": "object", "required": ["id", "holdings"], "properties": {
                    "id": _string(), "holdings": {"type": "array", "items": _ref("Holding")}}},
                "Change": {"type": "object", "required": ["id", "seq", "deleted", "updated"], "properties": {
                    "id": _string(), "seq": {"type": "integer"}, "deleted": {"type": "boolean"},
                    "updated": _string(format="date-time")}},
                "Changes": {"type": "object", "required": ["changes", "next_after", "more"], "properties": {
                    "changes": {"type": "array", "items": _ref("Change")}, "next_after": {"type": "integer"},
                    "more": {"type": "boolean"}}},
                "Index": {"type": "object", "required": ["name", "version", "api_version", "links"], "properties": {
                    "name": _string(), "version": _string(), "api_version": _string(),
                    "links": {"type": "object", "required": ["self", "openapi"],
                              "additionalProperties": {"type": "string"}}}},
                "Libraries": {"type": "object", "required": ["libraries", "regions", "groups"], "properties": {
                    "libraries": {"type": "array", "items": {"type": "object", "properties": {
                        "id": _string(), "name": _string(), "region": _string(), "groups": _strings()}}},
                    "regions": _strings(),
                    "groups": {"type": "array", "items": {"type": "object", "properties": {
                        "id": _string(), "name": _string(), "members": _strings()}}}}},
            },
        },
        "security": [{}, {"apiKey": []}, {"bearer": []}],
        "paths": {
            "/": {"get": {
                "operationId": "index", "summary": "This API: its name, version and links to every endpoint",
                "responses": {"200": _json(_ref("Index"), "The index"), **_COMMON}}},
            "/search": {"get": {
                "operationId": "search", "summary": "Search the catalogue, with facet counts",
                "parameters": [
                    {"name": "q", "in": "query", "schema": text,
                     "description": "words (all must match), \"a phrase\", -excluded, or an ISBN"},
                    *[{"name": f, "in": "query", "schema": text} for f in ("title", "author", "subject",
                                                                             "publisher", "isbn")],
                    {"name": "filter", "in": "query", "style": "form", "explode": True,
                     "schema": {"type": "array", "items": {"type": "string", "maxLength": 500,
                                                           "pattern": f"^({'|'.join(FACETS)}):.+$"}},
                     "description": "facet filter <facet>:<value>, repeatable (year also takes 1990-1999)"},
                    {"name": "sort", "in": "query", "schema": {"type": "string", "enum": list(SORTS)}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                                 "maximum": MAX_WINDOW}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100}},
                    {"name": "facet_size", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                     "maximum": 100}},
                ],
                "responses": {"200": _json(_ref("SearchResults"), "Results"), "400": _error("Bad parameter"),
                              **_COMMON}}},
            "/records/{cluster_id}": {"get": {
                "operationId": "getRecord", "summary": "A merged record with its members and holdings",
                "parameters": [record_id],
                "responses": {"200": _json(_ref("Record"), "The record"), **record_answers}}},
            "/records/{cluster_id}/holdings": {"get": {
                "operationId": "getHoldings", "summary": "Every member's holdings of a record",
                "parameters": [record_id],
                "responses": {"200": _json(_ref("Holdings"), "The holdings"), **record_answers}}},
            "/changes": {"get": {
                "operationId": "changes",
                "summary": "Clusters changed (or retired) since a time, in change order; page with next_after",
                "parameters": [
                    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                                "maximum": 2 ** 62}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                ],
                "responses": {"200": {**_json(_ref("Changes"), "Changes"), "headers": {
                    "X-Next-After": {"schema": {"type": "string"}, "description": "the next page's after"}}},
                    "400": _error("Bad parameter"), **_COMMON}}},
            "/libraries": {"get": {
                "operationId": "libraries", "summary": "The member libraries, regions and groups",
                "responses": {"200": _json(_ref("Libraries"), "The consortium"), **_COMMON}}},
            "/export": {"get": {
                "operationId": "export", "summary": "Stream a set as ISO 2709, MARCXML or JSON lines (API keys)",
                "security": [{"apiKey": []}, {"bearer": []}],
                "parameters": [
                    {"name": "set", "in": "query", "schema": {"type": "string", "maxLength": 200},
                     "description": "merged (default), members, library:<id>, region:<name>, group:<id>, "
                                    "members:<id>"},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": list(EXPORT_FORMATS)}},
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                                "maximum": 2 ** 62},
                     "description": "resume after this change sequence"},
                    {"name": "deletions", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "gzip", "in": "query", "schema": {"type": "boolean"}},
                ],
                "responses": {
                    "200": {"description": "the export, streamed",
                            "content": {**{MEDIA_TYPES[f]: {"schema": {"type": "string", "format": "binary"}}
                                           for f in EXPORT_FORMATS},
                                        "application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
                    "400": _error("Bad parameter"), "404": _error("No such set"),
                    "401": _error("An API key is needed"), "429": _COMMON["429"]}}},
        },
    }
