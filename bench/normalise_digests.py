"""One digest line per normalised record, to prove two versions of the normaliser store the same records.

    PYTHONPATH=/work/main python bench/normalise_digests.py main.txt [--raws raws.pickle]
    PYTHONPATH=.          python bench/normalise_digests.py branch.txt [--raws raws.pickle]
    join -t$'\t' <(sort main.txt) <(sort branch.txt) | awk -F'\t' '$2 != $3' | wc -l     # 0: equal

Each line is ``key<TAB>sha256`` of what ``normalise_one`` hands the store — the record's JSON *decoded*
(dict, key order included), its kind, 004 and holdings rows — or of the quarantine reason.  Decoded,
because the JSON's bytes may change (orjson writes it compact) while the record may not.  Inputs:
the LoC BooksAll file as MARC 21 ISO 2709 (``UNIONCAT_CACHE``), every ``.mrc`` of the corpus
(``UNIONCAT_CORPUS``; as ``auto`` and as ``marc21``) and every ``.xml`` (MARCXML, ``auto``), and with
``--raws`` a pickle of ``(raw records, holdings by source)``, e.g. a synthetic consortium's raw store.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from consortium.presets import HOLDINGS_PRESETS  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from harvester.raw import RawRecord  # noqa: E402
from normaliser.store import Stored  # noqa: E402
from unioncat.pipeline import normalise_one  # noqa: E402


def canonical(stored: Stored | None, reason: str | None) -> str:
    """What the store would hold, decoded, as one JSON text (or the quarantine reason)."""
    if stored is None:
        return f"Q {reason}"
    held = json.loads(stored.holdings) if stored.holdings is not None else None
    return json.dumps([json.loads(stored.data), stored.kind, stored.holdings_of, held], ensure_ascii=False)


def inputs(raws: Path | None) -> Iterator[tuple[str, RawRecord, tuple]]:
    """``(key, raw record, holdings mappings)`` for every record compared."""
    if raws is not None:
        records, holdings = pickle.loads(raws.read_bytes())
        for r in records:
            yield f"raws/{r.source}/{r.local_id}", r, holdings.get(r.source, ())
    marc852 = (HOLDINGS_PRESETS["marc852"],)
    cache = Path(os.environ.get("UNIONCAT_CACHE") or REPO / ".cache")
    for i, chunk in enumerate(iter_chunks(loc_file(cache, log=lambda *_: None))):
        yield f"loc/{i}", RawRecord("loc", str(i), chunk, "iso2709", "marc21"), marc852
    corpus = Path(os.environ.get("UNIONCAT_CORPUS") or REPO.parent / "shared" / "corpus")
    for path in sorted(corpus.rglob("*")):
        if path.suffix == ".mrc":
            for i, chunk in enumerate(iter_chunks(path)):
                for fmt in ("auto", "marc21"):
                    yield f"corpus/{path}/{i}/{fmt}", RawRecord("c", str(i), chunk, "iso2709", fmt), marc852
        elif path.suffix == ".xml":
            yield f"corpus/{path}", RawRecord("c", "x", path.read_bytes(), "marcxml", "auto"), marc852


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--raws", type=Path, help="pickle of (raw records, holdings by source)")
    args = parser.parse_args()
    started, n = time.process_time(), 0
    with open(args.out, "w") as out:
        for key, raw, holdings in inputs(args.raws):
            text = canonical(*normalise_one(raw, holdings))
            out.write(f"{key}\t{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}\n")
            n += 1
    print(f"{n} records, {time.process_time() - started:.1f} CPU-s, load {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
