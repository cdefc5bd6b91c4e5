"""The CLI's wiring: commands from other packages (the ``unioncat.commands`` entry points) and the settings table."""
from __future__ import annotations

import ast
import logging
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import unioncat.cli
from unioncat.cli import PLUGIN_GROUP, add_plugin_commands, main
from unioncat.settings import BY_NAME, SETTINGS, Settings, load_settings


@click.command()
@click.argument("name")
def hello_command(name: str) -> None:
    """A plugin command, as demo/cli.py declares one."""
    click.echo(f"hello {name}")


NOT_A_COMMAND = "just a string"


def point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=PLUGIN_GROUP)


def test_plugin_commands_are_added_and_broken_ones_are_logged_not_fatal(caplog):
    group = click.Group("unioncat", commands={"search": click.Command("search")})
    found = [point("hello", f"{__name__}:hello_command"), point("broken", "no_such_unioncat_plugin:demo"),
             point("odd", f"{__name__}:NOT_A_COMMAND"), point("search", f"{__name__}:hello_command")]
    with caplog.at_level(logging.WARNING, logger="unioncat.cli"):
        assert add_plugin_commands(group, found) == ["hello"]
    assert sorted(group.commands) == ["hello", "search"]
    assert group.commands["search"] is not hello_command  # a plugin never replaces a product command
    messages = [r.getMessage() for r in caplog.records]
    assert any("broken (no_such_unioncat_plugin:demo) could not be loaded" in m for m in messages)
    assert any("odd" in m and "is not a click command" in m for m in messages)
    assert any("search" in m and "a command of that name exists" in m for m in messages)
    result = CliRunner().invoke(group, ["hello", "reader"])
    assert result.exit_code == 0 and result.output == "hello reader\n"


def test_main_reads_the_entry_point_group(monkeypatch):
    asked = []

    def fake_entry_points(group: str) -> list[EntryPoint]:
        asked.append(group)
        return [point("hello", f"{__name__}:hello_command")]

    monkeypatch.setattr(unioncat.cli, "entry_points", fake_entry_points)
    group = click.Group("unioncat")
    assert add_plugin_commands(group) == ["hello"] and asked == [PLUGIN_GROUP]


def test_the_product_does_not_ship_the_demo():
    """``demo`` comes in as a plugin if at all; nothing in unioncat/ imports it."""
    for path in sorted(Path(unioncat.cli.__file__).parents[1].rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            assert not any(n.split(".")[0] == "demo" for n in names), f"{path} imports demo"
    demo = main.commands.get("demo")
    assert demo is None or not demo.callback.__module__.startswith("unioncat")


def test_settings_defaults_come_from_the_table():
    defaults = Settings()
    for setting in SETTINGS:
        assert getattr(defaults, setting.name) == setting.default_value(), setting.name
    assert defaults.cache_dir == Path.home() / ".cache" / "unioncat"


def test_the_environment_is_parsed_by_the_type_of_each_default(caplog):
    env = {"UNIONCAT_HARVEST_WORKERS": "7", "UNIONCAT_SMTP_STARTTLS": "yes", "UNIONCAT_DATA": "~/catalogue",
           "UNIONCAT_STAFF_PASSWORD": "s3cret", "UNIONCAT_SEARCH": "http://127.0.0.1:9200"}
    with caplog.at_level(logging.DEBUG, logger="unioncat.settings"):
        settings = load_settings(env=env, sources_path="members.yaml", max_block=None)
    assert settings.harvest_workers == 7 and settings.smtp_starttls is True
    assert settings.data_dir == Path.home() / "catalogue" and settings.sources_path == Path("members.yaml")
    assert settings.max_block == BY_NAME["max_block"].default and settings.uses_elasticsearch
    logged = caplog.text
    assert "setting harvest_workers = 7" in logged and "s3cret" not in logged  # overrides logged, secrets not
    with pytest.raises(ValueError, match="UNIONCAT_SMTP_PORT: expected a whole number, got 'twenty-five'"):
        load_settings(env={"UNIONCAT_SMTP_PORT": "twenty-five"})
    with pytest.raises(ValueError, match="expected 'embedded' or an Elasticsearch URL"):
        load_settings(env={"UNIONCAT_SEARCH": "solr"})
    with pytest.raises(TypeError, match="unknown setting 'colour'"):
        load_settings(env={}, colour="red")


def test_an_installed_plugin_is_found_by_the_real_command(tmp_path):
    """A package declaring ``[project.entry-points."unioncat.commands"]`` adds its command; a broken one is logged."""
    (tmp_path / "unioncat_hello.py").write_text(
        "import click\n\n@click.command()\ndef hello():\n    '''Say hello.'''\n    click.echo('hello from a plugin')\n",
        encoding="utf-8")
    info = tmp_path / "unioncat_hello-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unioncat-hello\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        f"[{PLUGIN_GROUP}]\nhello = unioncat_hello:hello\nbroken = unioncat_no_such_module:command\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(unioncat.cli.__file__).parents[2]),
                                                        os.environ.get("PYTHONPATH", "")])}
    listing = subprocess.run([sys.executable, "-m", "unioncat", "--help"], env=env, capture_output=True, text=True,
                             timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "hello" in listing.stdout and "Say hello." in listing.stdout
    assert "broken (unioncat_no_such_module:command) could not be loaded" in listing.stderr
    said = subprocess.run([sys.executable, "-m", "unioncat", "hello"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert said.returncode == 0 and said.stdout == "hello from a plugin\n"
