"""The consortium-scale benchmark: a synthetic province of ~130 members, built end to end.

    python bench/scale.py --members-records 500000            # 0.5M member records (also 1M, 2M, 5M)
    python bench/scale.py --plot --table                        # docs/scale.png and the Markdown table

Generates the members' dumps deterministically from the 250k LoC records (``demo/synthetic.py``:
editions with new ISBNs, years, publishers and subtitles; Chinese records; Zipf-like holdings over
130 members in the seven demo ILS export styles), writes ``sources.yaml``, then runs harvest,
normalise, dedupe and index — each in its own process, through ``unioncat.pipeline`` — and an
incremental build after 1% of the largest member's records change (the dump rewritten, every
member harvested again).  Per stage it prints wall and CPU seconds (the stage and its worker
processes), member records per CPU-second, the peak RSS of every process (sampled from /proc) and
the database and index size; the load average is recorded with each stage.  Before and after the
full build it times pymarc parsing 20,000 LoC records (``scale_stage.reference``, ``--reference-records``)
and gives the build's CPU a member record in such parses: a figure that compares across machines where
CPU-seconds do not.  One JSON line per run is appended to ``bench/results/scale.jsonl``; each finished
stage is also kept in ``WORK/scale-progress.json`` so that ``--resume`` can finish an interrupted run.  Disk: about
9.5 KB per member record while it runs (dumps ~1.1 KB, SQLite ~7 KB, index ~1.5 KB): 5 GB at
0.5M, 10 GB at 1M, 48 GB at 5M.  Time: 1M took 32 min end to end on a nearly quiet two-core box
(2026-12-04: generate 6, harvest 2, normalise 4, dedupe 17, index 3); 5M, if stages stay near linear
(the dedupe does not quite), ≈ 3 h — start it first thing, with ``--dedupe-workers 2``.  A dedupe
interrupted mid-pass goes on where it stopped when the stage is run again (``dedupe/fullpass.py``),
but that stage's CPU figure then counts only what was left.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from filepeak import PeakSize
from proctree import tree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runtime.workerpool import cores  # noqa: E402

RESULTS = REPO / "bench" / "results" / "scale.jsonl"
BUILD = ("normalise", "dedupe", "index")


class PeakSampler(threading.Thread):
    """Peak RSS (VmHWM) and CPU time of a process and every descendant, read from /proc twice a second.

    The CPU matters because the normaliser's workers are children of a forkserver that nobody waits
    for, so ``wait4`` of the stage does not count them.  VmHWM counts the index files tantivy maps
    (page cache the kernel may take back); the sampled peak of ``RssAnon`` is the memory a process owns."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root, self.peaks, self.names, self.cpu, self.anon = pid, {}, {}, {}, {}
        self.done = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        for pid in tree([self.root]):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.cpu[pid] = (int(stat[11]) + int(stat[12])) / self.tick  # utime + stime of the process itself
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if "VmHWM" in fields:
                self.peaks[pid] = max(self.peaks.get(pid, 0), int(fields["VmHWM"].split()[0]) // 1024)
                self.anon[pid] = max(self.anon.get(pid, 0), int(fields["RssAnon"].split()[0]) // 1024)
                self.names[pid] = "main" if pid == self.root else "worker"

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.sample()


def checkout_env() -> dict[str, str]:
    """The environment of a stage process: this checkout first on ``PYTHONPATH``.

    A start-up hook (``unioncat/compiled.py``'s ``.pth``, where ``make compiled`` ran) imports ``unioncat``
    before a script can put its checkout first, and the editable install maps it to the checkout the virtualenv was made
    from: a benchmark run from a git worktree would otherwise run that checkout's ``unioncat`` (the pipeline)
    with the worktree's other packages."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def sampled(command: list[str], what: str) -> tuple[dict, resource.struct_rusage, PeakSampler]:
    """Run ``command`` from this checkout, its process tree sampled from /proc; the last JSON line it printed,
    its rusage (``wait4``) and the sampler (``sampler.root`` is its pid).  A command that fails ends the run."""
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True, env=checkout_env())
    sampler = PeakSampler(proc.pid)
    sampler.start()
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    sampler.done.set()
    sampler.join()      # its last sample finished before the caller reads it
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"{what} failed ({code}): {out[-2000:]}")
    return json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{"))), usage, sampler


def stage(work: Path, name: str, *args: object) -> dict:
    """Run one stage in a child process; its report plus wall, CPU (with its workers) and peak RSS."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with PeakSize(work / "var" / "unioncat.db-wal") as wal:
        report, usage, sampler = sampled([sys.executable, str(REPO / "bench" / "scale_stage.py"), str(work), name,
                                          *map(str, args)], f"stage {name}")
    workers = [mb for pid, mb in sampler.peaks.items() if sampler.names[pid] == "worker"]
    return {"report": report, "wall_s": round(time.perf_counter() - started, 2),
            # both are lower bounds: wait4 misses unwaited grandchildren, the samples the last half second
            "cpu_s": round(max(usage.ru_utime + usage.ru_stime, sum(sampler.cpu.values())), 2),
            "peak_rss_mb": max(usage.ru_maxrss // 1024, sampler.peaks.get(sampler.root, 0)),
            "worker_peak_rss_mb": max(workers, default=0), "processes": len(sampler.peaks),
            "peak_anon_mb": max(sampler.anon.values(), default=0),
            "peak_wal_mb": round(wal.peak / 2 ** 20, 1),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def du_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1) if path.exists() else 0.0


def sizes(work: Path) -> dict:
    """Disk of the dumps, the SQLite database (with its WAL) and the embedded index (``var/index``)."""
    var = work / "var"
    database = sum(p.stat().st_size for p in var.glob("unioncat.db*")) / 2**20 if var.exists() else 0.0
    return {"dumps_mb": du_mb(work / "dumps"), "database_mb": round(database, 1), "index_mb": du_mb(var / "index")}


class Done:
    """The stages a run has finished, kept in ``WORK/scale-progress.json`` as each one ends.

    A 5M run takes hours; when it is interrupted, ``--resume`` runs again only what had not finished
    (the pipeline's own checkpoints make the stage that was cut off start again cleanly)."""

    def __init__(self, work: Path, resume: bool):
        self.path = work / "scale-progress.json"
        self.saved = json.loads(self.path.read_text()) if resume and self.path.exists() else {}
        if not resume:
            self.path.unlink(missing_ok=True)

    def run(self, key: str, work: Path, name: str, *args: object) -> dict:
        if key not in self.saved:
            self.saved[key] = stage(work, name, *args)
            self.path.write_text(json.dumps(self.saved, indent=1))
        return self.saved[key]


def build(done: Done, work: Path, n: int, phase: str) -> dict:
    """harvest + normalise + dedupe + index; per stage and the build's total (normalise..index)."""
    out = {s: done.run(f"{phase}.{s}", work, s) for s in ("harvest", *BUILD)}
    cpu = sum(out[s]["cpu_s"] for s in BUILD)
    out["build"] = {"cpu_s": round(cpu, 2), "wall_s": round(sum(out[s]["wall_s"] for s in BUILD), 2),
                    "records_per_cpu_s": round(n / cpu, 1) if cpu else None}
    return out


def in_parses(full: dict, n: int, reference: dict) -> float:
    """The build's CPU a member record in pymarc parses of a LoC record on the same machine (the faster of the
    readings before and after it: the machine undisturbed): a figure another machine's run can be compared
    with — coarsely, since the build's own CPU-seconds swing with the host's other tenants (±15% an hour)."""
    return round(full["build"]["cpu_s"] / n * 1e6 / min(reference["before_us"], reference["after_us"]), 2)


def show(title: str, result: dict, n: int) -> None:
    print(f"\n{title}")
    print(f"  {'stage':<10}{'wall s':>9}{'CPU s':>9}{'rec/CPU-s':>11}{'peak RSS MB':>13}{'worker MB':>11}"
          f"{'anon MB':>9}{'WAL MB':>9}{'load':>7}")
    for name, r in result.items():
        if isinstance(r, dict) and "report" in r:
            rate = n / r["cpu_s"] if r["cpu_s"] else 0
            print(f"  {name:<10}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{rate:>11.0f}{r['peak_rss_mb']:>13}"
                  f"{r['worker_peak_rss_mb']:>11}{r.get('peak_anon_mb', 0):>9}{r.get('peak_wal_mb', 0):>9.0f}"
                  f"{r['load_before']:>7.2f}")
    b = result["build"]
    print(f"  build (normalise+dedupe+index): {b['wall_s']:.1f} s wall, {b['cpu_s']:.1f} CPU-s, "
          f"{b['records_per_cpu_s']} member records per CPU-second")


def run(args: argparse.Namespace) -> dict:
    work = Path(args.work or tempfile.mkdtemp(prefix="unioncat-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    n, done = args.members_records, Done(work, args.resume)
    gen = done.run("generate", work, "generate", n, args.members, args.seed)
    g = gen["report"]
    print(f"generated {g['member_records']} member records of {g['manifestations']} manifestations "
          f"({g['chinese_manifestations']} Chinese, {g['variants']} per LoC record) for {args.members} members "
          f"in {gen['wall_s']:.0f} s ({gen['cpu_s']:.0f} CPU-s, peak RSS {gen['peak_rss_mb']} MB)", flush=True)
    startup = done.run("startup", work, "startup")
    print(f"a stage process starts in {startup['cpu_s']} CPU-s (imports, opening the stores; in every figure "
          "below)", flush=True)
    before = done.run("reference.before", work, "reference", args.reference_records)["report"]
    full = build(done, work, g["member_records"], "full")
    full["sizes"] = sizes(work)
    show(f"full build of {g['member_records']} member records", full, g["member_records"])
    after = done.run("reference.after", work, "reference", args.reference_records)["report"]
    reference = {"before_us": before["us_per_record"], "after_us": after["us_per_record"],
                 "passes_us": before["passes_us"] + after["passes_us"], "pymarc": before["pymarc"]}
    reference["build_in_parses"] = in_parses(full, g["member_records"], reference)
    print(f"  pymarc parses a LoC record in {reference['before_us']} CPU-µs before the build, "
          f"{reference['after_us']} after (fastest passes; all {min(reference['passes_us'])}–"
          f"{max(reference['passes_us'])}): the build cost {reference['build_in_parses']} such parses a member "
          "record (scale_stage.reference)")
    print(f"  sizes: {full['sizes']}")
    largest = max(g["per_member"], key=g["per_member"].get)
    changed = done.run("revise", work, "revise", largest)["report"]["changed"]
    inc = build(done, work, changed, "incremental")
    inc["changed"], inc["member"] = changed, largest
    inc["share_of_full_cpu"] = round(inc["build"]["cpu_s"] / full["build"]["cpu_s"], 4)
    show(f"incremental build: {changed} records of {largest} changed (of {g['per_member'][largest]})", inc, changed)
    print(f"  incremental CPU = {inc['share_of_full_cpu']:.1%} of the full build's; harvest skipped "
          f"{inc['harvest']['report']['unchanged']} unchanged records of unchanged dumps")
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
              "cores": os.cpu_count(), "python": platform.python_version(), "commit": _commit(),
              "members_records": n, "dedupe_workers": args.dedupe_workers or cores(), "generated": g, "startup_cpu_s": startup["cpu_s"], "generate": {k: v for k, v in gen.items() if k != "report"},
              "reference": reference, "full": full, "incremental": inc}
    if not args.keep:
        shutil.rmtree(work)
    return result


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members-records", type=int, help="member records to generate (500000, 1000000, …)")
    ap.add_argument("--members", type=int, default=130)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--work", help="working folder (default: a new temporary one, removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the dumps and the catalogue")
    ap.add_argument("--resume", action="store_true",
                    help="with --work: skip the stages an interrupted run of the same size finished")
    ap.add_argument("--results", type=Path, default=RESULTS, help="JSON lines file the run is appended to")
    ap.add_argument("--dedupe-workers", type=int,
                    help="processes scoring the dedupe's blocks (UNIONCAT_DEDUPE_WORKERS; their CPU is counted); "
                         "default: the product's, one per core (1: in the stage's own process)")
    ap.add_argument("--reference-records", type=int, default=20_000,
                    help="LoC records pymarc parses for the machine's yardstick before and after the build")
    ap.add_argument("--plot", action="store_true", help="write the PNG of time and memory against size")
    ap.add_argument("--table", action="store_true", help="print the results as the Markdown table of BENCHMARKS.md")
    args = ap.parse_args()
    if args.resume and not args.work:
        ap.error("--resume needs the --work folder of the interrupted run")
    if args.members_records:
        if args.dedupe_workers is not None:
            os.environ["UNIONCAT_DEDUPE_WORKERS"] = str(args.dedupe_workers)    # the stage processes read it
        result = run(args)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with open(args.results, "a") as fh:
            fh.write(json.dumps(result) + "\n")
    if args.plot:
        from scale_plot import plot
        print(f"wrote {plot(args.results, REPO / 'docs' / 'scale.png')}")
    if args.table:
        from scale_plot import table
        print(table(args.results))
    if not (args.members_records or args.plot or args.table):
        ap.error("give --members-records N, --plot or --table")


if __name__ == "__main__":
    main()
