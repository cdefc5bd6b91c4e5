"""Do two versions of the embedded search answer the same?  Answers of one index to the bench's queries.

A change that makes search cheaper must not change what a reader sees.  Run this with one version of the
code, then with the other, on the same index, and compare the two files::

    python bench/search_same.py --records 1000000 --index /tmp/idx1m --out /tmp/main.jsonl
    python bench/search_same.py --records 1000000 --index /tmp/idx1m --out /tmp/branch.jsonl
    python bench/search_same.py --compare /tmp/main.jsonl /tmp/branch.jsonl

Each line is one query of :func:`search_backends.queries` (the faceted mix the latency figures use), with
the answer as the search page would show it: totals, every shown work's id and score (to six
significant digits: a sum of the same boosts in another order may differ in the last bit), its editions,
and every facet's counts.  The comparison prints how many answers differ and the first few differences.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_backends import LOC_DOCS, REPO, documents, queries  # noqa: E402

from index.backend import SearchQuery  # noqa: E402


def answer(backend, q: SearchQuery) -> dict:
    """What the search page shows for ``q``, in a form two runs can compare."""
    r = backend.search(SearchQuery(**q.__dict__))
    return {"query": {"text": q.text, "filters": q.filters, "sort": q.sort},
            "total": r.total, "records": r.records, "estimate": r.total_is_estimate, "corrected": r.corrected,
            "hits": [[h.id, float(f"{h.score:.6g}"), [e["id"] for e in h.editions]] for h in r.hits],
            "facets": {name: [list(kv) for kv in values] for name, values in sorted(r.facets.items())}}


def write(args) -> None:
    from index.embedded import EmbeddedIndex
    path = documents(min(args.records, LOC_DOCS), args.cache)
    backend = EmbeddedIndex(args.index)
    if not backend.count():
        sys.exit(f"{args.index}: no documents (build it with bench/search_backends.py --index)")
    with open(args.out, "w", encoding="utf-8") as out:
        for q in queries(path, args.queries):
            out.write(json.dumps(answer(backend, q), ensure_ascii=False, sort_keys=True) + "\n")
    backend.close()
    print(f"{args.queries} answers of {args.index} written to {args.out}")


def compare(a: Path, b: Path, show: int = 5) -> int:
    """The number of queries answered differently (printing the first ``show``)."""
    left, right = a.read_text().splitlines(), b.read_text().splitlines()
    if len(left) != len(right):
        print(f"{a}: {len(left)} answers, {b}: {len(right)}")
        return max(len(left), len(right))
    differ = [(x, y) for x, y in zip(left, right) if x != y]
    for x, y in differ[:show]:
        x, y = json.loads(x), json.loads(y)
        keys = [k for k in x if x[k] != y.get(k)]
        print(f"differs: {x['query']} in {keys}")
        for k in keys:
            print(f"  {a.name}: {json.dumps(x[k], ensure_ascii=False)[:300]}")
            print(f"  {b.name}: {json.dumps(y[k], ensure_ascii=False)[:300]}")
    print(f"{len(differ)} of {len(left)} answers differ")
    return len(differ)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=250_000, help="as given to bench/search_backends.py")
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    ap.add_argument("--index", type=Path, help="an index bench/search_backends.py --index built")
    ap.add_argument("--out", type=Path, help="where to write the answers (JSON lines)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"), help="compare two answer files")
    args = ap.parse_args()
    if args.compare:
        sys.exit(1 if compare(*args.compare) else 0)
    if not (args.index and args.out):
        ap.error("--index and --out (or --compare A B)")
    write(args)


if __name__ == "__main__":
    main()
