"""How long a formatted reference takes through CSL (citeproc-py), per style, for real LoC records.

    python bench/citations.py --records 2000

Records are normalised from the cached LoC file (``demo.loc``); each is cited alone in every style
(what ``/record/<id>/cite.json`` does: plain text and HTML), then a 100-record basket per style (what
``/basket/cite/<style>.txt`` does): cold (its entries never formatted in this process), again (every
entry kept), and with one record added in front (the numbers of a numbered style move).  Prints
p50/p95/max per style, CPU-seconds beside wall time, peak RSS and the load average.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from demo.loc import iter_chunks, loc_file  # noqa: E402
from harvester.raw import RawRecord  # noqa: E402
from normaliser import normalise  # noqa: E402
from normaliser.errors import RecordError  # noqa: E402
from web import citations  # noqa: E402
from web.citations import CSL_STYLES, cite  # noqa: E402


def records(n: int, cache: Path) -> list:
    out = []
    for i, chunk in enumerate(iter_chunks(loc_file(cache), limit=n)):
        try:
            out.append((normalise(RawRecord(source="loc", local_id=str(i), payload=chunk)), f"r{i}"))
        except RecordError:
            continue
    return out


def pct(times: list[float], p: float) -> float:
    return times[min(len(times) - 1, int(round(p / 100 * (len(times) - 1))))]


def timed(call) -> tuple[float, float]:
    """Wall and CPU milliseconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    args = ap.parse_args()
    pairs = records(args.records, args.cache)
    wall, cpu = time.perf_counter(), time.process_time()
    print("| style | one record p50 | p95 | max | 100-record basket: cold | again | one added in front |")
    print("|---|---|---|---|---|---|---|")
    for style in CSL_STYLES:
        cite(pairs[:1], style)  # parses the style once
        times = []
        for pair in pairs:
            t = time.perf_counter()
            cite([pair], style)
            cite([pair], style, html=True)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        citations._entries = citations._Entries(20_000)  # the basket's entries as never seen
        basket = [timed(lambda: cite(pairs[:100], style)), timed(lambda: cite(pairs[:100], style)),
                  timed(lambda: cite(pairs[100:101] + pairs[:100], style))]
        print(f"| {style} | {pct(times, 50):.1f} ms | {pct(times, 95):.1f} ms | {times[-1]:.1f} ms | "
              + " | ".join(f"{wall:.0f} ms (CPU {cpu:.0f} ms)" for wall, cpu in basket) + " |")
    print(f"\n{len(pairs)} records; wall {time.perf_counter() - wall:.0f} s, CPU {time.process_time() - cpu:.0f} s, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, load average "
          f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
