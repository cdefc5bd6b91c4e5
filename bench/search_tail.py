"""Which queries make the embedded search's p95, and where each spends its time (``search_backends --slowest``).

With 200 queries the p95 is the 11th slowest, so a handful of queries decide it.  This runs the bench's
queries once more, in the same order (the facet and answer caches emptied first, so the same queries find
them as the measured run did), with the engine's stages timed one by one — CPU of the thread each ran on:

* ``facets``: the facet pass (:func:`index.embedded_facets.count`; on its worker thread when a core is idle,
  so it may overlap ``page``);
* ``page``: a grouped page (:func:`index.embedded_works.page`: ranked hits, works, editions, stored documents;
  with the facet pass too when that runs in the search's thread while the page wants its counts);
* ``fuzzy``: the typo pass's fuzzy search (:mod:`index.forgiving`), ``counts``: its one-word counts;
* ``searches``: how many one-pass searches the query took (more than one: the typo pass ran).

Wrapping the stages costs microseconds a call; read the wall and CPU columns beside the main run's.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager

from index import embedded_facets, embedded_works
from index.backend import SearchQuery


def kind(q: SearchQuery) -> str:
    """The query's shape, as the bench's mix makes them (what it is, not which of the mix it was)."""
    words = len(q.text.split())
    what = f"{words} word{'s' if words != 1 else ''}" if words else "browse"
    if q.filters:
        what += " + " + "/".join(sorted(q.filters))
    return what + (f", by {q.sort}" if q.sort != "relevance" else "")


@contextmanager
def _timed(owner, name: str, parts: dict, label: Callable[..., str]):
    """Replace ``owner.name`` by a wrapper adding its wall and thread-CPU milliseconds to ``parts[label]``."""
    original, own = getattr(owner, name), name in vars(owner)  # a method of an instance is its class's

    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            part = parts.setdefault(label(*args, **kwargs), [0.0, 0.0, 0])
            part[0] += (time.perf_counter() - wall) * 1000
            part[1] += (time.thread_time() - cpu) * 1000
            part[2] += 1
    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        if own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)


def _search_kind(q: SearchQuery) -> str:
    return "fuzzy" if q.fuzzy else "counts" if not q.limit else "searches"


def profile(backend, qs: list[SearchQuery]) -> list[dict]:
    """Every query of ``qs`` run once: its wall and CPU milliseconds (every thread) and each stage's."""
    parts: dict[str, list] = {}
    backend._facet_cache.clear()
    backend._answers.clear()
    rows = []
    with _timed(embedded_facets, "count", parts, lambda *a: "facets"), \
            _timed(embedded_works, "page", parts, lambda *a, **k: "page"), \
            _timed(backend, "_search_once", parts, _search_kind):
        for i, q in enumerate(qs):
            parts.clear()
            wall, cpu = time.perf_counter(), time.process_time()
            result = backend.search(SearchQuery(**q.__dict__))
            rows.append({"i": i, "kind": kind(q), "text": q.text, "wall_ms": (time.perf_counter() - wall) * 1000,
                         "cpu_ms": (time.process_time() - cpu) * 1000, "total": result.total,
                         "records": result.records, "typo": bool(result.corrected or not result.total),
                         "parts": {k: [round(v[0], 1), round(v[1], 1), v[2]] for k, v in parts.items()}})
    return rows


def report(rows: list[dict], n: int) -> None:
    """The ``n`` slowest queries by wall and by CPU, each with its stages' CPU."""
    for by in ("wall_ms", "cpu_ms"):
        print(f"\n| {n} slowest by {by[:-3]} | wall | CPU | facets CPU | page CPU | fuzzy CPU | counts CPU | "
              "searches | records |\n|---|---|---|---|---|---|---|---|---|")
        for r in sorted(rows, key=lambda r: -r[by])[:n]:
            cpu = {k: f"{v[1]:.1f}" for k, v in r["parts"].items()}
            searches = sum(v[2] for k, v in r["parts"].items() if k in ("searches", "fuzzy", "counts"))
            name = f"#{r['i']} {r['kind']}{', typo pass' if r['typo'] else ''}: {r['text'][:24]!r}"
            print(f"| {name} | {r['wall_ms']:.1f} | {r['cpu_ms']:.1f} | {cpu.get('facets', '–')} | "
                  f"{cpu.get('page', '–')} | {cpu.get('fuzzy', '–')} | {cpu.get('counts', '–')} | {searches} | "
                  f"{r['records']} |", flush=True)
