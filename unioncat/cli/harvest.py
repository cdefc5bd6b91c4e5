"""``unioncat harvest``, ``build``, ``run``, ``alerts`` and ``status``: the pipeline from the command line.

With ``UNIONCAT_REDIS`` set, harvest/build/run queue jobs for the workers instead
(:func:`unioncat.cli.jobs.queue_instead`); ``--in-process`` works here all the same.
"""
from __future__ import annotations

import json

import click

from harvester.ops import OpsStore
from index.backend import SearchError
from runtime.workerpool import WorkerDied
from web.ledger_figures import refresh as refresh_ledger, stale as ledger_stale

from .. import pipeline
from ..alerts import HarvestOutcome, check_alerts, harvest_and_alert
from ..present import status_json
from .context import EXIT_SOURCE_FAILED, Context, chosen_sources, say
from .jobs import jobs_status, print_jobs, queue_instead

IN_PROCESS_HELP = "Work here even when UNIONCAT_REDIS is set (default: queue jobs)."


def report_harvest(outcome: HarvestOutcome) -> int:
    """Print failed and held sources and the alerts; the exit status (1 when a source did not harvest)."""
    for r in outcome.failed:
        say(f"{'HELD' if r.status == 'held' else 'FAILED'} {r.source}: {r.error}")
    for alert in outcome.alerts:
        say(f"ALERT {alert['message']}")
    return EXIT_SOURCE_FAILED if outcome.failed else 0


@click.command()
@click.argument("ids", nargs=-1)
@click.option("--full", is_flag=True, help="Re-harvest everything; records the member no longer has are deleted.")
@click.option("--in-process", is_flag=True, help=IN_PROCESS_HELP)
@click.pass_obj
def harvest(obj: Context, ids: tuple[str, ...], full: bool, in_process: bool) -> None:
    """Harvest the given sources (default: every enabled source)."""
    if queue_instead(obj, "harvest", ids, full=full, in_process=in_process):
        return
    cat = obj.catalogue()
    outcome = harvest_and_alert(cat, chosen_sources(cat, ids), full=full, progress=say)
    raise SystemExit(report_harvest(outcome))


@click.command()
@click.option("--reindex", is_flag=True, help="Rebuild the search index from every cluster.")
@click.option("--full", is_flag=True,
              help="Deduplicate every record again (cluster ids and dedupe overrides are kept) and reindex; "
                   "runs here, not on the queue.")
@click.option("--in-process", is_flag=True, help=IN_PROCESS_HELP)
@click.pass_obj
def build(obj: Context, reindex: bool, full: bool, in_process: bool) -> None:
    """Normalise, deduplicate and index whatever changed."""
    # A full re-dedupe is a rare, deliberate operation: it runs in this process even with Redis configured.
    if not full and queue_instead(obj, "build", reindex=reindex, in_process=in_process):
        return
    build_here(obj.catalogue(), reindex=reindex, full=full)


def build_here(cat: pipeline.Catalogue, **options: bool) -> None:
    """``pipeline.build`` in this process; what stops it midway is said in one line, not a traceback."""
    try:
        pipeline.build(cat, progress=say, **options)
    except SearchError as exc:
        raise click.ClickException(f"indexing failed: {exc} — everything before the index is saved; "
                                   "run `unioncat build` again once the search backend is back") from None
    except WorkerDied as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--full", is_flag=True, help="Full re-harvest of the due sources.")
@click.option("--in-process", is_flag=True, help=IN_PROCESS_HELP)
@click.pass_obj
def run(obj: Context, full: bool, in_process: bool) -> None:
    """Harvest every enabled source that is due, then build."""
    if queue_instead(obj, "run", full=full, in_process=in_process):
        return
    cat = obj.catalogue()
    due = pipeline.due_sources(cat)
    say(f"{len(due)} of {len(cat.sources.sources)} sources due: {', '.join(s.id for s in due) or 'none'}")
    outcome = harvest_and_alert(cat, due, full=full, progress=say)
    build_here(cat)
    if ledger_stale(cat.engine):  # cron's `unioncat run` is the scheduler when there is no Redis
        month, rows = refresh_ledger(cat)
        say(f"ledger snapshot of {month}: {len(rows)} members")
    raise SystemExit(report_harvest(outcome))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the active alerts as JSON.")
@click.pass_obj
def alerts(obj: Context, as_json: bool) -> None:
    """Check for failing and stale members and mail new alerts (run it from cron, apart from harvests)."""
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


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """The last harvest of every source and the size of the catalogue."""
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
        click.echo(f"  {s['id']:<16} {s['records']:>7} records  {_last_run_line(s['last_run'])}")
    if jobs is not None:
        print_jobs(jobs)
    if any(s["last_run"] and s["last_run"]["status"] not in ("ok", "running") for s in data["sources"]):
        raise SystemExit(EXIT_SOURCE_FAILED)


def _last_run_line(run: dict | None) -> str:
    """One source's last harvest as ``status`` prints it: status, time and counts (+added ~updated …)."""
    if run is None:
        return "never harvested"
    c = run["counts"]
    line = (f"{run['status']} {run['finished_at'] or run['started_at']}: +{c['added']} ~{c['updated']} "
            f"-{c['deleted']} !{c['quarantined']}")
    return line + (f" — {run['error']}" if run.get("error") else "")
