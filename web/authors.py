"""The author page (``/author?name=…``) and its JSON twin (``/author.json?name=…``).

A name — the heading of a record's author, or any see-from a reader typed —
leads to the entities of the authority store that carry it
(``normaliser.authorities.AuthorityStore.entities``): heading, dates, every
variant (other scripts and romanisations), identifiers, the works the
consortium holds under the heading and how many each library holds.  A
variant two people share ("Wang, Li") lists both; nothing merges them.  A
name no authority record knows still shows the works catalogued under it.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue

from index.backend import SearchQuery
from normaliser.authorities import AuthorityStore

from .context import services

bp = Blueprint("authors", __name__)

MAX_NAME = 200
WORKS = 50


@bp.get("/author", defaults={"fmt": "html"})
@bp.get("/author.json", defaults={"fmt": "json"})
def author(fmt: str) -> ResponseReturnValue:
    name = " ".join(request.args.get("name", "").split())[:MAX_NAME]
    data = author_view(name)
    if fmt == "json":
        return jsonify(data), 200 if name else 400
    return render_template("author.html", **data), 200 if name else 400


def author_view(name: str) -> dict:
    """What the page and its JSON twin show for ``name``."""
    svc = services()
    entities = AuthorityStore(svc.engine).entities(name) if name else []
    names = {s.id: s.name for s in svc.sources.sources}
    for entity in entities:
        entity.update(_works(entity["heading"], names))
    unlinked = _works(name, names) if name and not entities else None
    return {"name": name, "entities": entities, "unlinked": unlinked,
            "error": None if name else "name is required: /author?name=…"}


def _works(heading: str, names: dict[str, str]) -> dict:
    """The entries held under a heading, and the holdings count per library."""
    results = services().backend.search(SearchQuery(fields={"author": heading}, limit=WORKS,
                                                    facets=("library",), sort="-year"))
    works = [{"id": h.id, "title": h.doc.get("title", ""), "year": h.doc.get("year"),
              "url": url_for("record.record", cluster_id=h.id, fmt="html")} for h in results.hits]
    counts = [{"source": s, "library": names.get(s, s), "count": n} for s, n in results.facets.get("library", [])]
    return {"works": works, "works_total": results.total, "libraries": counts}
