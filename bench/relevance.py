"""Known-item relevance benchmark: the rank of the right entry for queries typed as readers type them.

    python bench/relevance.py --english 20000 --chinese 3000 --per-kind 200

Documents are real LoC records (``demo.loc``: the first N records of BooksAll and the first M in
Chinese), each held by the demo members ``demo.consortium.holders`` picks (overlapping holdings),
made into search documents by ``index.documents.to_document`` and indexed in both backends (the
embedded tantivy index and an Elasticsearch node started like the tests' fixture, or ``--es-url``)
in the same run.  For a seeded sample of records, one query per kind:

``exact``        the title proper as typed (lowercase, punctuation as in the record)
``words_author`` the two longest title words + the author's surname
``typo``         the title proper with one letter dropped or two neighbours swapped in one word (≥ 5 letters)
``plural``       one title word singular ↔ plural (``poems`` → ``poem``, ``lily`` → ``lilys``… only ``-s`` forms)
``variant``      a British/American spelling swapped (titles containing such a word only)
``han``          a Chinese title proper in simplified Han script (from the 880 paired with 245)
``traditional``  the same in traditional characters
``romanised``    the LoC romanised title proper (``Hong lou meng``)
``pinyin_run``   the romanised title's first four words run together (``hongloumeng``)
``pinyin_tones`` tone-marked pinyin of the Han title (``hóng lóu mèng``)

The right entry is the sampled record, or another record with the same title key and the same main
author (another edition of the same work: indistinguishable to the reader typing the title).
Reports Success@1, Success@10, MRR and latency p50/p95 per kind and backend; every query computes all
facets, as the search page does.  Also prints CPU seconds, peak RSS and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from consortium.load import load_sources  # noqa: E402
from dedupe.model import Cluster  # noqa: E402
from demo.consortium import holders  # noqa: E402
from demo.loc import iter_chunks, iter_language, loc_file  # noqa: E402
from harvester.raw import RawRecord  # noqa: E402
from index.backend import SearchQuery  # noqa: E402
from index.documents import to_document  # noqa: E402
from normaliser import normalise  # noqa: E402
from normaliser.errors import RecordError  # noqa: E402
from normaliser.model import Holding  # noqa: E402

#: The demo members (sources.yaml): id → (name, region), as the search documents name them.
LIBRARIES = {s.id: (s.name, s.region) for s in load_sources(REPO / "sources.yaml").sources}
KINDS = ("exact", "words_author", "typo", "plural", "variant", "han", "traditional", "romanised", "pinyin_run",
         "pinyin_tones")
_WORD = re.compile(r"[^\W\d_]+")
#: Spelling pairs swapped by the ``variant`` kind (either direction).
VARIANTS = [("color", "colour"), ("center", "centre"), ("theater", "theatre"), ("labor", "labour"),
            ("honor", "honour"), ("organization", "organisation"), ("behavior", "behaviour"),
            ("catalog", "catalogue"), ("defense", "defence"), ("favorite", "favourite"), ("neighbor", "neighbour"),
            ("civilization", "civilisation"), ("analyze", "analyse"), ("program", "programme"),
            ("harbor", "harbour"), ("humor", "humour"), ("gray", "grey"), ("modernization", "modernisation"),
            ("industrialization", "industrialisation"), ("globalization", "globalisation"), ("colonization",
            "colonisation"), ("urbanization", "urbanisation"), ("realization", "realisation")]


def documents(english: int, chinese: int, cache: Path) -> Path:
    """JSON lines of search documents from LoC records (built once, then reused)."""
    path = cache / f"bench-relevance-docs-{english}-{chinese}.jsonl"
    if path.exists():
        return path
    source = loc_file(cache)
    partial = path.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as out:
        chunks = [*iter_chunks(source, limit=english), *iter_language(source, b"chi", chinese)]
        for i, chunk in enumerate(chunks):
            try:
                rec = normalise(RawRecord(source="loc", local_id=str(i), payload=chunk))
            except RecordError:
                continue
            members = holders(i)
            rec = replace(rec, holdings=[Holding(source=m, local_id=f"{m}-{i}", call_number=f"{m.upper()} {i}")
                                         for m in members])
            cluster = Cluster(id=f"r{i:07d}", record=rec, members=[(m, f"{m}-{i}") for m in members])
            out.write(json.dumps(to_document(cluster, LIBRARIES), ensure_ascii=False) + "\n")
    partial.rename(path)
    return path


def read_docs(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def proper(title: str) -> str:
    """The title proper: up to the subtitle, the statement of responsibility or a parallel title."""
    return re.split(r"\s*[:/=;]\s", title or "")[0].strip(" .,/:;")


def key(text: str) -> str:
    return " ".join(_WORD.findall((text or "").casefold()))


def make_query(kind: str, doc: dict, rng: random.Random) -> str | None:
    """The query a reader looking for ``doc`` types, or None when ``doc`` cannot give one of this kind."""
    han = doc.get("languages", [""])[:1] == ["chi"] and doc.get("title_original")
    title = proper(doc.get("title_original") if kind in ("han", "traditional", "pinyin_tones") else doc["title"])
    words = _WORD.findall(title.casefold())
    if kind in ("exact", "typo", "plural", "variant", "words_author") and (han or len(" ".join(words)) < 4):
        return None
    if kind in ("han", "traditional", "romanised", "pinyin_run", "pinyin_tones") and not han:
        return None
    if kind == "han":
        from normaliser.text import to_simplified
        return to_simplified(title)
    if kind in ("exact", "romanised"):
        return title.casefold()
    if kind == "traditional":
        import opencc
        return opencc.OpenCC("s2t").convert(title)
    if kind == "pinyin_tones":
        from pypinyin import Style, lazy_pinyin
        return " ".join(p for p in lazy_pinyin(title, style=Style.TONE) if p.strip() and p.isalpha())
    if kind == "pinyin_run":
        return "".join(words[:4]) if len(words) >= 2 else None
    if kind == "words_author":
        surname = _WORD.findall((doc.get("author") or "").casefold())[:1]
        longest = sorted(set(words), key=lambda w: (-len(w), w))[:2]
        return " ".join([*longest, *surname]) if surname and len(longest) == 2 else None
    return _altered(kind, words, rng)


def _altered(kind: str, words: list[str], rng: random.Random) -> str | None:
    if kind == "typo":
        long_words = [i for i, w in enumerate(words) if len(w) >= 5]
        if not long_words:
            return None
        i = rng.choice(long_words)
        w = words[i]
        at = rng.randrange(1, len(w) - 1)
        words[i] = w[:at] + w[at + 1:] if rng.random() < 0.5 else w[:at] + w[at + 1] + w[at] + w[at + 2:]
    elif kind == "plural":
        nouns = [i for i, w in enumerate(words) if len(w) >= 4 and w not in ("this", "thus", "from", "with")]
        if not nouns:
            return None
        i = rng.choice(nouns)
        w = words[i]
        words[i] = w[:-1] if w.endswith("s") and not w.endswith("ss") else w + "s"
    elif kind == "variant":
        for i, w in enumerate(words):
            for a, b in VARIANTS:
                if w.startswith(a) or w.startswith(b):
                    src, dst = (a, b) if w.startswith(a) and not w.startswith(b) else (b, a)
                    words[i] = dst + w[len(src):]
                    return " ".join(words)
        return None
    return " ".join(words)


def sample(docs: list[dict], per_kind: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """kind → [(query, target id)], at most ``per_kind`` each, from a seeded shuffle of the documents."""
    rng = random.Random(seed)
    order = docs[:]
    rng.shuffle(order)
    out: dict[str, list[tuple[str, str]]] = {k: [] for k in KINDS}
    for doc in order:
        for kind in KINDS:
            if len(out[kind]) < per_kind:
                text = make_query(kind, doc, rng)
                if text and text.strip():
                    out[kind].append((text, doc["id"]))
    return out


def right(doc: dict, target: dict) -> bool:
    return doc["id"] == target["id"] or (key(proper(doc["title"])) == key(proper(target["title"]))
                                         and doc.get("author", "") == target.get("author", ""))


def evaluate(backend, queries: dict[str, list[tuple[str, str]]], by_id: dict[str, dict]) -> dict[str, dict]:
    """Success@1/@10, MRR and latency per kind."""
    out = {}
    for kind, items in queries.items():
        ranks, times = [], []
        for text, target in items:
            started = time.perf_counter()
            res = backend.search(SearchQuery(text=text, limit=10))
            times.append((time.perf_counter() - started) * 1000)
            rank = next((n for n, h in enumerate(res.hits, 1) if right(h.doc, by_id[target])), None)
            ranks.append(rank)
        if not items:
            continue
        times.sort()
        out[kind] = {"n": len(items), "s1": sum(r == 1 for r in ranks) / len(items),
                     "s10": sum(r is not None for r in ranks) / len(items),
                     "mrr": sum(1 / r for r in ranks if r) / len(items),
                     "p50_ms": times[len(times) // 2], "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))]}
    return out


def suggest_latency(backend, queries: dict[str, list[tuple[str, str]]]) -> dict:
    """Autocomplete as typed: every 3- to 8-character prefix of the exact and Han titles, timed."""
    times, answered = [], 0
    prefixes = [text[:n] for kind in ("exact", "han") for text, _ in queries.get(kind, [])
                for n in range(3 if kind == "exact" else 1, 9 if kind == "exact" else 4)]
    for prefix in prefixes:
        started = time.perf_counter()
        answered += bool(backend.suggest(prefix))
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"n": len(times), "answered": answered / max(len(times), 1), "p50_ms": times[len(times) // 2],
            "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))]}


def build(backend, docs: list[dict]) -> None:
    backend.clear()
    for start in range(0, len(docs), 5000):
        backend.add(docs[start:start + 5000])
    backend.commit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--english", type=int, default=20_000, help="first N BooksAll records (mostly English)")
    ap.add_argument("--chinese", type=int, default=3_000, help="first M Chinese records")
    ap.add_argument("--per-kind", type=int, default=200)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    ap.add_argument("--es-url", help="an Elasticsearch cluster to use (default: start a local node)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    wall, cpu = time.perf_counter(), time.process_time()
    docs = read_docs(documents(args.english, args.chinese, args.cache))
    by_id = {d["id"]: d for d in docs}
    queries = sample(docs, args.per_kind, args.seed)
    results = {"embedded": run_embedded(docs, queries, by_id), "elasticsearch": run_elastic(docs, queries, by_id, args)}
    report(results, args, len(docs), time.perf_counter() - wall, time.process_time() - cpu)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def run_embedded(docs, queries, by_id) -> dict:
    from index.embedded import EmbeddedIndex
    with EmbeddedIndex(Path(tempfile.mkdtemp(prefix="unioncat-relevance-")) / "index") as ix:
        build(ix, docs)
        return {**evaluate(ix, queries, by_id), "suggest": suggest_latency(ix, queries)}


def run_elastic(docs, queries, by_id, args) -> dict:
    node, url = None, args.es_url
    if not url:
        from peers import elastic
        node = elastic.ElasticNode(elastic.distribution(), Path(tempfile.mkdtemp(prefix="unioncat-es-"))).start()
        url = node.url
    from index.elastic import ElasticsearchBackend
    es = ElasticsearchBackend(url, index="bench-relevance", request_timeout=120, drop_delay=0)
    try:
        build(es, docs)
        return {**evaluate(es, queries, by_id), "suggest": suggest_latency(es, queries)}
    finally:
        es.client.indices.delete(index="bench-relevance-v*", ignore_unavailable=True, allow_no_indices=True)
        es.close()
        if node is not None:
            node.stop()


def report(results: dict, args, n_docs: int, wall: float, cpu: float) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{n_docs} documents ({args.english} BooksAll + {args.chinese} Chinese LoC records), {args.per_kind} "
          f"queries per kind, seed {args.seed}; {platform.machine()} {os.cpu_count()} cores, "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; wall {wall:.0f} s, CPU {cpu:.0f} s, "
          f"peak RSS {peak:.0f} MB (this process; ES runs in its own JVM)")
    print("| kind | n | embedded S@1 | S@10 | MRR | p50 / p95 ms | ES S@1 | S@10 | MRR | p50 / p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in KINDS:
        e, s = results["embedded"].get(kind), results["elasticsearch"].get(kind)
        if not e or not s:
            continue
        print(f"| {kind} | {e['n']} | {e['s1']:.3f} | {e['s10']:.3f} | {e['mrr']:.3f} | "
              f"{e['p50_ms']:.1f} / {e['p95_ms']:.1f} | {s['s1']:.3f} | {s['s10']:.3f} | {s['mrr']:.3f} | "
              f"{s['p50_ms']:.1f} / {s['p95_ms']:.1f} |")
    e, s = results["embedded"].get("suggest"), results["elasticsearch"].get("suggest")
    if e and s:
        print(f"\nautocomplete (/suggest): {e['n']} prefixes; embedded p50 {e['p50_ms']:.1f} ms, p95 {e['p95_ms']:.1f} ms, "
              f"{e['answered']:.0%} answered; Elasticsearch p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, "
              f"{s['answered']:.0%} answered")


if __name__ == "__main__":
    main()
