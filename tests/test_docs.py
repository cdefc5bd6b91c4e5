"""The docs are tested: every setting and every command is documented (a datasette habit)."""
from __future__ import annotations

from pathlib import Path

from unioncat.cli import main
from unioncat.settings import SETTINGS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme():
    for setting in SETTINGS:
        assert f"`{setting.env}`" in README, f"{setting.env} ({setting.name}) is not documented in README.md"


def test_every_command_is_in_the_readme():
    commands = []
    for name, command in main.commands.items():
        sub = getattr(command, "commands", None)
        commands += [f"unioncat {name} {s}" for s in sub] if sub else [f"unioncat {name}"]
    for command in commands:
        assert command in README, f"`{command}` is not documented in README.md"


def test_the_readme_gives_exactly_two_setup_commands_and_ci_runs_the_second():
    block = README.split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert lines == ["make demo", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()
