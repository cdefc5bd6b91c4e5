"""``unioncat export`` and ``unioncat publish zebra``: the catalogue handed downstream.

Registered on the main command group by :mod:`unioncat.cli`.  (``publish`` here is the
top-level package: imports are absolute, so this module's own name never shadows it.)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from publish.export import FORMATS, export_chunks, gzip_chunks
from publish.feed import Published, Window, catalogue_sets, find_set
from publish.zebra import QualityBar, publish as run_publish, serve
from publish.zebra_server import ZebraError

from .context import ConfigProblem, Context, say


@click.command("export")
@click.option("--set", "set_spec", default="merged", show_default=True, metavar="SET",
              help="merged, members, library:<id>, region:<name>, group:<id> or members:<id> (see --list-sets).")
@click.option("--member", metavar="ID", help="Shortcut for --set members:<ID>: a member's own records, each "
                                            "with its cluster id in 035 $a (UNIONCAT)….")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="iso2709", show_default=True)
@click.option("-o", "--out", metavar="FILE", default="-", show_default=True,
              help="Output file ('-' for stdout). A name ending in .gz is gzipped.")
@click.option("--gzip/--no-gzip", "gz", default=None, help="Compress (default: when FILE ends in .gz).")
@click.option("--after", type=int, default=0, metavar="SEQ",
              help="Only what changed after this change sequence (incremental export; deletions included).")
@click.option("--resume", is_flag=True, help="Continue an interrupted export into FILE from its .progress file.")
@click.option("--batch", type=click.IntRange(1), default=500, show_default=True,
              help="Records per chunk (each chunk is a resume point, and one gzip member).")
@click.option("--list-sets", is_flag=True, help="List the sets and exit.")
@click.pass_obj
def export(obj: Context, set_spec: str, member: str | None, fmt: str, out: str, gz: bool | None, after: int,
           resume: bool, batch: int, list_sets: bool) -> None:
    """Export the catalogue or a set as ISO 2709, MARCXML or JSON lines, streamed (resumable with --resume)."""
    cat = obj.catalogue()
    if list_sets:
        for s in catalogue_sets(cat.sources):
            click.echo(f"{s.spec}\t{s.name}")
        return
    if member:
        set_spec = f"members:{member}"
    chosen = find_set(cat.sources, set_spec)
    if chosen is None:
        raise ConfigProblem(f"there is no set {set_spec!r}; `unioncat export --list-sets` lists them")
    gz = out.endswith(".gz") if gz is None else gz
    published = Published(cat.engine)
    window = Window(kind=chosen.kind, sources=chosen.sources)
    total = published.count(window)
    progress_path = Path(out + ".progress") if out != "-" else None
    head, offset, deletions = True, 0, after > 0
    if resume:
        state = _resume_state(out, progress_path, (set_spec, fmt, gz))
        after, offset, head, deletions = state["seq"], state["offset"], False, state["deletions"]
        say(f"resuming {out} after change {after} at byte {offset}")
    chunks = export_chunks(published, window, fmt, after=after, deletions=deletions, head=head, batch=batch)
    if gz:
        chunks = gzip_chunks(chunks)
    if out == "-":
        stream = sys.stdout.buffer
    else:
        stream = open(out, "r+b" if resume else "wb")
        stream.seek(offset)
        stream.truncate()
    last = after
    try:
        for n, (data, seq) in enumerate(chunks, start=1):
            stream.write(data)
            last = seq
            if progress_path is not None:
                stream.flush()
                progress_path.write_text(json.dumps({"set": set_spec, "format": fmt, "gzip": gz, "seq": seq,
                                                     "offset": stream.tell(), "deletions": deletions}),
                                         encoding="utf-8")
            if n % 20 == 0:
                written = published.count_upto(window, seq)
                say(f"exported {written} of {total} items (change {seq})")
    finally:
        if stream is not sys.stdout.buffer:
            stream.close()
    if progress_path is not None and progress_path.exists():
        progress_path.unlink()
    say(f"export of {set_spec} done: up to change {last}; next incremental export: --after {last}")


def _resume_state(out: str, progress_path: Path | None, options: tuple[str, str, bool]) -> dict:
    """The ``.progress`` file of an interrupted export into ``out``, checked against (set, format, gzip)."""
    if progress_path is None or not progress_path.exists():
        raise ConfigProblem(f"--resume: no {out}.progress to resume from (give the --out of the interrupted run)")
    state = json.loads(progress_path.read_text(encoding="utf-8"))
    if (state["set"], state["format"], state["gzip"]) != options:
        raise ConfigProblem(f"--resume: {out} was started as set {state['set']}, format {state['format']}, "
                            f"gzip {state['gzip']}; give the same options")
    return state


@click.group("publish")
def publish() -> None:
    """Publish the merged records to downstream services."""


@publish.command("zebra")
@click.option("--dir", "work", metavar="DIR", help="Zebra folder (register, config, checkpoint); "
                                                   "default <data>/zebra.")
@click.option("--require", metavar="TAGS", default="245,260|264,300,1XX|7XX", show_default=True,
              help="Quality bar: comma-separated requirements, each tags one of which must be present.")
@click.option("--full", is_flag=True, help="Rebuild the Zebra database from every cluster.")
@click.option("--serve", "serve_after", is_flag=True, help="Then serve it over Z39.50 and SRU until Ctrl-C.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2100, show_default=True, type=int)
@click.pass_obj
def publish_zebra(obj: Context, work: str | None, require: str, full: bool, serve_after: bool, host: str,
                  port: int) -> None:
    """Bring a Zebra database in step with the merged records (incremental) and optionally serve it."""
    cat = obj.catalogue()
    try:
        bar = QualityBar.parse(require)
    except ValueError as exc:
        raise ConfigProblem(str(exc)) from None
    folder = Path(work) if work else cat.settings.data_dir / "zebra"
    try:
        report = run_publish(cat, folder, bar=bar, full=full, progress=say)
    except ZebraError as exc:
        raise click.ClickException(str(exc)) from None
    say(f"zebra{' (full)' if report.full else ''}: {report.updated} offered, {report.deleted} deleted, "
        f"{report.below_bar} below the quality bar ({bar.describe()}) in {report.seconds:.1f}s; "
        f"up to change {report.last_seq}")
    if not serve_after:
        return
    server = serve(folder, host, port)
    say(f"serving Z39.50 on tcp:{host}:{port}/Default and SRU on {server.sru_url} (Ctrl-C stops)")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
