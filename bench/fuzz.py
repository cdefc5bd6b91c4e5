"""Fuzz the MARC paths out with mutated real records (issue 19): 0 uncaught exceptions, 0 dropped fields.

    python bench/fuzz.py --records 100000 --web 5000 --seed 19

1. ``--records`` mutants of real records (the shared corpus's ISO 2709 files and the LoC BooksAll file;
   one damage each, see ``tests/fuzz_marc.py``) through ``normalise`` and the published MARC every path
   shares (``publish.marc.item_marc``) written as MARCXML, ISO 2709 and MARC-in-JSON, each read back;
2. ``--web`` further mutants as a member dump, harvested and built into a catalogue, then every entry
   through the record page exports, the basket, OAI-PMH ListRecords and the API export (Flask test client),
   and published to Zebra (``zebraidx``, when installed).

Prints counts per mutation, rates, peak RSS, CPU seconds beside wall time and the load average.
Exits 1 when anything crashed or a field went missing.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from demo.loc import loc_file  # noqa: E402
from fuzz_marc import Tally, check, mutants, seeds_from, walk_web  # noqa: E402
from unioncat.catalogue import Catalogue  # noqa: E402
from unioncat.pipeline import build, harvest, select_sources  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402

KEY = "k-" + "5" * 30


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def writers_part(seeds: list[bytes], n: int, seed: int) -> Tally:
    tally = Tally()
    started, cpu = time.monotonic(), _cpu()
    for number, (name, payload) in enumerate(mutants(seeds, n, seed=seed)):
        check(name, payload, tally, number)
        if number and number % 10_000 == 0:
            print(f"  {number:,} records, {number / (time.monotonic() - started):,.0f}/s", flush=True)
    wall = time.monotonic() - started
    print(f"normalise + item_marc + MARCXML/ISO 2709/JSON: {tally.records:,} records in {wall:.1f} s wall, "
          f"{_cpu() - cpu:.1f} s CPU ({tally.records / wall:,.0f} records/s)")
    print(f"  normalised {tally.normalised:,}, quarantined {tally.quarantined:,}, published {tally.published:,} "
          f"(rebuilt from the model {tally.rebuilt:,}), counted as replaced characters {tally.with_replacements:,}")
    print(f"  uncaught exceptions {tally.crashes}, silently dropped fields {tally.dropped}")
    print("  by mutation: " + ", ".join(f"{k} {v:,}" for k, v in sorted(tally.by_mutation.items())))
    for failure in tally.failures[:10]:
        print("  FAIL", failure)
    return tally


def web_part(seeds: list[bytes], n: int, seed: int) -> int:
    with tempfile.TemporaryDirectory(prefix="unioncat-fuzz-") as tmp:
        root = Path(tmp)
        (root / "fuzz.mrc").write_bytes(b"".join(p if p.endswith(b"\x1d") else p + b"\x1d"
                                                 for _, p in mutants(seeds, n, seed=seed + 1)))
        (root / "sources.yaml").write_text(yaml.safe_dump({
            "consortium": {"name": "Fuzz"}, "regions": ["East"],
            "sources": [{"id": "fuzz", "name": "Fuzzed member", "region": "East", "protocol": "file",
                         "path": "fuzz.mrc", "holdings": "marc852"}]}), encoding="utf-8")
        cat = Catalogue(load_settings(env={}, sources_path=root / "sources.yaml", data_dir=root / "var",
                                      cache_dir=root / "cache"))
        try:
            started = time.monotonic()
            harvest(cat, select_sources(cat))
            build(cat)
            clusters = sum(1 for _ in cat.clusters.iter_live())
            print(f"web: {n:,} mutants harvested and built into {clusters:,} entries in "
                  f"{time.monotonic() - started:.1f} s")
            from web import create_app

            client = create_app({"SOURCES": cat.sources, "DB_ENGINE": cat.engine,
                                 "INDEX_PATH": str(cat.settings.index_dir), "SECRET_KEY": "fuzz",
                                 "API_KEYS": [KEY]}).test_client()
            started, cpu = time.monotonic(), _cpu()
            web = walk_web(cat, client, KEY, "members:fuzz")
            wall = time.monotonic() - started
            print(f"  {web.requests:,} requests (record exports merged + member, basket, OAI-PMH, API export) in "
                  f"{wall:.1f} s wall, {_cpu() - cpu:.1f} s CPU: 5xx {web.server_errors}, dropped fields "
                  f"{web.dropped}; member fields {web.member_fields:,}, in OAI-PMH {web.oai_fields:,}, "
                  f"in the API export {web.api_fields:,}")
            lost = web.server_errors + web.dropped + (web.oai_fields < web.member_fields) \
                + (web.api_fields < web.member_fields)
            lost += zebra_part(cat, root)
        finally:
            cat.close()
    return lost


def zebra_part(cat: Catalogue, root: Path) -> int:
    from publish.zebra import publish
    from publish.zebra_server import missing

    if missing():
        print(f"  zebra: {missing()}; skipped")
        return 0
    started = time.monotonic()
    try:
        report = publish(cat, root / "zebra", full=True)
    except Exception as exc:  # noqa: BLE001 - the bench counts it
        print(f"  zebra publish FAILED: {type(exc).__name__}: {exc}")
        return 1
    print(f"  zebra publish: {report} in {time.monotonic() - started:.1f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--web", type=int, default=5_000, help="mutants built into a catalogue for the web paths")
    parser.add_argument("--seeds", type=int, default=20_000, help="real records to mutate")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average at start {os.getloadavg()}")
    cache = Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache"))
    corpus = Path(os.environ.get("UNIONCAT_CORPUS", REPO.parent / "shared" / "corpus"))
    seeds = seeds_from([corpus / "marc21", corpus / "unimarc"], loc_file(cache), args.seeds)
    print(f"{len(seeds):,} real records to mutate (seed {args.seed})")
    started = time.monotonic()
    tally = writers_part(seeds, args.records, args.seed)
    lost = web_part(seeds, args.web, args.seed) if args.web else 0
    print(f"total {time.monotonic() - started:.1f} s wall, {_cpu():.1f} s CPU, peak RSS {_rss_mb():,.0f} MB, "
          f"load average at end {os.getloadavg()}")
    return 1 if tally.crashes or tally.dropped or lost else 0


if __name__ == "__main__":
    sys.exit(main())
