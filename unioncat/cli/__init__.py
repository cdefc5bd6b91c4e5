"""The ``unioncat`` command line: the ``main`` group, one module per command group.

=================  ==========================================================
``sources``        list, check, pause and resume members (:mod:`.sources`)
``harvest`` …      harvest, build, run, alerts, status (:mod:`.harvest`)
``staff``          staff accounts (:mod:`.staff`)
``search`` …       search, record, serve (:mod:`.search`)
``quality``        data quality per member (:mod:`.quality`)
``dedupe``         evaluate, explain and override deduplication (:mod:`.dedupe`)
``export`` …       export and publish downstream (:mod:`.publish`)
``db`` …           schema, rq workers and scheduler (:mod:`.jobs`)
=================  ==========================================================

Other packages add commands through the ``unioncat.commands`` entry-point group
(the demo consortium's ``demo`` command lives in ``demo/``, outside the product).
A plugin that cannot be loaded is logged and left out; the product's commands work.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

import click

from ..settings import BY_NAME
from . import dedupe, harvest, jobs, ledger, publish, quality, search, sources, staff
from .context import Context

log = logging.getLogger(__name__)

PLUGIN_GROUP = "unioncat.commands"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sources", "sources_path", metavar="FILE", envvar=BY_NAME["sources_path"].env,
              help=f"Consortium file (env {BY_NAME['sources_path'].env}; default ./sources.yaml).")
@click.option("--data", "data", metavar="DIR", envvar=BY_NAME["data_dir"].env,
              help=f"Data folder for the database and index (env {BY_NAME['data_dir'].env}; default ./var).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="unioncat")
@click.pass_context
def main(ctx: click.Context, sources_path: str | None, data: str | None, verbose: int) -> None:
    """Harvest member library catalogues into one union catalogue."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = Context(sources_path, data, verbose)
    ctx.call_on_close(ctx.obj.close)


# the package's attributes stay the modules (tests and plugins reach into them); the commands are added here
for _command in (sources.sources, harvest.harvest, harvest.build, harvest.run, harvest.alerts, harvest.status,
                 staff.staff, search.search, search.record, search.serve, quality.quality, dedupe.dedupe,
                 publish.export, publish.publish, jobs.db, jobs.worker, jobs.scheduler, ledger.ledger):
    main.add_command(_command)


def add_plugin_commands(group: click.Group, points: Iterable[EntryPoint] | None = None) -> list[str]:
    """Add the click commands other packages declare in the ``unioncat.commands`` entry-point group.

    A plugin that fails to import, is not a click command, or would replace a
    product command is logged and skipped: a broken extra never breaks the CLI.
    ``points`` defaults to the installed entry points; returns the names added.
    """
    points = entry_points(group=PLUGIN_GROUP) if points is None else points
    added = []
    for point in points:
        try:
            command = point.load()
        except Exception:  # noqa: BLE001 - any error in somebody else's package: log it, keep the CLI working
            log.warning("unioncat command plugin %s (%s) could not be loaded", point.name, point.value,
                        exc_info=True)
            continue
        if not isinstance(command, click.Command):
            log.warning("unioncat command plugin %s (%s) is not a click command", point.name, point.value)
            continue
        if point.name in group.commands:
            log.warning("unioncat command plugin %s (%s) left out: a command of that name exists",
                        point.name, point.value)
            continue
        group.add_command(command, point.name)
        added.append(point.name)
    return added


add_plugin_commands(main)
