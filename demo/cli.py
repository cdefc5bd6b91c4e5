"""``unioncat demo``: build the demo consortium, run the whole pipeline on it and serve the catalogue.

The command lives with the demo, not in the product: ``unioncat`` finds it
through the ``unioncat.commands`` entry point (declared in pyproject.toml), so
an installation without the demo has no demo command.  It runs under the
``unioncat`` group and gets the group's context object (``obj.settings``).
"""
from __future__ import annotations

import importlib.util
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from flask import Flask
from sqlalchemy.exc import OperationalError
from waitress.server import create_server

from consortium.config import ConfigError
from unioncat import pipeline
from unioncat.inprocess import InProcessRunner
from unioncat.present import make_app
from unioncat.schema import SchemaError, database_problem
from unioncat.settings import Settings

from .consortium import build_demo
from .members import DemoError, port_in_use, preflight, running_members, write_sources

EXIT_SOURCE_FAILED = 1


class DemoProblem(click.ClickException):
    """The demo cannot start as asked (a port in use, a leftover member): one line, exit status 2."""

    exit_code = 2


def say(message: str) -> None:
    """Progress goes to stderr, as every ``unioncat`` command's does."""
    click.echo(message, err=True)


@click.command()
@click.option("--records", default=2000, show_default=True, type=click.IntRange(10, 250_000),
              help="LoC records to share out among the demo libraries.")
@click.option("--chinese", default=300, show_default=True, type=click.IntRange(0, 8000),
              help="Chinese-language LoC records (with Han-script 880 fields) to add.")
@click.option("--serve/--no-serve", "serve_after", default=True, show_default=True,
              help="Serve the catalogue when the pipeline is done.")
@click.option("--members-only", is_flag=True,
              help="Only serve the OAI-PMH and Z39.50 members (until Ctrl-C), for `unioncat run` in another shell.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the catalogue is served on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535),
              help="Port the catalogue is served on (`make demo PORT=…`).")
@click.option("--oai-port", default=0, type=click.IntRange(0, 65535),
              help="Port of the demo OAI-PMH member  [default: a free port]")
@click.option("--zebra-port", default=0, type=click.IntRange(0, 65535),
              help="Port of the demo Z39.50 member  [default: a free port]")
@click.option("--build", "build_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="Folder for the member dumps and the demo's sources.yaml  [default: DATA/demo]")
@click.pass_obj
def demo(obj: Any, records: int, chinese: int, serve_after: bool, members_only: bool, host: str, port: int,
         oai_port: int, zebra_port: int, build_dir: str | None) -> None:
    """Build the demo consortium, run the whole pipeline and serve the catalogue.

    The demo harvests its own consortium file, written into the build folder
    with the ports its members got; two demos run side by side with two --data
    folders.  A consortium file given explicitly (``--sources`` or
    UNIONCAT_SOURCES) is harvested instead: its file members read the build
    folder's dumps and its OAI-PMH and Z39.50 members must name the ports given
    with --oai-port and --zebra-port.
    """
    if importlib.util.find_spec("oaipmh") is None:
        raise DemoProblem("the demo's OAI-PMH member needs the oaipmh package: pip install 'unioncat[demo]'")
    settings: Settings = obj.settings
    build = Path(build_dir) if build_dir else settings.data_dir / "demo"
    serve_at = (host, port) if serve_after and not members_only else None
    if serve_at and port_in_use(host, port):
        raise DemoProblem(_port_message(port))
    try:
        preflight(build, oai_port, zebra_port)
        build_demo(build, settings.cache_dir, records=records, chinese=chinese, log=say)
        with running_members(build, oai_port, zebra_port, log=say) as members:
            sources = _given_sources(settings) or write_sources(build, members)
            if members_only:
                say(f"demo members are serving; in another shell: unioncat --sources {sources} "
                    f"--data {settings.data_dir} run  (Ctrl-C to stop)")
                _wait()
                code = 0
            else:
                code = _run_pipeline(replace(settings, sources_path=sources), members.zebra is not None, serve_at)
    except DemoError as exc:
        raise DemoProblem(str(exc)) from None
    raise SystemExit(code)


def _given_sources(settings: Settings) -> Path | None:
    """The consortium file the user named (flag or environment), or None for the demo's own."""
    source = click.get_current_context().find_root().get_parameter_source("sources_path")
    given = source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return settings.sources_path if given else None


def _port_message(port: int) -> str:
    return f"port {port} is in use: choose another with --port or make demo PORT=…"


def _wait() -> None:
    """Sleep until Ctrl-C (or SIGTERM, which the members' context turns into an exit)."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _run_pipeline(settings: Settings, with_zebra: bool, serve_at: tuple[str, int] | None) -> int:
    """Harvest and build the demo catalogue, then serve it; the exit status (1 when a member failed)."""
    try:
        cat = pipeline.Catalogue(settings)
    except ConfigError as exc:
        raise DemoProblem(str(exc)) from None
    except (SchemaError, OperationalError) as exc:
        raise DemoProblem(database_problem(settings, exc)) from None
    try:
        members = [s for s in pipeline.select_sources(cat) if with_zebra or s.protocol != "z3950"]
        reports = pipeline.harvest(cat, members, progress=say)
        pipeline.build(cat, progress=say)
        failed = [r for r in reports if r.status != "ok"]
        for r in failed:
            say(f"{'HELD' if r.status == 'held' else 'FAILED'} {r.source}: {r.error}")
        say(f"{cat.clusters.count()} catalogue entries, {cat.clusters.count_shared()} held by several libraries")
        if serve_at:
            _serve(cat, *serve_at)
    finally:
        cat.close()
    return EXIT_SOURCE_FAILED if failed else 0


def demo_app(cat: pipeline.Catalogue) -> tuple[Flask, InProcessRunner]:
    """The demo's web app with an in-process job runner, as ``unioncat serve`` wires it: the staff
    console's "Harvest now", "Full re-harvest" and "Build" buttons run in this process."""
    runner = InProcessRunner(cat)
    return make_app(cat, use_open_index=True, jobs=runner), runner


def _serve(cat: pipeline.Catalogue, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM (waitress returns from ``run`` on either)."""
    app, runner = demo_app(cat)
    try:
        try:
            server = create_server(app, host=host, port=port, threads=8)
        except OSError as exc:
            raise DemoProblem(_port_message(port) if port_in_use(host, port) else f"cannot serve on {host}:{port}: "
                              f"{exc.strerror or exc}") from None
        say(f"serving {cat.sources.consortium.name} on http://{host}:{port}/  (Ctrl-C to stop)")
        server.run()
    finally:
        runner.close()
