"""Does counting usage slow searches or OAI-PMH harvesting?  Both with the usage statistics on and off.

    python bench/usage.py [--records 3000] [--requests 400] [--rounds 4] [--oai-rounds 4] [--json]

Builds a temporary catalogue (two file members of ``--records`` generated records each, harvested and
built into the embedded tantivy index), then asks ``/search?q=…`` through the Flask test client with
``USAGE_STATISTICS`` on and off, alternating in ``--rounds`` blocks so a change in the machine's load
hits both alike.  The counts are flushed by the background thread every second while it runs (so the
writes happen during the searches, as in production).  Prints p50 / p95 / p99 per mode, CPU-seconds
beside wall time, peak RSS and the load average, and the counted searches as a check.

Then walks ``ListRecords`` (``marcxml``, every page to the end) ``--oai-rounds`` times per mode, page for
page in lockstep: records/s by wall time and by CPU time per mode and their ratio (on ÷ off), with the records
counted and the holding members' shares written (``oai_held``): each served record counted once per
member holding it, in the same batch.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import yaml  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from marc_fixtures import iso2709, make_record  # noqa: E402
from staff import resources  # noqa: E402 - bench/staff.py
from unioncat.cli import main as cli  # noqa: E402
from unioncat.pipeline import Catalogue  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402
from web import create_app  # noqa: E402
from web.usage_store import UsageStore  # noqa: E402

WORDS = ["history", "rivers", "law", "birds", "silk", "poetry", "water", "china", "economics", "music"]


def build(folder: Path, records: int) -> Catalogue:
    sources = []
    for member in ("lib-a", "lib-b"):
        recs = [make_record(f"{member}-{n}", title=f"The {WORDS[n % 10]} of {WORDS[(n // 10) % 10]} volume {n}",
                            author=f"Author{n % 97}, A.", year=str(1990 + n % 30)) for n in range(records)]
        (folder / f"{member}.mrc").write_bytes(b"".join(iso2709(r) for r in recs))
        sources.append({"id": member, "name": member, "region": "R", "protocol": "file", "path": f"{member}.mrc"})
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump({"consortium": {"name": "Bench"}, "sources": sources}), encoding="utf-8")
    args = ["--sources", str(path), "--data", str(folder / "var")]
    for step in (["harvest"], ["build"]):
        result = CliRunner().invoke(cli, [*args, *step])
        assert result.exit_code == 0, result.output
    return Catalogue(load_settings(env={}, sources_path=str(path), data_dir=str(folder / "var")))


def run(client, n: int, offset: int) -> list[float]:
    times = []
    for i in range(n):
        q = f"{WORDS[(i + offset) % 10]} {WORDS[(i * 3 + offset) % 10]}"
        start = time.perf_counter()
        response = client.get(f"/search?q={q}")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return times


def oai_rates(clients: dict, rounds: int) -> dict:
    """Records/s served by wall and by CPU time, statistics on and off.

    Both modes walk ``ListRecords`` to the end in lockstep, page for page (on, off, off, on, …), so a
    change in the machine's load hits both alike: the difference left is the counting's own.
    """
    totals = {m: [0, 0.0, 0.0] for m in clients}  # records, wall s, CPU s
    first = "/oai?verb=ListRecords&metadataPrefix=marcxml"
    for r in range(rounds):
        urls = dict.fromkeys(clients, first)
        step = 0
        while any(urls.values()):
            for mode in (("on", "off") if (r + step) % 2 == 0 else ("off", "on")):
                if urls[mode]:
                    wall, cpu = time.perf_counter(), time.process_time()
                    text = clients[mode].get(urls[mode]).text
                    totals[mode][1] += time.perf_counter() - wall
                    totals[mode][2] += time.process_time() - cpu
                    totals[mode][0] += text.count("<record>")
                    token = re.search(r"<resumptionToken[^>]*>([^<]+)</resumptionToken>", text)
                    urls[mode] = f"/oai?verb=ListRecords&resumptionToken={quote(token.group(1))}" if token else None
            step += 1
    out = {f"oai_{m}": {"records": n, "rec_per_s": round(n / wall), "rec_per_cpu_s": round(n / cpu)}
           for m, (n, wall, cpu) in totals.items()}
    out["oai_rate_on_vs_off"] = round(out["oai_on"]["rec_per_s"] / out["oai_off"]["rec_per_s"], 3)
    out["oai_cpu_rate_on_vs_off"] = round(out["oai_on"]["rec_per_cpu_s"] / out["oai_off"]["rec_per_cpu_s"], 3)
    return out


def summary(times: list[float]) -> dict:
    times = sorted(times)
    pick = lambda p: round(times[min(len(times) - 1, int(p * len(times)))], 2)  # noqa: E731
    return {"requests": len(times), "p50_ms": round(statistics.median(times), 2), "p95_ms": pick(0.95),
            "p99_ms": pick(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=400, help="searches per mode")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--oai-rounds", type=int, default=4, help="ListRecords walks per mode")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cat = build(Path(tmp), args.records)
        base = {"SOURCES": cat.sources, "DB_ENGINE": cat.engine, "SEARCH_BACKEND": cat.index, "SECRET_KEY": "b",
                "TESTING": True, "USAGE_FLUSH_SECONDS": 1,
                "SEARCH_RATE": 1e9, "SEARCH_BURST": 10**9}  # one client asking fast: not what the limits are for
        clients = {"on": create_app({**base, "USAGE_STATISTICS": True}).test_client(),
                   "off": create_app({**base, "USAGE_STATISTICS": False}).test_client()}
        for c in clients.values():
            run(c, 20, 0)  # warm the index readers and templates
        times: dict[str, list[float]] = {"on": [], "off": []}
        cpu, wall = time.process_time(), time.perf_counter()
        per_block = max(1, args.requests // args.rounds)
        for r in range(args.rounds):
            for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
                times[mode] += run(clients[mode], per_block, r)
        result = {"records": 2 * args.records, **{f"statistics_{m}": summary(t) for m, t in times.items()}}
        result["p95_on_vs_off"] = round(result["statistics_on"]["p95_ms"] / result["statistics_off"]["p95_ms"], 3)
        if args.oai_rounds:
            result.update(oai_rates(clients, args.oai_rounds))
        result.update(resources(cpu, wall))
        clients["on"].application.extensions["unioncat_usage"].flush()
        counted = UsageStore(cat.engine).totals()
        result["searches_counted"] = counted.get("search", 0)
        result["oai_records_counted"] = counted.get("oai_record", 0)
        result["oai_holding_shares_counted"] = counted.get("oai_held", 0)
        cat.close()
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
