"""Data flows one way: each package imports only packages upstream of it (DESIGN.md)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("harvester", "normaliser", "dedupe", "index", "web", "unioncat")
ALLOWED = {
    "harvester": set(),
    "normaliser": {"harvester"},
    "dedupe": {"harvester", "normaliser"},
    "index": {"harvester", "normaliser", "dedupe"},
    "web": {"harvester", "normaliser", "dedupe", "index"},
    "unioncat": set(PACKAGES) - {"unioncat"},
}
LIBRARIES = ("harvester", "normaliser", "dedupe", "index")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_downstream_only(package):
    for path in sorted((REPO / package).rglob("*.py")):
        found = imports(path) & set(PACKAGES) - {package}
        assert found <= ALLOWED[package], f"{path.relative_to(REPO)} imports {sorted(found - ALLOWED[package])}"


@pytest.mark.parametrize("package", LIBRARIES)
def test_libraries_read_no_environment_and_need_no_web_framework(package):
    for path in sorted((REPO / package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "os.environ" not in text and "getenv" not in text, f"{path.relative_to(REPO)} reads the environment"
        assert not imports(path) & {"flask", "rq", "redis"}, f"{path.relative_to(REPO)} imports a server framework"
