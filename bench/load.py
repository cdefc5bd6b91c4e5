"""A bounded loopback load on the served catalogue with the rate limits on (issue 19's acceptance run).

    python bench/load.py --records 3000 --clients 50 --seconds 30

Builds a catalogue from N LoC records (three file members, as ``bench/provider.py`` does), serves it
with ``unioncat serve`` in its own process on 127.0.0.1 behind one "trusted proxy"
(``UNIONCAT_TRUSTED_PROXIES=1``: each client thread sends its own ``X-Forwarded-For``, as the proxy
would), then runs ``--clients`` closed-loop clients for at most ``--seconds`` and at most
``--per-client`` requests each.  Every client cycles: a search page, a search's JSON twin, a record
page, an OAI-PMH ``ListIdentifiers`` page.  Bounded in count and time, loopback only.

Prints per kind the statuses, latency percentiles of answered requests and the rate of answered
searches per client against the limit (``rate × seconds + burst``: the token bucket's most), plus
the server's peak RSS and CPU-seconds beside wall time and the load average before and after.
``--hog-threads`` more connections share one address and ask only searches: that address must get
no more than one client's allowance while the others go on.  Exit status 1 if any answer is a 5xx
(or none came) or an address got more searches than its limit allows.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provider import MEMBERS, _pages, _wait, build_members, free_port, percentile  # noqa: E402
from publish.feed import Published  # noqa: E402
from unioncat import pipeline  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402

HOG = 10_000      # the client number of the hog threads: one address, many connections
WORDS = ("history", "china", "law", "science", "art", "war", "language", "music", "report", "water",
         "education", "health", "economic", "poetry", "religion", "children", "city", "energy")


def build(records: int, cache: Path, work: Path) -> list[str]:
    """The catalogue in ``work``; returns its cluster ids (record pages to ask for)."""
    build_members(records, work / "dumps", cache)
    sources = {"consortium": {"name": "Load"}, "regions": ["R"],
               "sources": [{"id": m, "name": m, "region": "R", "protocol": "file", "path": f"dumps/{m}.mrc",
                            "format": "marc21", "holdings": preset} for m, _, preset in MEMBERS]}
    (work / "sources.yaml").write_text(yaml.safe_dump(sources), encoding="utf-8")
    settings = load_settings(env={}, data_dir=work / "var", sources_path=work / "sources.yaml", cache_dir=cache)
    cat = pipeline.Catalogue(settings)
    pipeline.harvest(cat, pipeline.select_sources(cat))
    pipeline.build(cat)
    ids = [item.cluster_id for items in _pages(Published(cat.engine), 500) for item in items]
    cat.close()
    return ids


class Tally:
    """Statuses and latencies per request kind, and answered searches per client (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: dict[str, Counter] = defaultdict(Counter)
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.searches: Counter = Counter()

    def add(self, kind: str, client: int, status: int, seconds: float) -> None:
        with self.lock:
            self.status[kind][status] += 1
            if status == 200:
                self.latency[kind].append(seconds)
                if kind.startswith("search"):
                    self.searches[client] += 1


def client(n: int, root: str, ids: list[str], tally: Tally, deadline: float, budget: int,
           kinds: tuple[str, ...] = ("search", "search.json", "record", "oai")) -> None:
    http = requests.Session()
    http.headers["X-Forwarded-For"] = "10.66.0.1" if n >= HOG else f"10.0.{n // 250}.{n % 250 + 1}"
    rnd = random.Random(n)
    n = min(n, HOG)
    for i in range(budget):
        if time.monotonic() >= deadline:
            return
        kind = kinds[i % len(kinds)]
        if kind == "search":
            url = f"{root}/search?q={rnd.choice(WORDS)}"
        elif kind == "search.json":
            url = f"{root}/search.json?q={rnd.choice(WORDS)}"
        elif kind == "record":
            url = f"{root}/record/{rnd.choice(ids)}"
        else:
            url = f"{root}/oai?verb=ListIdentifiers&metadataPrefix=oai_dc"
        started = time.perf_counter()
        try:
            status = http.get(url, timeout=60).status_code
        except requests.RequestException:
            status = 0  # no answer at all: counted apart from 5xx
        tally.add(kind, n, status, time.perf_counter() - started)


def proc_cpu_and_rss(pid: int) -> tuple[float, float]:
    """CPU-seconds (user + system) and peak RSS in MiB of a process, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM"))
    return cpu, int(hwm.split()[1]) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=3000, help="LoC base records (≤ 250,000)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30.0, help="at most this long")
    ap.add_argument("--per-client", type=int, default=400, help="at most this many requests per client")
    ap.add_argument("--threads", type=int, default=8, help="waitress threads of the served app")
    ap.add_argument("--search-rate", type=int, default=1, help="UNIONCAT_SEARCH_RATE of the run (default 1/s, "
                    "so that ordinary clients meet it; the product's default is 5)")
    ap.add_argument("--hog-threads", type=int, default=10,
                    help="extra connections from one address asking only searches")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="unioncat-bench-load-"))
    ids = build(args.records, args.cache, work)
    print(f"{platform.node()}: {os.cpu_count()} cores, {len(ids)} clusters from {args.records} LoC records; "
          f"load average {os.getloadavg()}", flush=True)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "UNIONCAT_SOURCES": str(work / "sources.yaml"),
           "UNIONCAT_DATA": str(work / "var"), "UNIONCAT_TRUSTED_PROXIES": "1",
           "UNIONCAT_SECRET_KEY": "bench-load", "UNIONCAT_SEARCH_RATE": str(args.search_rate)}
    server = subprocess.Popen([sys.executable, "-m", "unioncat", "serve", "--port", str(port),
                               "--threads", str(args.threads)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port)
        root = f"http://127.0.0.1:{port}"
        requests.get(f"{root}/search.json?q=warm", headers={"X-Forwarded-For": "10.9.9.9"}, timeout=60)
        cpu_before, _ = proc_cpu_and_rss(server.pid)
        tally = Tally()
        started = time.monotonic()
        deadline = started + args.seconds
        threads = [threading.Thread(target=client, args=(n, root, ids, tally, deadline, args.per_client))
                   for n in range(args.clients)]
        threads += [threading.Thread(target=client, args=(HOG + n, root, ids, tally, deadline, args.per_client,
                                                          ("search.json",)))
                    for n in range(args.hog_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        cpu_after, rss = proc_cpu_and_rss(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    return report(tally, wall, cpu_after - cpu_before, rss, args.clients, args.search_rate)


def report(tally: Tally, wall: float, server_cpu: float, server_rss: float, clients: int, rate: int) -> int:
    total = sum(sum(c.values()) for c in tally.status.values())
    print(f"{total} requests from {clients} clients in {wall:.1f} s wall ({total / wall:.0f}/s); server "
          f"{server_cpu:.1f} CPU-s, peak RSS {server_rss:.0f} MiB; bench process peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; load average {os.getloadavg()}")
    for kind, statuses in sorted(tally.status.items()):
        lat = tally.latency[kind]
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        timing = (f"p50 {percentile(lat, 0.5) * 1000:.0f} ms, p95 {percentile(lat, 0.95) * 1000:.0f} ms, "
                  f"p99 {percentile(lat, 0.99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms") if lat else "none answered"
        print(f"  {kind:12} {shown}; answered: {timing}")
    allowed = rate * wall + 6 * rate  # the bucket's most: refill over the run plus one burst
    ordinary = {c: n for c, n in tally.searches.items() if c < HOG}
    most = max(ordinary.values(), default=0)
    hog = tally.searches.get(HOG, 0)
    print(f"  answered searches per ordinary client: max {most}, mean {sum(ordinary.values()) / clients:.1f}; "
          f"the hog address (many connections): {hog}; limit per address {allowed:.0f} "
          f"({rate}/s × {wall:.1f} s + burst {6 * rate})")
    errors = sum(n for c in tally.status.values() for s, n in c.items() if s >= 500 or s == 0)
    print(f"  5xx or no answer: {errors}")
    return 1 if errors or max(most, hog) > allowed else 0


if __name__ == "__main__":
    sys.exit(main())
