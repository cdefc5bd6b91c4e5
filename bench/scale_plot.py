"""The PNG of ``bench/scale.py``'s results: build time and peak memory against consortium size.

Reads every run in the JSON lines file (the last run of each size wins) and draws, against member
records, the full build's CPU-seconds per stage and the incremental build's, and the peak RSS of
each stage's processes (VmHWM, and the sampled anonymous peak where a run has it) — the figures the
issue's acceptance is stated in.
"""
from __future__ import annotations

import json
from pathlib import Path

STAGES = ("harvest", "normalise", "dedupe", "index")
BUILD = STAGES[1:]


def _shown(stage: dict, value: str) -> str:
    """A figure as the table shows it: "≈" before one that a resumed run estimated (its ``estimated`` flag:
    the stage finished before the run recorded it), "–" for one never measured."""
    return "–" if value in ("0", "") else ("≈" if stage.get("estimated") else "") + value


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
        line, = mem.plot(sizes, [r["full"][stage]["peak_rss_mb"] for r in runs], marker="o",
                         label=f"{stage}: VmHWM")
        owned = [(size, r["full"][stage]["peak_anon_mb"]) for size, r in zip(sizes, runs)
                 if r["full"][stage].get("peak_anon_mb")]
        if owned:   # VmHWM counts the index's mapped segment pages; the anonymous peak is what a process needs
            mem.plot(*zip(*owned), marker=".", linestyle="--", color=line.get_color(),
                     label=f"{stage}: anonymous (owned)")
    cpu.plot(sizes, [r["incremental"]["build"]["cpu_s"] for r in runs], marker="s", linestyle="--",
             label="incremental build (1% of one member)")
    cpu.set(xlabel="member records (millions)", ylabel="CPU-seconds", title="Build CPU time")
    mem.axhline(2048, color="grey", linestyle=":", label="2 GB goal")
    mem.set(xlabel="member records (millions)", ylabel="peak RSS (MB)", title="Peak memory per stage process")
    loads = ", ".join(f"{s:.3g}M: load {r['full']['dedupe']['load_before']}" for s, r in zip(sizes, runs))
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


def table(results: Path) -> str:
    """The Markdown table of BENCHMARKS.md and docs/production.md, one row per size (latest run)."""
    head = ("| member records (manifestations) | date, load at dedupe | normalise / dedupe / index CPU-s | "
            "build: member records per CPU-s | peak RSS per stage (MB): harvest / normalise (workers) / dedupe / index | "
            "database + index on disk | incremental 1% of one member: CPU-s (share of full) |")
    rows = [head, "|" + "---|" * 7]
    for r in latest_by_size(results):
        f, inc, g = r["full"], r["incremental"], r["generated"]
        n, disk = g["member_records"], f["sizes"]
        rss = " / ".join(_shown(f[s], str(f[s]["peak_rss_mb"])) + (f" ({f[s]['worker_peak_rss_mb']})" if
                                                                   f[s]["worker_peak_rss_mb"] else "") for s in STAGES)
        cpu = " / ".join(_shown(f[s], f"{f[s]['cpu_s']:,.0f}") for s in BUILD)
        rate = _shown(f["normalise"], f"{f['build']['records_per_cpu_s']:,.0f}")
        if "reference" in r:     # runs since the yardstick (scale_stage.reference): comparable across machines
            rate += f" ({r['reference']['build_in_parses']} pymarc parses a record)"
        rows.append(f"| {n:,} ({g['manifestations']:,}) | {r['date'][:16].replace('T', ' ')}, "
                    f"{f['dedupe']['load_before']} | {cpu} | **{rate}** | {rss} | "
                    f"{disk['database_mb']:,.0f} + {disk['index_mb']:,.0f} MB "
                    f"({(disk['database_mb'] + disk['index_mb']) * 1024 / n:.1f} KB per record) | "
                    f"{inc['build']['cpu_s']:.1f} ({inc['share_of_full_cpu']:.1%}) |")
    return "\n".join(rows)
