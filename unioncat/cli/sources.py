"""``unioncat sources …``: list, check, pause and resume the member libraries of sources.yaml."""
from __future__ import annotations

import json
import os

import click

from harvester.ops import OpsStore
from web.accounts import Accounts

from ..availability import check
from .context import EXIT_SOURCE_FAILED, Context, chosen_sources, say


@click.group()
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
    cat = obj.catalogue()
    click.echo(f"{cat.sources.path}: valid, {len(cat.sources.sources)} sources")
    chosen = chosen_sources(cat, ids, include_disabled=True)
    check_id, results = check(cat, chosen, timeout=timeout, env=os.environ)
    down = sum(not result.ok for result, _ in results)
    opacs = [opac for _, opac in results if opac is not None]
    opac_down = sum(not opac.ok for opac in opacs)
    for source, (result, opac) in zip(chosen, results):
        up = result.ok and (opac is None or opac.ok)
        click.echo(f"  {'ok  ' if up else 'FAIL'} {source.id:<16} {result.message} ({result.latency_ms:.0f} ms)"
                   + (f"; OPAC {opac.message}" if opac is not None else ""))
    click.echo(f"{len(chosen) - down} of {len(chosen)} endpoints available; OPAC links: {len(opacs) - opac_down} "
               f"of {len(opacs)} answer; stored as check {check_id} (staff page /staff/availability)")
    if down or opac_down:
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
    """Pause or resume, written to the staff audit log as done from the command line."""
    cat = obj.catalogue()
    ops, accounts = OpsStore(cat.engine), Accounts(cat.engine)
    who = f"cli:{os.environ.get('USER', '?')}"
    for source in chosen_sources(cat, ids, include_disabled=True):
        ops.set_paused(source.id, paused, by=who, reason=reason)
        accounts.audit(who, "pause" if paused else "resume", source.id, reason or None, "command line")
        say(f"{source.id}: {'paused' if paused else 'resumed'}")
