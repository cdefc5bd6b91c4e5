"""Dedupe quality on the corpus sets beyond DBLP-ACM: Cora and DBLP–Scholar (dirty citations), BIB-R (must not merge).

    python bench/dedupe_quality.py [--corpus DIR]     # default $UNIONCAT_CORPUS or ../shared/corpus

* **Cora** (``dedup/cora_pyjedai``): 1,295 citations of ~110 papers, one
  table (dirty ER).  Every citation is treated as coming from its own member
  (the same-member rule would otherwise forbid every merge) and run through
  the same features → blocking → scoring → constrained clustering as a build.
* **BIB-R** (``dedup/bib-r``, MARC 21): works with several expressions and
  manifestations; every record is its own manifestation, so every predicted
  pair is a wrong merge.  Each record is put in its own member for the same
  reason, through the real ``unioncat dedupe evaluate`` path.

* **DBLP–Google Scholar** (``dedup/ditto_er_magellan/Structured-DBLP-GoogleScholar``,
  Ditto's labelled pairs): scored over the labelled pairs; Scholar spread
  over 256 members by a hash of each record's text (see ``dblp_scholar``).

Prints one JSON line per set.  Scores are recorded in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dedupe.blocking import MemoryBlocks, find_pairs  # noqa: E402
from dedupe.cluster import cluster  # noqa: E402
from dedupe.evaluate import UnionFind, evaluate, scores  # noqa: E402
from dedupe.features import blocking_keys, record_features  # noqa: E402
from dedupe.score import MATCH, VETO  # noqa: E402
from normaliser.model import Contributor, Record  # noqa: E402


def _authors(text: str) -> list[str]:
    text = re.sub(r"\band\b", ",", text.strip(" ,."))
    return [a.strip(" .") for a in text.split(",") if len(a.strip(" .")) > 2]


def cora_records(folder: Path) -> tuple[list[Record], dict[tuple[str, str], str]]:
    records = []
    with open(folder / "cora.csv", encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(fh, delimiter="|")
        for row in rows:
            rid = row["Entity Id"].strip()
            year = re.search(r"(1[89]\d\d|20\d\d)", row.get("year") or "")
            records.append(Record(source=f"c{rid}", local_id=rid, format="article",
                                  title=(row.get("title") or "").strip(" '\".,"),
                                  contributors=[Contributor(n, primary=i == 0)
                                                for i, n in enumerate(_authors(row.get("author") or ""))],
                                  year=int(year.group(1)) if year else None))
    entities = UnionFind()
    with open(folder / "cora_gt.csv", encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="|")
        next(rows)
        for a, b in rows:
            ka, kb = (f"c{a.strip()}", a.strip()), (f"c{b.strip()}", b.strip())
            entities.union(ka, kb)
    return records, {r.key: "-".join(entities.find(r.key)) for r in records}


def score_records(records: list[Record], gold: dict, max_block: int = 500) -> dict:
    started = time.perf_counter()
    predicted, found = _clusters(records, max_block)
    result = evaluate(gold, predicted).as_dict()
    result.update(records=len(records), pairs_compared=found.compared, refused_blocks=len(found.refused),
                  seconds=round(time.perf_counter() - started, 2))
    return result


_DITTO_FIELD = re.compile(r"COL (\w+) VAL ([^\t]*?)(?= COL |$)")


def _ditto_record(text: str, source: str) -> Record:
    """One side of a Ditto pair ("COL title VAL … COL authors VAL …") as the record of an article."""
    values = {k: v.strip() for k, v in _DITTO_FIELD.findall(text.strip())}
    year = re.match(r"(1[89]\d\d|20\d\d)", values.get("year", ""))
    names = [n.strip() for n in values.get("authors", "").split(",") if n.strip()]
    return Record(source=source, local_id=hashlib.sha1(text.strip().encode()).hexdigest()[:16], format="article",
                  title=values.get("title", ""), year=int(year.group(1)) if year else None,
                  contributors=[Contributor(n, primary=i == 0) for i, n in enumerate(names)])


def dblp_scholar(folder: Path, members: int = 256) -> dict:
    """DBLP–Google Scholar (Ditto's split), scored over its labelled pairs.

    DBLP is one member; Scholar, which holds many papers twice, is spread over ``members`` members by
    a hash of each record's text (never by label), since two records of one member are never merged.
    Every distinct record of both label files is clustered once; precision, recall and F1 are then
    counted over each file's labelled pairs.  ``impossible``: labelled matches whose two records, or
    whose record and another match of the same record, fall in one member — no clustering can hold
    them all.
    """
    labelled: dict[str, list[tuple[tuple, tuple, bool]]] = {}
    records: dict[tuple, Record] = {}
    for name in ("test", "valid"):
        rows = []
        for line in (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines():
            left, right, label = line.rsplit("\t", 2)
            a = _ditto_record(left, "dblp")
            b = _ditto_record(right, "gs")
            b.source = f"gs{int(b.local_id, 16) % members:02d}"
            records.setdefault(a.key, a)
            records.setdefault(b.key, b)
            rows.append((a.key, b.key, label.strip() == "1"))
        labelled[name] = rows
    started = time.process_time()
    predicted, _found = _clusters(list(records.values()))
    out = {"records": len(records), "members": members + 1, "cpu_seconds": round(time.process_time() - started, 2)}
    for name, rows in labelled.items():
        tp = sum(1 for a, b, y in rows if y and predicted[a] == predicted[b])
        fp = sum(1 for a, b, y in rows if not y and predicted[a] == predicted[b])
        fn = sum(1 for a, b, y in rows if y and predicted[a] != predicted[b])
        s = scores(tp + fn, tp + fp, tp)
        out[name] = {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4),
                     "matches": tp + fn, "impossible": _impossible(rows)}
    return out


def _clusters(records: list[Record], max_block: int = 500):
    """Record key → group number, and what blocking found, as a full dedupe pass would group them."""
    feats = {r.key: record_features(r) for r in records}
    keys = {k: blocking_keys(f) for k, f in feats.items()}
    found = find_pairs(set(feats), MemoryBlocks(keys, feats), max_block=max_block)
    edges = [(p.a, p.b, p.score, p.rule) for p in found.pairs if p.decision == MATCH]
    groups, _rejected = cluster(keys, edges, vetoed=[(p.a, p.b) for p in found.pairs if p.decision == VETO])
    return {m: i for i, g in enumerate(groups) for m in g}, found


def _impossible(rows: list[tuple[tuple, tuple, bool]]) -> int:
    """Labelled matches no clustering can keep: the entity's records include two of one member."""
    entities = UnionFind()
    for a, b, y in rows:
        if y:
            entities.union(a, b)
    by_entity: dict = defaultdict(lambda: defaultdict(int))
    for a, b, y in rows:
        if y:
            for rec in (a, b):
                by_entity[entities.find(rec)][rec] = 1
    impossible = 0
    for a, b, y in rows:
        if y:
            sources = defaultdict(int)
            for rec in by_entity[entities.find(a)]:
                sources[rec[0]] += 1
            impossible += a[0] == b[0] or sources[a[0]] > 1 or sources[b[0]] > 1
    return impossible


def bib_r(folder: Path) -> dict:
    """Every BIB-R MARC 21 record in its own member file, through ``unioncat dedupe evaluate``."""
    from click.testing import CliRunner
    from pymarc import parse_xml_to_array

    from unioncat.cli import main

    out = {}
    for source in sorted(folder.glob("t42_*-marc21.xml")):
        case = source.name[len("t42_"):-len("-marc21.xml")]
        with tempfile.TemporaryDirectory() as tmp:
            files, rows = [], []
            for n, rec in enumerate(parse_xml_to_array(str(source))):
                local_id = rec["001"].data if rec["001"] else str(n)
                path = Path(tmp) / f"m{n}.mrc"
                path.write_bytes(rec.as_marc())
                files.append(str(path))
                rows.append(f"m{n},{local_id},{local_id}\n")
            gold = Path(tmp) / "gold.csv"
            gold.write_text("source,local_id,entity\n" + "".join(rows), encoding="utf-8")
            result = CliRunner().invoke(main, ["dedupe", "evaluate", "--gold", str(gold), *files])
            if result.exit_code != 0:
                raise SystemExit(result.output)
            scores = json.loads(result.stdout)
        out[case] = {"records": len(files), "wrong_merges": scores["pairs_predicted"], "clusters": scores["clusters"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("UNIONCAT_CORPUS", ROOT.parent / "shared" / "corpus")))
    args = parser.parse_args()
    dedup = args.corpus / "dedup"
    records, gold = cora_records(dedup / "cora_pyjedai")
    print(json.dumps({"set": "cora", **score_records(records, gold)}))
    print(json.dumps({"set": "bib-r", **bib_r(dedup / "bib-r")}))
    print(json.dumps({"set": "dblp-scholar",
                      **dblp_scholar(dedup / "ditto_er_magellan" / "Structured-DBLP-GoogleScholar")}))


if __name__ == "__main__":
    main()
