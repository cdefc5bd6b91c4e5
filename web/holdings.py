"""What each library holds of a serial, and whose online access the reader can use.

The record page groups holdings by library (``record.holdings_by_library``);
this module adds to each group what readers of journals ask for: the
library's holdings summary ("v.1 (1990) – v.25 (2014); lacks v.12"), the
years it covers, and its own e-resource links (856).  A library's link goes
through its own proxy and works only for its own readers, so a reader sees
"Online at your library" for their library's links and "Online at N other
libraries" for the rest; a link that is not http(s) (``javascript:``,
``data:``) is never made a link.

An ILL request for a serial names the volume and year the reader wants
(``?volume=…&year=…``); libraries whose holdings do not cover that year are
not offered as lenders.
"""
from __future__ import annotations

from collections.abc import Mapping

from normaliser.model import Holding
from normaliser.serials import covers

from .present import http_url

__all__ = ["annotate", "online_access", "wanted_issue", "lenders"]

_MIN_YEAR, _MAX_YEAR = 1400, 2200


def annotate(groups: list[dict], holdings: list[Holding], year: int | None) -> None:
    """Add ``summaries``, ``coverage``, ``online`` and ``covers_year`` to each library group, in place."""
    extras: dict[str, dict] = {}
    for h in holdings:
        extra = extras.setdefault(h.source, {"summaries": [], "coverage": [], "online": []})
        if h.summary and h.summary not in extra["summaries"]:
            extra["summaries"].append(h.summary)
        extra["coverage"].extend(list(c) for c in h.coverage if list(c) not in extra["coverage"])
        extra["online"].extend(u for u in map(http_url, h.urls) if u and u not in extra["online"])
    for group in groups:
        extra = extras.get(group["source"], {"summaries": [], "coverage": [], "online": []})
        group.update(summaries=extra["summaries"], coverage=sorted(extra["coverage"]), online=extra["online"])
        group["covers_year"] = None if year is None else covers(group["coverage"], year)


def online_access(groups: list[dict], holdings: list[Holding], record_urls: list[str], home_id: str | None) -> dict:
    """``{"yours": [the reader's library's links], "others": N other libraries with links, "open": [...]}``.

    ``open`` are the record's links no library's holding claims (a free resource, or an entry merged
    before links were kept per library): shown to everyone, as given, linked only when http(s).
    """
    yours = next((g["online"] for g in groups if g["source"] == home_id), [])
    others = sum(1 for g in groups if g["online"] and g["source"] != home_id)
    claimed = {u for h in holdings for u in h.urls}
    return {"yours": yours, "others": others, "open": [u for u in record_urls if u not in claimed]}


def wanted_issue(args: Mapping[str, str]) -> dict:
    """The volume and year a reader asks for (``volume``, ``year`` query arguments); an unusable year is
    reported back (``year_error``) rather than silently ignored."""
    volume = (args.get("volume") or "").strip()[:40]
    text = (args.get("year") or "").strip()
    year = int(text) if text.isdigit() and _MIN_YEAR <= int(text) <= _MAX_YEAR else None
    return {"volume": volume, "year": year, "year_error": bool(text) and year is None, "year_text": text[:10]}


def lenders(groups: list[dict], home_id: str | None, year: int | None) -> list[dict]:
    """The libraries an ILL request may go to: every other holder whose holdings cover ``year``."""
    return [{"source": g["source"], "library": g["library"]} for g in groups
            if g["source"] != home_id and (year is None or g["covers_year"])]
