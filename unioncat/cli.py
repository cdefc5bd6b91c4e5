"""The ``unioncat`` command line.

Domain errors become CLI errors here and only here (as in datasette): a bad
``sources.yaml`` prints the file, source and key and exits 2; a failed source
makes the exit status 1 after every other source was still harvested.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time

import click

from consortium.config import ConfigError

from sqlalchemy.exc import OperationalError

from . import pipeline
from .schema import SchemaError, database_problem
from .settings import load_settings

EXIT_SOURCE_FAILED = 1
EXIT_USAGE = 2


class ConfigProblem(click.ClickException):
    """A bad sources.yaml or setting: exit status 2, like a usage error."""

    exit_code = EXIT_USAGE


class Context:
    def __init__(self, sources: str | None, data: str | None, verbose: int):
        self.flags = {"sources_path": sources, "data_dir": data}
        self.verbose = verbose
        self._cat: pipeline.Catalogue | None = None

    @property
    def settings(self):
        try:
            return load_settings(**self.flags)
        except ValueError as exc:
            raise ConfigProblem(str(exc)) from None

    def catalogue(self) -> pipeline.Catalogue:
        if self._cat is None:
            settings = self.settings
            try:
                self._cat = pipeline.Catalogue(settings)
            except ConfigError as exc:
                raise ConfigProblem(str(exc)) from None
            except (SchemaError, OperationalError) as exc:
                raise ConfigProblem(database_problem(settings, exc)) from None
        return self._cat


def say(message: str) -> None:
    """Progress goes to stderr so stdout stays clean for --json output."""
    click.echo(message, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sources", "sources", metavar="FILE", envvar="UNIONCAT_SOURCES",
              help="Consortium file (env UNIONCAT_SOURCES; default ./sources.yaml).")
@click.option("--data", "data", metavar="DIR", envvar="UNIONCAT_DATA",
              help="Data folder for the database and index (env UNIONCAT_DATA; default ./var).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="unioncat")
@click.pass_context
def main(ctx: click.Context, sources: str | None, data: str | None, verbose: int) -> None:
    """Harvest member library catalogues into one union catalogue."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = Context(sources, data, verbose)
    ctx.call_on_close(lambda: ctx.obj._cat.close() if ctx.obj._cat else None)


# -- sources -------------------------------------------------------------------------

@main.group()
def sources() -> None:
    """List and check the member libraries in sources.yaml."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def sources_list(obj: Context, as_json: bool) -> None:
    """Every member library with its protocol, region and schedule."""
    cat = obj.catalogue()
    rows = [{"id": s.id, "name": s.name, "region": s.region, "protocol": s.protocol, "format": s.format,
             "endpoint": s.url or (str(s.path) if s.path else None), "schedule": s.schedule_text,
             "enabled": s.enabled, "ils": s.ils} for s in cat.sources.sources]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"{cat.sources.consortium.name}: {len(rows)} member libraries in "
               f"{len(cat.sources.regions)} regions")
    for r in rows:
        flag = "" if r["enabled"] else "  (disabled)"
        click.echo(f"  {r['id']:<16} {r['protocol']:<6} {r['region']:<12} {r['name']}  "
                   f"[{r['schedule'] or 'every run'}]{flag}")


@sources.command("check")
@click.argument("ids", nargs=-1)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for each endpoint.")
@click.pass_obj
def sources_check(obj: Context, ids: tuple[str, ...], timeout: float) -> None:
    """Validate sources.yaml, probe each endpoint and OPAC link, and store the results (availability page)."""
    from .availability import check

    cat = obj.catalogue()
    click.echo(f"{cat.sources.path}: valid, {len(cat.sources.sources)} sources")
    chosen = _select(cat, ids, include_disabled=True)
    check_id, results = check(cat, chosen, timeout=timeout, env=os.environ)
    failed = 0
    for source, (result, opac) in zip(chosen, results):
        up = result.ok and (opac is None or opac.ok)
        failed += not up
        click.echo(f"  {'ok  ' if up else 'FAIL'} {source.id:<16} {result.message} ({result.latency_ms:.0f} ms)"
                   + (f"; OPAC {opac.message}" if opac is not None else ""))
    click.echo(f"{len(chosen) - failed} of {len(chosen)} available; stored as check {check_id} "
               "(staff page /staff/availability)")
    if failed:
        raise SystemExit(EXIT_SOURCE_FAILED)


@sources.command("pause")
@click.argument("ids", nargs=-1, required=True)
@click.option("--reason", default="", help="Why (shown on the staff page).")
@click.pass_obj
def sources_pause(obj: Context, ids: tuple[str, ...], reason: str) -> None:
    """Pause members: scheduled runs and `harvest` skip them until resumed."""
    _set_paused(obj, ids, True, reason)


@sources.command("resume")
@click.argument("ids", nargs=-1, required=True)
@click.pass_obj
def sources_resume(obj: Context, ids: tuple[str, ...]) -> None:
    """Resume paused members."""
    _set_paused(obj, ids, False, "")


def _set_paused(obj: Context, ids: tuple[str, ...], paused: bool, reason: str) -> None:
    from harvester.ops import OpsStore
    from web.accounts import Accounts

    cat = obj.catalogue()
    ops, accounts = OpsStore(cat.engine), Accounts(cat.engine)
    who = f"cli:{os.environ.get('USER', '?')}"
    for source in _select(cat, ids, include_disabled=True):
        ops.set_paused(source.id, paused, by=who, reason=reason)
        accounts.audit(who, "pause" if paused else "resume", source.id, reason or None, "command line")
        say(f"{source.id}: {'paused' if paused else 'resumed'}")


def _select(cat: pipeline.Catalogue, ids, include_disabled: bool = False):
    try:
        if ids:
            return pipeline.select_sources(cat, ids)
        return list(cat.sources.sources) if include_disabled else pipeline.select_sources(cat)
    except KeyError as exc:
        raise click.UsageError(exc.args[0]) from None


# -- harvest, build, run -------------------------------------------------------------

def _report_harvest(reports, cat: pipeline.Catalogue | None = None) -> int:
    failed = [r for r in reports if r.status != "ok"]
    for r in failed:
        say(f"{'HELD' if r.status == 'held' else 'FAILED'} {r.source}: {r.error}")
    if cat is not None:
        from .alerts import check_alerts
        try:
            for alert in check_alerts(cat):
                say(f"ALERT {alert['message']}")
        except OSError as exc:
            say(f"could not mail the harvest alerts: {exc}")
    return EXIT_SOURCE_FAILED if failed else 0


@main.command()
@click.argument("ids", nargs=-1)
@click.option("--full", is_flag=True, help="Re-harvest everything; records the member no longer has are deleted.")
@click.option("--in-process", is_flag=True, help="Work here even when UNIONCAT_REDIS is set (default: queue jobs).")
@click.pass_obj
def harvest(obj: Context, ids: tuple[str, ...], full: bool, in_process: bool) -> None:
    """Harvest the given sources (default: every enabled source)."""
    if queue_instead(obj, "harvest", ids, full=full, in_process=in_process):
        return
    cat = obj.catalogue()
    reports = pipeline.harvest(cat, _select(cat, ids), full=full, progress=say)
    raise SystemExit(_report_harvest(reports, cat))


@main.command()
@click.option("--reindex", is_flag=True, help="Rebuild the search index from every cluster.")
@click.option("--full", is_flag=True,
              help="Deduplicate every record again (cluster ids and dedupe overrides are kept) and reindex; "
                   "runs here, not on the queue.")
@click.option("--in-process", is_flag=True, help="Work here even when UNIONCAT_REDIS is set (default: queue jobs).")
@click.pass_obj
def build(obj: Context, reindex: bool, full: bool, in_process: bool) -> None:
    """Normalise, deduplicate and index whatever changed."""
    # A full re-dedupe is a rare, deliberate operation: it runs in this process even with Redis configured.
    if not full and queue_instead(obj, "build", reindex=reindex, in_process=in_process):
        return
    from index.backend import SearchError
    try:
        pipeline.build(obj.catalogue(), progress=say, reindex=reindex, full=full)
    except SearchError as exc:
        raise click.ClickException(f"indexing failed: {exc} — everything before the index is saved; "
                                   "run `unioncat build` again once the search backend is back") from None


@main.command()
@click.option("--full", is_flag=True, help="Full re-harvest of the due sources.")
@click.option("--in-process", is_flag=True, help="Work here even when UNIONCAT_REDIS is set (default: queue jobs).")
@click.pass_obj
def run(obj: Context, full: bool, in_process: bool) -> None:
    """Harvest every enabled source that is due, then build."""
    if queue_instead(obj, "run", full=full, in_process=in_process):
        return
    cat = obj.catalogue()
    due = pipeline.due_sources(cat)
    say(f"{len(due)} of {len(cat.sources.sources)} sources due: {', '.join(s.id for s in due) or 'none'}")
    reports = pipeline.harvest(cat, due, full=full, progress=say)
    pipeline.build(cat, progress=say)
    raise SystemExit(_report_harvest(reports, cat))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the active alerts as JSON.")
@click.pass_obj
def alerts(obj: Context, as_json: bool) -> None:
    """Check for failing and stale members and mail new alerts (run it from cron, apart from harvests)."""
    from harvester.ops import OpsStore

    from .alerts import check_alerts

    cat = obj.catalogue()
    try:
        mailed = check_alerts(cat)
    except OSError as exc:
        raise click.ClickException(f"could not mail the alerts: {exc}") from None
    active = OpsStore(cat.engine).alerts()
    if as_json:
        click.echo(json.dumps([{k: v for k, v in a.items()} for a in active], ensure_ascii=False, indent=2,
                              default=str))
    else:
        for alert in active:
            new = " (new)" if any(m["key"] == alert["key"] for m in mailed) else ""
            sent = f"mailed {alert['sent_at']:%Y-%m-%d %H:%M}" if alert["sent_at"] else "not mailed"
            click.echo(f"  {alert['kind']:<8} {alert['message']}  [{sent}]{new}")
        say(f"{len(active)} active alert(s)")
    if active:
        raise SystemExit(EXIT_SOURCE_FAILED)


# -- staff accounts ---------------------------------------------------------------------

@main.group()
def staff() -> None:
    """Staff accounts of the web app's staff pages (roles viewer, operator, admin)."""


@staff.command("add-user")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), default="viewer", show_default=True)
@click.option("--replace", is_flag=True, help="Set a new password and role for an existing account.")
@click.pass_obj
def staff_add_user(obj: Context, name: str, role: str, replace: bool) -> None:
    """Create a staff account; the password comes from UNIONCAT_NEW_PASSWORD or a prompt."""
    from web.accounts import AccountError, Accounts

    password = os.environ.get("UNIONCAT_NEW_PASSWORD") or click.prompt(
        f"Password for {name}", hide_input=True, confirmation_prompt=True)
    try:
        user = Accounts(obj.catalogue().engine).add(name, password, role, replace=replace)
    except AccountError as exc:
        raise click.UsageError(str(exc)) from None
    say(f"staff account {user.name} ({user.role}) saved")


@staff.command("list")
@click.pass_obj
def staff_list(obj: Context) -> None:
    """Every staff account with its role."""
    from web.accounts import Accounts

    for user in Accounts(obj.catalogue().engine).users():
        click.echo(f"{user['name']:<20} {user['role']:<9} created {user['created_at']:%Y-%m-%d}"
                   + ("  (disabled)" if user["disabled"] else ""))


# -- search and records ---------------------------------------------------------------

@main.command()
@click.argument("query", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
@click.option("--filter", "filters", multiple=True, metavar="FACET=VALUE",
              help="Facet filter, e.g. --filter region=Nanjing (repeatable).")
@click.pass_obj
def search(obj: Context, query: tuple[str, ...], as_json: bool, limit: int, page: int,
           filters: tuple[str, ...]) -> None:
    """Search the catalogue."""
    from .present import search_json

    cat = obj.catalogue()
    parsed: dict[str, list[str]] = {}
    for f in filters:
        if "=" not in f:
            raise click.UsageError(f"--filter {f!r}: expected FACET=VALUE")
        k, v = f.split("=", 1)
        parsed.setdefault(k, []).append(v)
    result = search_json(cat, " ".join(query), parsed, page=page, limit=limit)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    click.echo(f"{result['total']} hits")
    for hit in result["hits"]:
        libs = ", ".join(dict.fromkeys(h["library"] for h in hit["holdings"]))
        click.echo(f"  {hit['id']}  {hit['title']}  ({hit.get('year') or 'n.d.'}; {hit.get('format')})")
        click.echo(f"      held by {hit['library_count']}: {libs}")


@main.command()
@click.argument("cluster_id")
@click.option("--format", "fmt", type=click.Choice(["json", "marc", "marcxml"]), default="json", show_default=True)
@click.pass_obj
def record(obj: Context, cluster_id: str, fmt: str) -> None:
    """Print one catalogue record (json), or its member records as harvested (marc, marcxml)."""
    from .present import record_json, member_marc

    cat = obj.catalogue()
    live = cat.clusters.resolve(cluster_id)
    if live is None:
        raise click.ClickException(f"no record {cluster_id!r}")
    if fmt == "json":
        click.echo(json.dumps(record_json(cat, live), ensure_ascii=False, indent=2))
    else:
        sys.stdout.buffer.write(member_marc(cat, live, fmt))


# -- serve and status ------------------------------------------------------------------

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.pass_obj
def serve(obj: Context, host: str, port: int, threads: int) -> None:
    """Serve the web catalogue."""
    from waitress import serve as waitress_serve

    from .inprocess import InProcessRunner
    from .present import make_app

    app = make_app(obj.catalogue(), jobs=InProcessRunner(obj.catalogue()))
    say(f"serving {obj.catalogue().sources.consortium.name} on http://{host}:{port}/")
    waitress_serve(app, host=host, port=port, threads=threads)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """The last harvest of every source and the size of the catalogue."""
    from .present import status_json

    data = status_json(obj.catalogue())
    jobs = jobs_status(obj)
    if jobs is not None:
        data["jobs"] = jobs
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    t = data["totals"]
    click.echo(f"{data['consortium']}: {t['raw_records']} raw records, {t['normalised']} normalised, "
               f"{t['clusters']} catalogue entries ({t['shared_clusters']} held by several libraries), "
               f"{t['quarantined']} quarantined")
    for s in data["sources"]:
        run = s["last_run"]
        if run is None:
            line = "never harvested"
        else:
            c = run["counts"]
            line = (f"{run['status']} {run['finished_at'] or run['started_at']}: +{c['added']} ~{c['updated']} "
                    f"-{c['deleted']} !{c['quarantined']}")
            if run.get("error"):
                line += f" — {run['error']}"
        click.echo(f"  {s['id']:<16} {s['records']:>7} records  {line}")
    if jobs is not None:
        print_jobs(jobs)
    if any(s["last_run"] and s["last_run"]["status"] not in ("ok", "running") for s in data["sources"]):
        raise SystemExit(EXIT_SOURCE_FAILED)


@main.command()
@click.argument("source", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def quality(obj: Context, source: str | None, as_json: bool) -> None:
    """Data quality per source: missing titles and identifiers, invalid ISBNs, repairs, quarantine."""
    cat = obj.catalogue()
    if source is not None and source not in {s.id for s in cat.sources.sources}:
        raise click.BadParameter(f"unknown source {source!r}", param_hint="SOURCE")
    report = pipeline.quality(cat, source)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    for name, q in report.items():
        click.echo(f"{name}: {q['records']} records, {q['quarantined']} quarantined")
        click.echo(f"  without title {q['without_title']}, without any identifier {q['without_identifier']}, "
                   f"with invalid ISBNs {q['with_invalid_isbn']} ({q['invalid_isbns']} numbers), "
                   f"with repaired encodings {q['with_repairs']}")
        if q["record_formats"]:
            click.echo("  formats: " + ", ".join(f"{k} {v}" for k, v in q["record_formats"].items()))
        for category, n in q["repairs"].items():
            click.echo(f"  repaired {n:>6}  {category}")
        for category, n in q["quarantined_by_reason"].items():
            click.echo(f"  quarantined {n:>6}  {category}")
            example = q["examples"].get(category, "")
            if example and example != category:
                click.echo(f"      e.g. {example[:160]}")


@main.command()
@click.option("--records", default=2000, show_default=True, type=click.IntRange(10, 250_000),
              help="LoC records to share out among the demo libraries.")
@click.option("--chinese", default=300, show_default=True, type=click.IntRange(0, 8000),
              help="Chinese-language LoC records (with Han-script 880 fields) to add.")
@click.option("--serve/--no-serve", "serve_after", default=True, show_default=True,
              help="Serve the catalogue when the pipeline is done.")
@click.option("--members-only", is_flag=True,
              help="Only serve the OAI-PMH and Z39.50 members (until Ctrl-C), for `unioncat run` in another shell.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--oai-port", default=8081, show_default=True, type=int,
              help="Port of the demo OAI-PMH member (must match sources.yaml).")
@click.option("--zebra-port", default=8210, show_default=True, type=int,
              help="Port of the demo Z39.50 member (must match sources.yaml).")
@click.pass_obj
def demo(obj: Context, records: int, chinese: int, serve_after: bool, members_only: bool, host: str, port: int,
         oai_port: int, zebra_port: int) -> None:
    """Build the demo consortium, run the whole pipeline and serve the catalogue."""
    from demo.consortium import build_demo, serve_oai_member, serve_zebra_member
    from publish.zebra_server import ZebraError

    settings = obj.settings
    out_dir = settings.sources_path.resolve().parent / "demo" / "build"
    build_demo(out_dir, settings.cache_dir, records=records, chinese=chinese, log=say)
    url, stop = serve_oai_member(out_dir, port=oai_port)
    say(f"demo OAI-PMH member serving at {url}")
    zebra = None
    try:
        zebra = serve_zebra_member(out_dir, port=zebra_port)
        say(f"demo Z39.50 member (Zebra) serving at {zebra.url}")
    except ZebraError as exc:
        say(f"note: the Z39.50 member is left out of this demo run: {exc}")
    try:
        if members_only:
            say("demo members are serving; run `unioncat run` in another shell (Ctrl-C to stop)")
            # a plain `kill` must stop Zebra too: turn SIGTERM into an exit that runs the finally below
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                raise SystemExit(0) from None
        cat = obj.catalogue()
        members = [s for s in pipeline.select_sources(cat) if zebra is not None or s.protocol != "z3950"]
        reports = pipeline.harvest(cat, members, progress=say)
        pipeline.build(cat, progress=say)
        code = _report_harvest(reports)
        say(f"{cat.clusters.count()} catalogue entries, {cat.clusters.count_shared()} held by several libraries")
        if serve_after:
            from waitress import serve as waitress_serve

            from .present import make_app

            say(f"serving {cat.sources.consortium.name} on http://{host}:{port}/  (Ctrl-C to stop)")
            waitress_serve(make_app(cat, use_open_index=True), host=host, port=port, threads=8)
    finally:
        stop()
        if zebra is not None:
            zebra.stop()
    raise SystemExit(code)


# -- dedupe quality ---------------------------------------------------------------------

@main.group()
def dedupe() -> None:
    """Measure, explain and correct how records are deduplicated."""


@dedupe.command("evaluate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--gold", "gold_path", required=True, type=click.Path(dir_okay=False), metavar="GOLD.csv",
              help="CSV with the header source,local_id,entity (local_id is the record's 001).")
@click.option("--by-rule", is_flag=True, help="Break the scores down by the rule that joined each pair.")
def dedupe_evaluate(files: tuple[str, ...], gold_path: str, by_rule: bool) -> None:
    """Cluster MARC files (one member each, named by the file) and score the clusters against a gold file.

    Prints one JSON line: pairwise precision, recall and F1 over the records the gold file lists.
    """
    import tempfile
    from pathlib import Path

    from dedupe.evaluate import evaluate, parse_gold

    missing = [f for f in [gold_path, *files] if not Path(f).is_file()]
    if missing:
        raise click.UsageError(f"no such file: {', '.join(missing)}")
    try:
        with open(gold_path, encoding="utf-8-sig", newline="") as fh:
            gold = parse_gold(fh, gold_path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.UsageError(str(exc)) from None
    stems = {Path(f).stem for f in files}
    unknown = sorted({s for s, _ in gold if s not in stems})
    if unknown:
        raise click.UsageError(f"{gold_path}: source(s) {', '.join(unknown)} name no FILE "
                               f"(sources are file names without extension: {', '.join(sorted(stems))})")
    with tempfile.TemporaryDirectory(prefix="unioncat-evaluate-") as tmp:
        try:
            clustered = pipeline.cluster_files(files, tmp, progress=say)
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
    source, sep, local_id = value.partition(":")
    if not sep or not source or not local_id:
        raise click.BadParameter(f"{value!r}: expected SOURCE:LOCAL_ID, e.g. lib-a:000123", param_hint="RECORD")
    return source, local_id


def _override(obj: Context, kind: str, first: str, second: str, note: str, apply: bool) -> None:
    from dedupe.evidence import EvidenceStore

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
    from dedupe.evidence import EvidenceStore

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
    from dedupe.evidence import EvidenceStore

    cat = obj.catalogue()
    if not EvidenceStore(cat.engine).remove_override(_record_ref(first), _record_ref(second)):
        raise click.ClickException(f"no override between {first} and {second}")
    say(f"override between {first} and {second} removed")
    if not no_build:
        pipeline.build(cat, progress=say)


@dedupe.command("explain")
@click.argument("cluster_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.pass_obj
def dedupe_explain(obj: Context, cluster_id: str, as_json: bool) -> None:
    """Which rule joined which pair of member records, with which scores; what was kept apart and why."""
    from dedupe.explain import explain, explain_text

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
    from dedupe.explain import internal_duplicates

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


from .cli_jobs import db, jobs_status, print_jobs, queue_instead, scheduler, worker  # noqa: E402 - needs Context

main.add_command(db)
main.add_command(worker)
main.add_command(scheduler)

# -- downstream: file exports and the published Zebra (unioncat/cli_publish.py) ----------
from .cli_publish import export as _export, publish as _publish  # noqa: E402 - needs main, say, Context

main.add_command(_export)
main.add_command(_publish)


def run_main() -> None:  # pragma: no cover
    main()
