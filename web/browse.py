"""Browse pages: authors A–Z, subjects, and the shelf list by CLC or LCC class, each with a JSON twin.

``/browse/authors`` and ``/browse/subjects`` list headings alphabetically from
``from`` (what the reader typed: "smi", 曹, or a letter of the A–Z bar), each
with its record count and a link to the search for it, and a few headings
before the start for context.  ``/browse/shelf?scheme=clc&class=I247`` lists
records in class-number order, as they would stand on the shelves of one
library holding everything; ``&around=<record id>`` centres it on a record
(the record page's call numbers link there).  ``from`` also takes a page's
cursor (an entry's ``key``), and ``back=1`` turns to the page before it.
The lists themselves are :mod:`index.browse`'s, the same on both backends.
"""
from __future__ import annotations

import string

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from index.browse import DEFAULT_SIZE, MAX_SIZE, SHELF_SCHEMES, BrowseEntry, BrowseError, BrowsePage, shelf_start
from index.querytext import prefix_key

from .context import services

bp = Blueprint("browse", __name__)

#: URL segment → (index.browse kind, page title)
LISTS = {"authors": ("author", _l("Authors A–Z")), "subjects": ("subject", _l("Subjects")),
         "shelf": ("shelf", _l("Shelf list"))}
SCHEME_LABELS = {"clc": _l("Chinese Library Classification (CLC)"), "lcc": _l("Library of Congress Classification (LCC)")}
#: the A–Z bar; Han headings file among them by their pinyin
LETTERS = tuple(string.ascii_uppercase)
MAX_START = 200
#: headings shown before the start of a list, and around a record on the shelf list
NEIGHBOURS, SHELF_NEIGHBOURS = 3, 5


@bp.get("/browse/<name>", defaults={"fmt": "html"})
@bp.get("/browse/<name>.json", defaults={"fmt": "json"})
def browse_list(name: str, fmt: str) -> ResponseReturnValue:
    if name not in LISTS:
        abort(404, description=f"no browse list {name!r}; there are {', '.join(LISTS)}")
    data = browse_view(name)
    if fmt == "json":
        return jsonify(data)
    return render_template("browse.html", **data, lists=LISTS, letters=LETTERS, scheme_labels=SCHEME_LABELS)


def browse_view(name: str) -> dict:
    """What the page and its JSON twin show: the entries with their links, and the neighbouring pages."""
    kind = LISTS[name][0]
    args = request.args
    scheme = args.get("scheme", "clc").strip().lower() if kind == "shelf" else ""
    start = args.get("from", args.get("class", ""))[:MAX_START]
    size = min(max(_int(args.get("size"), DEFAULT_SIZE), 1), MAX_SIZE)
    neighbours = NEIGHBOURS if kind != "shelf" else SHELF_NEIGHBOURS
    around = args.get("around", "")
    if around and kind == "shelf":
        doc = services().backend.get(around)
        if doc is None:
            abort(404, description=f"there is no record {around!r} in the index")
        start = start or next((c["value"] for c in doc.get("classifications", []) if c.get("scheme") == scheme), "")
        if not start:
            abort(400, description=f"record {around!r} has no {scheme.upper()} class number to shelve it by")
        start = shelf_start(scheme, start, doc)
    back = args.get("back") == "1"
    try:
        page = services().backend.browse(kind, start, scheme=scheme, size=size, neighbours=0 if back else neighbours,
                                         backwards=back)
    except BrowseError as exc:
        abort(400, description=str(exc))
    return {"list": name, "kind": kind, "scheme": scheme, "from": "" if "\x1f" in start else start,
            "around": around, "size": size,
            "before": [_entry(kind, e) for e in page.before], "entries": [_entry(kind, e) for e in page.entries],
            "previous": _turn(name, page, scheme, size, back=True), "next": _turn(name, page, scheme, size)}


def _entry(kind: str, entry: BrowseEntry) -> dict:
    out = {"heading": entry.heading, "count": entry.count, "key": entry.key}
    if kind == "author":
        out["url"] = url_for("search.search", fmt="html", author=entry.heading)
    elif kind == "subject":
        out["url"] = url_for("search.search", fmt="html", subject=entry.heading)
    else:
        doc = entry.doc or {}
        out.update(id=entry.id, title=doc.get("title", ""), author=doc.get("author", ""), year=doc.get("year"),
                   library_count=doc.get("library_count", 0),
                   url=url_for("record.record", cluster_id=entry.id, fmt="html"))
    return out


def _turn(name: str, page: BrowsePage, scheme: str, size: int, back: bool = False) -> str | None:
    """The link to the page before (from the first entry shown) or after (from the last)."""
    shown = [*page.before, *page.entries]
    if not shown or not (page.more_before if back else page.more_after):
        return None
    cursor = shown[0].key if back else shown[-1].key
    extra = {"scheme": scheme} if scheme else {}
    return url_for("browse.browse_list", name=name, fmt="html", **{"from": cursor}, size=size,
                   **({"back": "1"} if back else {}), **extra)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


@bp.app_template_global()
def shelf_url(record: dict, call_number: str, cluster_id: str) -> str | None:
    """The shelf list around a record, for one of its call numbers: in the scheme of the record's class
    number that begins the call number (a Chinese library's ``I247.5/123`` is CLC ``I247.5``), else its
    first CLC or LCC class; None when the record has neither."""
    classes = [c for c in record.get("classifications", []) if c.get("scheme") in SHELF_SCHEMES and c.get("value")]
    if not classes:
        return None
    key = prefix_key(call_number or "")
    chosen = next((c for c in classes if key and key.startswith(prefix_key(c["value"]))), classes[0])
    return url_for("browse.browse_list", name="shelf", fmt="html", scheme=chosen["scheme"], **{"class": chosen["value"]},
                   around=cluster_id)
