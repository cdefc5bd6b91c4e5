"""The docs are tested: every setting, command and source key is documented, every sources example loads (datasette)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from consortium.load import SOURCE_KEYS, KeysOnce, parse_sources
from consortium.presets import HOLDINGS_PRESETS, ILS_PRESETS
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


def yaml_examples() -> list[tuple[str, str]]:
    """The ```yaml blocks of the docs that are (part of) a sources file: they have a ``sources`` list."""
    found = []
    for doc in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))):
        text = doc.read_text(encoding="utf-8")
        for block in re.finditer(r"^```ya?ml\n(.*?)^```", text, flags=re.M | re.S):
            line = text.count("\n", 0, block.start()) + 1
            found.append((f"{doc.relative_to(REPO)}:{line}", block.group(1)))
    return found


def test_every_sources_example_in_the_docs_loads():
    """A reader copies these into their sources.yaml: a key the loader refuses is a doc gone stale.

    Examples of member entries leave the consortium out; it is added here, as the reader's file has one."""
    examples = [(where, yaml.load(text, Loader=KeysOnce)) for where, text in yaml_examples()]
    examples = [(where, data) for where, data in examples if isinstance(data, dict) and "sources" in data]
    assert len(examples) >= 10, "the docs' sources.yaml examples were not found"
    for where, data in examples:
        parsed = parse_sources({"consortium": {"name": "Docs example"}, **data}, where)
        assert parsed.sources, where


def test_every_source_key_is_in_the_sources_table():
    section = (REPO / "docs" / "sources.md").read_text(encoding="utf-8").split("## Source keys", 1)[1]
    rows = [line.split("|")[1] for line in section.split("\n##", 1)[0].splitlines() if line.startswith("| `")]
    documented = {key for cell in rows for key in re.findall(r"`(\w+)`", cell)}
    assert SOURCE_KEYS <= documented, f"undocumented source keys in docs/sources.md: {sorted(SOURCE_KEYS - documented)}"


def test_every_preset_is_in_the_sources_doc():
    text = (REPO / "docs" / "sources.md").read_text(encoding="utf-8")
    missing = [name for name in (*ILS_PRESETS, *HOLDINGS_PRESETS) if f"`{name}`" not in text]
    assert not missing, f"presets not named in docs/sources.md: {missing}"


@pytest.mark.parametrize("name", ["sources.yaml", "demo/sources.yaml"])
def test_the_example_sources_files_load_with_every_key_once(name):
    text = (REPO / name).read_text(encoding="utf-8")
    assert parse_sources(yaml.load(text, Loader=KeysOnce), REPO / name).sources
