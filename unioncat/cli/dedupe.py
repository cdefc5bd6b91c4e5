"""``unioncat dedupe …``: measure, explain and correct how records are deduplicated."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from consortium.config import ConfigError
from consortium.load import load_sources
from dedupe.evaluate import evaluate, parse_gold
from dedupe.evidence import EvidenceStore
from dedupe.explain import explain, explain_text, internal_duplicates
from dedupe.overrides import OverrideError, join, parse_ref, split_out, undo

from .. import pipeline
from ..evaluation import cluster_files, split_format
from .context import Context, say


@click.group()
def dedupe() -> None:
    """Measure, explain and correct how records are deduplicated."""


def _read_gold(gold_path: str, stems: set[str]) -> dict:
    """The gold file, checked against the members: every source it names must be one of them."""
    if not Path(gold_path).is_file():
        raise click.UsageError(f"no such file: {gold_path}")
    try:
        with open(gold_path, encoding="utf-8-sig", newline="") as fh:
            gold = parse_gold(fh, gold_path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.UsageError(str(exc)) from None
    unknown = sorted({s for s, _ in gold if s not in stems})
    if unknown:
        raise click.UsageError(f"{gold_path}: source(s) {', '.join(unknown)} name no FILE "
                               f"(sources are file names without extension: {', '.join(sorted(stems))})")
    return gold


def _members(files: tuple[str, ...], sources_path: str | None):
    """The FILE[:FORMAT] arguments, or the members of a sources file, checked before any work."""
    if sources_path:
        if files:
            raise click.UsageError("give FILEs or --sources, not both")
        try:
            sources = load_sources(sources_path)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        return sources, {s.id for s in sources.sources}
    if not files:
        raise click.UsageError("give at least one FILE[:FORMAT], or --sources FILE")
    missing = [f for f in files if not split_format(f)[0].is_file()]
    if missing:
        raise click.UsageError(f"no such file: {', '.join(missing)}")
    return files, {split_format(f)[0].stem for f in files}


@dedupe.command("evaluate")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False), metavar="[FILE[:FORMAT]]...")
@click.option("--gold", "gold_path", required=True, type=click.Path(dir_okay=False), metavar="GOLD.csv",
              help="CSV with the header source,local_id,entity (local_id is the record's 001).")
@click.option("--sources", "sources_path", type=click.Path(dir_okay=False), metavar="SOURCES.yaml",
              help="Members from a sources file (file members: path and format as declared there).")
@click.option("--by-rule", is_flag=True, help="Break the scores down by the rule that joined each pair.")
def dedupe_evaluate(files: tuple[str, ...], gold_path: str, sources_path: str | None, by_rule: bool) -> None:
    """Cluster MARC files (one member each, named by the file) and score the clusters against a gold file.

    A FILE may end in :FORMAT (marc21, unimarc, cnmarc, auto) to declare its records' format, e.g.
    lib-c.mrc:cnmarc.  Prints one JSON line: pairwise precision, recall and F1 over the records the gold
    file lists.
    """
    members, stems = _members(files, sources_path)
    gold = _read_gold(gold_path, stems)
    with tempfile.TemporaryDirectory(prefix="unioncat-evaluate-") as tmp:
        try:
            clustered = cluster_files(members, tmp, progress=say)
        except ConfigError as exc:
            raise click.UsageError(f"FILE names become source ids: {exc}") from None
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
    predicted = {k: cid for k, (_, cid) in clustered.members.items()}
    lost = [k for k in gold if k not in predicted]
    if lost:
        examples = ", ".join(f"{s}/{l}" for s, l in lost[:5])
        raise click.UsageError(f"{gold_path}: {len(lost)} of {len(gold)} gold rows matched no record "
                               f"(unknown 001, or the record was quarantined), e.g. {examples}")
    if clustered.quarantined:
        say(f"note: {clustered.quarantined} record(s) quarantined (not listed in the gold file)")
    result = evaluate(gold, predicted, pair_rules=clustered.pair_rules if by_rule else None)
    click.echo(json.dumps(result.as_dict()))


def _record_ref(value: str) -> tuple[str, str]:
    try:
        return parse_ref(value)
    except OverrideError as exc:
        raise click.BadParameter(str(exc), param_hint="RECORD") from None


def _override(obj: Context, kind: str, first: str, second: str, note: str, apply: bool) -> None:
    """Store a never/always-merge override between two harvested records, and build unless told not to."""
    a, b = _record_ref(first), _record_ref(second)
    if a == b:
        raise click.UsageError("an override needs two different records")
    cat = obj.catalogue()
    unknown = [f"{s}:{l}" for s, l in (a, b) if cat.records.get(s, l) is None]
    if unknown:
        raise click.UsageError(f"no such record: {', '.join(unknown)} (give SOURCE:LOCAL_ID of a harvested record)")
    o = EvidenceStore(cat.engine).add_override(kind, a, b, note)
    say(f"override #{o.id}: {kind} merge {first} and {second}")
    if apply:
        pipeline.build(cat, progress=say)
    else:
        say("applied at the next build")


def _override_command(kind: str, doc: str) -> None:
    """Register ``dedupe never-merge`` / ``always-merge``: one body, two kinds."""
    @dedupe.command(f"{kind}-merge", help=doc)
    @click.argument("first", metavar="SRC:ID")
    @click.argument("second", metavar="SRC:ID")
    @click.option("--note", default="", help="Why (shown by explain and the override list).")
    @click.option("--no-build", is_flag=True, help="Store the override only; the next build applies it.")
    @click.pass_obj
    def command(obj: Context, first: str, second: str, note: str, no_build: bool) -> None:
        _override(obj, kind, first, second, note, not no_build)


_override_command("never", "Keep two member records in different clusters, on this and every later build.")
_override_command("always", "Put two member records in one cluster, on this and every later build "
                            "(a never-merge wins).")


@dedupe.command("overrides")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_obj
def dedupe_overrides(obj: Context, as_json: bool) -> None:
    """List the never-merge and always-merge overrides."""
    found = [o.as_dict() for o in EvidenceStore(obj.catalogue().engine).overrides()]
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False))
        return
    if not found:
        say("no overrides")
    for o in found:
        click.echo(f"#{o['id']}\t{o['kind']}-merge\t{o['a']}\t{o['b']}\t{o['note']}")


@dedupe.command("remove-override")
@click.argument("first", metavar="SRC:ID")
@click.argument("second", metavar="SRC:ID")
@click.option("--no-build", is_flag=True, help="Remove only; the next build re-clusters.")
@click.pass_obj
def dedupe_remove_override(obj: Context, first: str, second: str, no_build: bool) -> None:
    """Remove the override between two member records."""
    cat = obj.catalogue()
    if not EvidenceStore(cat.engine).remove_override(_record_ref(first), _record_ref(second)):
        raise click.ClickException(f"no override between {first} and {second}")
    say(f"override between {first} and {second} removed")
    if not no_build:
        pipeline.build(cat, progress=say)


def _correct(obj: Context, do, apply: bool) -> None:
    """Make one correction through :mod:`dedupe.overrides` (what the staff record page calls) and build."""
    cat = obj.catalogue()
    try:
        say(do(cat.engine))
    except OverrideError as exc:
        raise click.ClickException(str(exc)) from None
    if apply:
        pipeline.build(cat, progress=say)
    else:
        say("applied at the next build")


def _correction(name: str, second: str, metavar: str):
    """The shape every entry correction shares: ENTRY, one more argument, ``--note`` and ``--no-build``."""
    def decorate(fn):
        for option in reversed((
                click.argument("entry", metavar="ENTRY"), click.argument(second, metavar=metavar),
                click.option("--note", default="", help="Why (shown by explain and the override list)."),
                click.option("--no-build", is_flag=True, help="Store the override only; the next build applies it."),
                click.pass_obj)):
            fn = option(fn)
        return dedupe.command(name)(fn)
    return decorate


@_correction("split", "record", "SRC:ID")
def dedupe_split(obj: Context, entry: str, record: str, note: str, no_build: bool) -> None:
    """Split one member record out of a catalogue entry: never merge it with the entry's other records."""
    key = _record_ref(record)
    _correct(obj, lambda engine: f"{len(split_out(engine, entry, key, note))} never-merge override(s): "
                                 f"{record} split out of {entry}", not no_build)


@_correction("join", "other", "ENTRY|SRC:ID")
def dedupe_join(obj: Context, entry: str, other: str, note: str, no_build: bool) -> None:
    """Join a catalogue entry with another entry (or the entry of a member record): always merge them."""
    _correct(obj, lambda engine: f"override #{join(engine, entry, other, note).id}: {entry} joined with {other}",
             not no_build)


@dedupe.command("undo")
@click.argument("override_id", type=int, metavar="N")
@click.option("--no-build", is_flag=True, help="Remove only; the next build re-clusters.")
@click.pass_obj
def dedupe_undo(obj: Context, override_id: int, no_build: bool) -> None:
    """Remove override #N (numbers as `dedupe overrides` lists them)."""
    _correct(obj, lambda engine: f"override #{undo(engine, override_id).id} removed", not no_build)


@dedupe.command("explain")
@click.argument("cluster_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.pass_obj
def dedupe_explain(obj: Context, cluster_id: str, as_json: bool) -> None:
    """Which rule joined which pair of member records, with which scores; what was kept apart and why."""
    data = explain(obj.catalogue().engine, cluster_id)
    if data is None:
        raise click.ClickException(f"no cluster {cluster_id}")
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else explain_text(data))


@dedupe.command("internal-duplicates")
@click.option("--source", help="Only this member library.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: member → pairs.")
@click.pass_obj
def dedupe_internal_duplicates(obj: Context, source: str | None, as_json: bool) -> None:
    """Records a member library holds twice (found by dedupe, never merged): send each library its list."""
    cat = obj.catalogue()
    if source is not None and source not in {s.id for s in cat.sources.sources}:
        raise click.UsageError(f"unknown source {source!r}")
    found = internal_duplicates(cat.engine, source)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False))
        return
    if not found:
        say("no internal duplicates")
    for src, pairs in sorted(found.items()):
        click.echo(f"{src}: {len(pairs)} pair(s)")
        for p in pairs:
            click.echo(f"  {p['a']}\t{p['b']}\t{p['rule']}\t{p['score']:.3f}\t{p['title']} ({p['year'] or '?'})")
