"""SHA-256 of what a dedupe pass decided, to check that two versions of the code decide the same.

    python bench/dedupe_digest.py /path/to/unioncat.db

Prints a count and digest each of the ordered rows of ``clusters`` (every column but the sequence
numbers and timestamps), ``dedupe_members`` and ``dedupe_pairs`` — the pairs read through
``EvidenceStore`` so the evidence is compared decoded, whatever its stored encoding — and of the
decoded ``dedupe_features`` with their ``dedupe_keys``.
"""
from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine  # noqa: E402

from dedupe.evidence import EvidenceStore  # noqa: E402
from dedupe.jsoncodec import loads  # noqa: E402

#: Columns that differ between two equal passes (when they ran, not what they decided).
VOLATILE = {"seq", "updated_at", "created_at"}


def digest(rows: Iterable) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for row in rows:
        h.update(repr(row).encode())
        n += 1
    return n, h.hexdigest()[:16]


def ordered(db: sqlite3.Connection, table: str, order: str) -> Iterable:
    cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1] not in VOLATILE]
    return db.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}")


def main(path: str) -> None:
    db = sqlite3.connect(path)
    print("clusters", *digest(ordered(db, "clusters", "id")))
    print("dedupe_members", *digest(ordered(db, "dedupe_members", "source, local_id")))
    members = sorted(db.execute("SELECT source, local_id FROM dedupe_members"))
    pairs = EvidenceStore(create_engine(f"sqlite:///{path}")).pairs_touching(members)
    print("dedupe_pairs", *digest((p.a, p.b, p.decision, p.rule, p.score, sorted(p.evidence.items())) for p in pairs))
    print("dedupe_features", *digest((s, l, loads(d), loads(k)) for s, l, d, k in db.execute(
        "SELECT source, local_id, data, block_keys FROM dedupe_features ORDER BY source, local_id")))
    print("dedupe_keys", *digest(db.execute("SELECT key, source, local_id FROM dedupe_keys ORDER BY key, source, local_id")))


if __name__ == "__main__":
    main(sys.argv[1])
