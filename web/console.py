"""The sources overview at 130–1,300 members: filter, search, sort and page the rows of
:func:`web.dashboard.status_view`.

The same query string drives ``/staff/`` and ``/staff/status.json`` (``?state=failing&region=Suzhou
&q=nju&sort=lag&dir=desc&page=2&per_page=50``), so a filtered page and its JSON twin always show the
same members.  Totals and alerts stay consortium-wide; ``view`` says what was asked and how many
matched, and ``facets`` counts every state and region for the filter menus.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

from consortium.config import SourcesFile

from .dashboard import ATTENTION

PER_PAGE = 50
MAX_PER_PAGE = 2000
#: The states a filter offers, as the issue names them (``failing`` … ``ok``) plus the rest.
STATES = tuple(ATTENTION)


def _started(row: dict) -> float:
    run = row["last_run"]
    return run["started_at"].timestamp() if run and run["started_at"] else 0.0


def _duration(row: dict) -> float:
    run = row["last_run"]
    if not run or not run["started_at"] or not run["finished_at"]:
        return 0.0
    return (run["finished_at"] - run["started_at"]).total_seconds()


def _lag(row: dict) -> float:
    lag = row["health"].lag_s
    return -1.0 if lag is None else lag


#: column → sort key over the light rows of :func:`web.dashboard.status_view` (``last_run`` the stored
#: run, ``health`` a Health); a missing value sorts as the smallest.  Every column of the table is here.
SORTS: dict[str, Callable[[dict], object]] = {
    "state": lambda r: (ATTENTION[r["attention"]], -r["health"].failures_in_a_row),
    "name": lambda r: r["name"].casefold(),
    "id": lambda r: r["id"],
    "region": lambda r: r["region"].casefold(),
    "protocol": lambda r: r["protocol"],
    "last_run": _started,
    "duration": _duration,
    "lag": _lag,
    "failures": lambda r: r["health"].failures_in_a_row,
    "records": lambda r: r["records"],
    "quarantined": lambda r: r["quarantined"],
}


@dataclass(frozen=True)
class OverviewQuery:
    """What the operator asked the overview for; every field has a default that shows everything."""

    states: tuple[str, ...] = ()
    region: str = ""
    group: str = ""
    q: str = ""
    sort: str = "state"
    descending: bool = False
    page: int = 1
    per_page: int = PER_PAGE
    problems: list[str] = field(default_factory=list, compare=False)

    @classmethod
    def from_args(cls, args: Mapping) -> "OverviewQuery":
        """Read the query string; an unknown state or column is reported in ``problems``, never a 500."""
        problems: list[str] = []
        raw_states = [s for v in _getlist(args, "state") for s in v.split(",") if s.strip()]
        states = tuple(s.strip() for s in raw_states if s.strip() in ATTENTION)
        problems += [f"unknown state {s.strip()!r}" for s in raw_states if s.strip() not in ATTENTION]
        sort = args.get("sort", "state") or "state"
        if sort not in SORTS:
            problems.append(f"cannot sort by {sort!r}")
            sort = "state"
        return cls(states=states, region=(args.get("region") or "").strip(), group=(args.get("group") or "").strip(),
                   q=(args.get("q") or "").strip(), sort=sort, descending=args.get("dir") == "desc",
                   page=_int(args.get("page"), 1, 1, 10**6),
                   per_page=_int(args.get("per_page"), PER_PAGE, 1, MAX_PER_PAGE), problems=problems)

    def args(self, **change) -> dict:
        """This query as URL arguments (defaults left out), with ``change`` applied: for links."""
        values = {"state": ",".join(self.states), "region": self.region, "group": self.group, "q": self.q,
                  "sort": self.sort, "dir": "desc" if self.descending else "", "page": self.page,
                  "per_page": self.per_page}
        values.update(change)
        defaults = {"sort": "state", "page": 1, "per_page": PER_PAGE}
        return {k: v for k, v in values.items() if v not in ("", None) and defaults.get(k) != v}


def overview(query: OverviewQuery, sources: SourcesFile) -> Callable[[list[dict]], tuple[list[dict], dict]]:
    """The ``pick`` for :func:`web.dashboard.status_view`: filter, sort and cut the light rows to one
    page; the answer gains ``view`` (what was asked, how many matched) and ``facets`` (every state and
    region counted, for the filter menus)."""
    def pick(rows: list[dict]) -> tuple[list[dict], dict]:
        facets = {"states": _count(rows, lambda r: r["attention"]), "regions": _count(rows, lambda r: r["region"])}
        members = _group_members(sources, query.group)
        needle = query.q.casefold()
        chosen = [r for r in rows
                  if (not query.states or r["attention"] in query.states)
                  and (not query.region or r["region"] == query.region)
                  and (members is None or r["id"] in members)
                  and (not needle or needle in r["id"].casefold() or needle in r["name"].casefold())]
        if query.sort != "state" or query.descending:  # status_view's order is the "state" order already
            chosen = sorted(chosen, key=SORTS[query.sort], reverse=query.descending)
        pages = max(1, math.ceil(len(chosen) / query.per_page))
        page = min(query.page, pages)
        start = (page - 1) * query.per_page
        view = {"matching": len(chosen), "page": page, "pages": pages, "per_page": query.per_page,
                "first": start + 1 if chosen else 0, "last": min(start + query.per_page, len(chosen)),
                "states": list(query.states), "region": query.region, "group": query.group, "q": query.q,
                "sort": query.sort, "dir": "desc" if query.descending else "asc", "problems": query.problems}
        if query.group and not any(g.id == query.group for g in sources.groups):
            view["problems"] = [*query.problems, f"unknown group {query.group!r}"]
        return chosen[start:start + query.per_page], {"view": view, "facets": facets}
    return pick


def _group_members(sources: SourcesFile, group: str) -> set[str] | None:
    if not group:
        return None
    found = next((g for g in sources.groups if g.id == group), None)
    return set(found.members) if found else set()


def _count(rows: list[dict], key: Callable[[dict], str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[key(row)] = out.get(key(row), 0) + 1
    return out


def _getlist(args: Mapping, name: str) -> list[str]:
    return args.getlist(name) if hasattr(args, "getlist") else [v for v in [args.get(name)] if v]


def _int(value, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(value)))
    except (TypeError, ValueError):
        return default
