"""SHA-256 of what a dedupe pass decided: to check that two runs, or two versions of the code, decide the same.

    python bench/dedupe_digest.py [--decoded] DATABASE     (a path to an SQLite file, or an SQLAlchemy URL)

Prints each table's row count and the digest of its ordered rows: ``clusters`` (every column but the
change sequence and timestamp: ``created_seq``, which decides "the oldest id wins" later, is kept),
``dedupe_members``, ``dedupe_pairs``, ``dedupe_class_pairs`` and ``cluster_redirects``, and ``pairs``: every
stored pair read back as a pair of records (``EvidenceStore.all_pairs``).  The raw rows compare runs of one version
(``bench/dedupe_rq.py``, ``tests/test_dedupe_partitions.py``); ``--decoded`` compares two versions whose
stored encoding may differ: the clusters' and members' JSON columns and the pairs' evidence (read through
``EvidenceStore``) are compared decoded, and the decoded ``dedupe_features`` (with their source) and their
``dedupe_keys`` are added.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import inspect, text  # noqa: E402
from sqlalchemy.engine import Connection, Engine  # noqa: E402

from dedupe.blockstore import with_source  # noqa: E402
from dedupe.evidence import EvidenceStore  # noqa: E402
from storage.db import make_engine, sqlite_url  # noqa: E402
from storage.jsoncodec import loads  # noqa: E402

#: Each table's rows in a total order, without what differs between two equal passes (when they ran).
TABLES = {
    "clusters": "SELECT id, data, members, match_keys, work_key, member_count, source_count, created_seq, deleted "
                "FROM clusters ORDER BY id",
    "dedupe_members": "SELECT source, local_id, match_keys, cluster_id, work_key FROM dedupe_members "
                      "ORDER BY source, local_id",
    "dedupe_pairs": "SELECT a_source, a_id, b_source, b_id, decision, rule, score, evidence FROM dedupe_pairs "
                    "ORDER BY a_source, a_id, b_source, b_id",
    "dedupe_class_pairs": "SELECT a_class, b_class, decision, rule, score, evidence FROM dedupe_class_pairs "
                          "ORDER BY a_class, b_class",
    "cluster_redirects": "SELECT old_id, new_id FROM cluster_redirects ORDER BY old_id",
}


def digest(rows: Iterable) -> str:
    """``count:digest`` of rows (JSON of each, so SQLite's and PostgreSQL's rows of equal values agree)."""
    h, n = hashlib.sha256(), 0
    for row in rows:
        h.update(json.dumps(list(row), ensure_ascii=False, default=str).encode())
        n += 1
    return f"{n}:{h.hexdigest()[:16]}"


def digests(url: str, decoded: bool = False) -> dict[str, str]:
    """``count:digest`` of each table's ordered rows in the database at ``url``; ``decoded``: the pairs'
    evidence decoded, and the decoded features and keys too (two versions of the code)."""
    engine = make_engine(url)
    try:
        present = set(inspect(engine).get_table_names())    # a store an older version wrote lacks the newer tables
        with engine.connect() as conn:
            out = {table: digest(conn.execute(text(query))) for table, query in TABLES.items() if table in present}
            out["pairs"] = digest(sorted(EvidenceStore(engine).all_pairs(("match", "internal", "veto"))))
            if decoded:
                out.update(_decoded(engine, conn))
    finally:
        engine.dispose()
    return out


#: The JSON columns of each table (by position in its query) that ``--decoded`` compares decoded.
JSON_COLUMNS = {"clusters": (1, 2, 3), "dedupe_members": (2,)}


def _decoded(engine: Engine, conn: Connection) -> dict[str, str]:
    def rows(table: str) -> Iterator[list]:
        for row in conn.execute(text(TABLES[table])):
            yield [loads(v) if i in JSON_COLUMNS[table] else v for i, v in enumerate(row)]

    members = sorted(tuple(r) for r in conn.execute(text("SELECT source, local_id FROM dedupe_members")))
    pairs = EvidenceStore(engine).pairs_touching(members)
    features = conn.execute(text("SELECT source, local_id, data, block_keys FROM dedupe_features "
                                 "ORDER BY source, local_id"))
    return {"dedupe_pairs": digest((*p.a, *p.b, p.decision, p.rule, p.score, sorted(p.evidence.items()))
                                   for p in pairs),
            **{table: digest(rows(table)) for table in JSON_COLUMNS},
            # a row holds the features without the source since 2026-12-05 (``blockstore.with_source``)
            "dedupe_features": digest((s, l, with_source(s, loads(d)), loads(k)) for s, l, d, k in features),
            "dedupe_keys": digest(conn.execute(text("SELECT key, source, local_id FROM dedupe_keys "
                                                    "ORDER BY key, source, local_id")))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("database", help="an SQLite file or an SQLAlchemy URL")
    ap.add_argument("--decoded", action="store_true", help="compare decoded rows (two versions of the code)")
    args = ap.parse_args()
    url = args.database if "://" in args.database else sqlite_url(Path(args.database))
    for table, value in digests(url, args.decoded).items():
        print(table, *value.split(":"))


if __name__ == "__main__":
    main()
