"""What every command module shares: the click context object, exit codes, and ``say``.

Domain errors become CLI errors in the command modules and only there (as in datasette):
a bad ``sources.yaml`` prints the file, source and key and exits 2; a failed source makes
the exit status 1 after every other source was still harvested.
"""
from __future__ import annotations

from collections.abc import Iterable

import click
from sqlalchemy.exc import OperationalError

from consortium.config import ConfigError, Source

from .. import pipeline
from ..catalogue import Catalogue
from ..schema import SchemaError, database_problem
from ..settings import Settings, load_settings

EXIT_SOURCE_FAILED = 1
EXIT_USAGE = 2


class ConfigProblem(click.ClickException):
    """A bad sources.yaml or setting: exit status 2, like a usage error."""

    exit_code = EXIT_USAGE


class Context:
    """The ``--sources``/``--data`` flags, and the catalogue opened once, on first use, for the command."""

    def __init__(self, sources: str | None, data: str | None, verbose: int):
        self.flags = {"sources_path": sources, "data_dir": data}
        self.verbose = verbose
        self._cat: Catalogue | None = None

    @property
    def settings(self) -> Settings:
        try:
            return load_settings(**self.flags)
        except ValueError as exc:
            raise ConfigProblem(str(exc)) from None

    def catalogue(self) -> Catalogue:
        if self._cat is None:
            settings = self.settings
            try:
                self._cat = Catalogue(settings)
            except ConfigError as exc:
                raise ConfigProblem(str(exc)) from None
            except (SchemaError, OperationalError) as exc:
                raise ConfigProblem(database_problem(settings, exc)) from None
        return self._cat

    def close(self) -> None:
        if self._cat is not None:
            self._cat.close()
            self._cat = None


def say(message: str) -> None:
    """Progress goes to stderr so stdout stays clean for --json output."""
    click.echo(message, err=True)


def chosen_sources(cat: Catalogue, ids: Iterable[str], include_disabled: bool = False) -> list[Source]:
    """The members named on the command line (default: every enabled one); an unknown id is a usage error."""
    try:
        if ids:
            return pipeline.select_sources(cat, ids)
        return list(cat.sources.sources) if include_disabled else pipeline.select_sources(cat)
    except KeyError as exc:
        raise click.UsageError(exc.args[0]) from None
