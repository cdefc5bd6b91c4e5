"""The reader's own library: who holds a book "here", and where ILL requests go.

A signed-in reader's library comes from sign-on (``session["reader"]``); anyone
else may choose one with the selector, remembered in the ``library`` cookie for
a year.  The choice orders holdings (own library, then its region, then the
rest) and routes the "get it" link: the own library's OPAC record when it holds
the book, otherwise an interlibrary-loan request (OpenURL) to that library's
ILL service, or the consortium's.
"""
from __future__ import annotations

from flask import Blueprint, redirect, request, session, url_for

from consortium.config import Consortium, Group, Source, display_name
from normaliser.model import Record

from . import links
from .context import services
from .present import safe_next

bp = Blueprint("reader", __name__)
COOKIE = "library"
COOKIE_AGE = 365 * 24 * 3600


def home_library() -> Source | None:
    """The reader's library: from sign-on first, else the cookie; None when unknown."""
    svc = services()
    reader = session.get("reader") or {}
    return svc.source(reader.get("library", "")) or svc.source(request.cookies.get(COOKIE, ""))


@bp.post("/library")
def choose_library():
    """The "choose your library" form: remember the choice (an empty choice forgets it) and go back."""
    chosen = request.form.get("library", "")
    target = safe_next(request.form.get("next")) or url_for("search.home")
    response = redirect(target, 303)
    if services().source(chosen):
        response.set_cookie(COOKIE, chosen, max_age=COOKIE_AGE, samesite="Lax", httponly=True)
    else:
        response.delete_cookie(COOKIE)
    return response


def order_holdings(groups: list[dict], home: Source | None) -> list[dict]:
    """Own library first, then the libraries of its region, then the rest (each in catalogue order)."""
    if home is None:
        return groups

    def rank(group: dict) -> int:
        if group["source"] == home.id:
            return 0
        return 1 if group["region"] == home.region else 2
    return sorted(groups, key=rank)


def get_it(record: Record, holdings: list[dict], home: Source | None, permalink: str,
           wanted: dict | None = None) -> dict:
    """Where the reader goes to get the item.

    ``{"kind": "opac", "url": …, "library": …}`` when their library holds it (and links into its
    OPAC); ``{"kind": "ill", "url": …}`` otherwise: an OpenURL ContextObject to the home library's
    ILL service (its own ``ill_params`` over the consortium's) or the consortium's; ``{"kind": None}``
    when there is neither.
    """
    if home is not None:
        own = next((g for g in holdings if g["source"] == home.id), None)
        if own is not None and own.get("covers_year") is False:
            own = None      # the reader's library holds the journal, but not the year asked for: ILL
        if own is not None and own["opac_url"]:
            return {"kind": "opac", "url": own["opac_url"], "library": name_of(home)}
        if own is not None:
            return {"kind": "held", "url": None, "library": name_of(home)}
    url = ill_link(record, home, permalink, wanted)
    return {"kind": "ill" if url else None, "url": url, "library": name_of(home) if home else None}


def ui_locale() -> str:
    from flask_babel import get_locale
    return str(get_locale() or "en")


def name_of(obj: Consortium | Group | Source) -> str:
    """The consortium's, a group's or a library's name in the UI's language (``name_zh`` in Chinese)."""
    return display_name(obj, ui_locale())


def region_name(region: str) -> str:
    """A region's name in the UI's language."""
    return services().sources.region_name(region, ui_locale())


def library_name(source_id: str, fallback: str = "") -> str:
    """A member's name (by id) in the UI's language; ``fallback`` (else the id) for an unknown member."""
    source = services().source(source_id)
    return name_of(source) if source else (fallback or source_id)


def ill_link(record: Record, home: Source | None, permalink: str, wanted: dict | None = None) -> str | None:
    """The ILL request: the home library's ILL service and parameters over the consortium's; for a serial,
    the volume and year the reader asked for (``web.holdings.wanted_issue``)."""
    consortium = services().sources.consortium
    params = {**consortium.ill_params, **(home.ill_params if home else {})}
    wanted = wanted or {}
    return links.ill_url(record, consortium.ill_url, home.ill_url if home else None, rft_id=permalink, params=params,
                         volume=wanted.get("volume", ""), year=wanted.get("year"))


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.add_template_filter(name_of, "display_name")
    app.add_template_filter(region_name, "region_name")

    @app.context_processor
    def reader_context():
        svc = services()
        return {"home_library": home_library(), "reader": session.get("reader"),
                "library_choices": library_choices}  # called only where the chooser is drawn


def library_choices() -> list[tuple[str, str]]:
    """(id, "name (region)") of every member for the library chooser on every page, by region and name.

    The locale is read once, not twice per member: with 1,300 members the chooser's names cost more
    than the rest of the staff overview (bench/staff.py).
    """
    svc, locale = services(), ui_locale()
    return [(s.id, f"{display_name(s, locale)} ({svc.sources.region_name(s.region, locale)})")
            for s in sorted(svc.sources.sources, key=lambda s: (s.region, s.name))]
