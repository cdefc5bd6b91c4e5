"""The PNG of ``bench/scale.py``'s results: build time and peak memory against consortium size.

Reads every run in the JSON lines file (the last run of each size wins) and draws, against member
records, the full build's CPU-seconds per stage and the incremental build's, and the peak RSS of
each stage's processes — the figures the issue's acceptance is stated in.
"""
from __future__ import annotations

import json
from pathlib import Path

STAGES = ("harvest", "normalise", "dedupe", "index")


def latest_by_size(results: Path) -> list[dict]:
    runs: dict[int, dict] = {}
    for line in results.read_text().splitlines():
        if line.strip():
            run = json.loads(line)
            runs[run["generated"]["member_records"]] = run
    return [runs[n] for n in sorted(runs)]


def plot(results: Path, png: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = latest_by_size(results)
    sizes = [r["generated"]["member_records"] / 1e6 for r in runs]
    fig, (cpu, mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage in STAGES:
        cpu.plot(sizes, [r["full"][stage]["cpu_s"] for r in runs], marker="o", label=f"full: {stage}")
        mem.plot(sizes, [r["full"][stage]["peak_rss_mb"] for r in runs], marker="o", label=stage)
    cpu.plot(sizes, [r["incremental"]["build"]["cpu_s"] for r in runs], marker="s", linestyle="--",
             label="incremental build (1% of one member)")
    cpu.set(xlabel="member records (millions)", ylabel="CPU-seconds", title="Build CPU time")
    mem.axhline(2048, color="grey", linestyle=":", label="2 GB goal")
    mem.set(xlabel="member records (millions)", ylabel="peak RSS (MB)", title="Peak memory per stage process")
    loads = ", ".join(f"{s:g}M: load {r['full']['dedupe']['load_before']}" for s, r in zip(sizes, runs))
    fig.suptitle(f"bench/scale.py — 130 synthetic members, 2 shared cores ({loads})", fontsize=9)
    for ax in (cpu, mem):
        ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
