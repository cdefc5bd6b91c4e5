"""Every answer of the search mix from an Elasticsearch index, written so two versions of the code can be compared.

    python bench/es_answers.py --es-url URL --checkout /work/main --out /tmp/main.jsonl
    python bench/es_answers.py --es-url URL --out /tmp/branch.jsonl
    python bench/es_answers.py --compare /tmp/main.jsonl /tmp/branch.jsonl

The queries are ``bench/search_backends.py``'s (the same seed and documents file), each asked with all facets
and with the results page's facets, against the ``bench-search`` alias that ``search_backends.py --es-keep``
leaves behind; ``--checkout`` imports the backend from another checkout (main's), so a change to the requests
is judged on the same index: totals, records, "about", corrections, the page's works and their editions (ids,
in order) and every facet count.  ``--compare`` counts the answers that differ, by part.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("total", "records", "estimate", "corrected", "suggestion", "hits", "facets")


def dump(checkout: Path, url: str, docs: Path, count: int, out: Path) -> None:
    sys.path[:0] = [str(checkout), str(checkout / "bench")]
    import search_backends as sb
    from index.backend import SearchQuery, page_facets
    from index.elastic import ElasticsearchBackend
    es = ElasticsearchBackend(url, index="bench-search", request_timeout=300)
    with open(out, "w", encoding="utf-8") as fh:
        for k, q in enumerate(sb.queries(docs, count)):
            for facets in (None, page_facets(q.filters)):
                r = es.search(SearchQuery(**{**q.__dict__, "facets": facets}))
                fh.write(json.dumps({"k": k, "text": q.text, "filters": q.filters, "total": r.total,
                                     "records": r.records, "estimate": r.total_is_estimate, "corrected": r.corrected,
                                     "suggestion": r.suggestion, "facets": r.facets,
                                     "hits": [[h.id, [e["id"] for e in h.editions]] for h in r.hits]}) + "\n")
    es.close()


def compare(a: Path, b: Path) -> dict[str, int]:
    """Answers differing in each part (the first three of each printed)."""
    left, right = ([json.loads(line) for line in open(p, encoding="utf-8")] for p in (a, b))
    if len(left) != len(right):
        raise SystemExit(f"{a} has {len(left)} answers, {b} {len(right)}")
    differ = {part: 0 for part in PARTS}
    for x, y in zip(left, right):
        for part in PARTS:
            if x[part] != y[part]:
                differ[part] += 1
                if differ[part] <= 3:
                    print(f"{part} differs for query {x['k']} ({x['text']!r} {x['filters']}):\n  {x[part]}\n  {y[part]}")
    print(f"{len(left)} answers; differing: {differ}")
    return differ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--es-url")
    ap.add_argument("--checkout", type=Path, default=REPO)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", type=Path, nargs=2)
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        dump(args.checkout.resolve(), args.es_url, args.cache / "bench-search-docs-250000-w.jsonl", args.queries,
             args.out)


if __name__ == "__main__":
    main()
