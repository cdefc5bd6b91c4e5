"""The house rules, enforced file by file (docs/architecture.md, ../shared/DESIGN.md).

- Data flows one way: each package imports only the floors below it.
- No import circles between modules, counting imports inside functions.
- Each table is private to the module that declares it; web never creates tables (Alembic does).
- Modules stay readable: ~450 lines, functions that fit a screen (~60 lines), with named exceptions.
- The product never imports the demo; the docs' package table is the tree.
"""
from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Bottom floor first.  A package may import the packages listed for it, nothing else of ours.
ALLOWED: dict[str, set[str]] = {
    "runtime": set(),
    "storage": set(),
    "consortium": {"storage"},
    "harvester": {"storage", "consortium"},
    "normaliser": {"storage", "consortium", "harvester"},
    "dedupe": {"storage", "normaliser"},
    "publish": {"storage", "consortium", "harvester", "normaliser", "dedupe"},
    "index": {"storage", "normaliser", "dedupe"},
    "web": {"storage", "consortium", "harvester", "normaliser", "dedupe", "publish", "index"},
    "unioncat": {"storage", "consortium", "harvester", "normaliser", "dedupe", "publish", "index", "web"},
    "demo": {"storage", "consortium", "harvester", "normaliser", "dedupe", "publish", "index", "web", "unioncat"},
}
for _package in list(ALLOWED)[1:]:    # runtime (worker processes) is a floor beside storage: any package may use it
    ALLOWED[_package].add("runtime")
PACKAGES = tuple(ALLOWED)
#: Plain libraries: configuration comes in as arguments; no web or queue framework.
LIBRARIES = ("runtime", "storage", "consortium", "harvester", "normaliser", "dedupe", "publish", "index")
#: What one package may take from another when it may not take everything (DESIGN: "RawRecord only").
NARROW = {("normaliser", "harvester"): {"harvester.raw"}}
#: Reading a setting from the environment (handing the environment on to a child process is fine).
ENV_READ = re.compile(r"os\.environ(\.get|\[|\.setdefault)|getenv\(")

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
#: The exceptions, each with its reason (the closing note repeats them).
LONG_FUNCTIONS = {
    "web/openapi.py:openapi_document": "a data literal: the OpenAPI description as one dict",
}
LONG_MODULES: dict[str, str] = {}


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")
                  if "migrations/versions" not in p.as_posix())


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


@cache
def known_modules() -> frozenset[str]:
    return frozenset(module_name(p) for p in modules())


def imported_modules(path: Path) -> set[str]:
    """Every module of ours that ``path`` imports, anywhere in the file (functions included).

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``.
    """
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known_modules() else base)
    return {_ours(name) for name in found if _ours(name)}


def _ours(name: str) -> str | None:
    """The longest module of ours that ``name`` is or lies in (``storage.db.utcnow`` → ``storage.db``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known_modules():
            return candidate
        parts.pop()
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_down_the_floors_only(package):
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        for name in imported_modules(path):
            other = name.split(".")[0]
            if other == package:
                continue
            narrow = NARROW.get((package, other))
            if other not in ALLOWED[package] or (narrow is not None and name not in narrow):
                bad.append(f"{path.relative_to(REPO)} imports {name}")
    assert not bad, "imports against the floors:\n" + "\n".join(bad)


def test_no_import_circles_between_modules():
    graph = {module_name(p): imported_modules(p) - {module_name(p)} for p in modules()}
    circles = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
    assert not circles, "modules that import each other (directly or round a circle):\n" + \
        "\n".join(" ↔ ".join(c) for c in circles)


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively (the graph is a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)
    return found


def test_the_circle_finder_finds_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert sorted(sorted(c) for c in strongly_connected(graph) if len(c) > 1) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", LIBRARIES)
def test_libraries_read_no_environment_and_need_no_server_framework(package):
    for path in sorted((REPO / package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not ENV_READ.search(text), f"{path.relative_to(REPO)} reads the environment"
        top = {n.split(".")[0] for n in _all_imports(path)}
        assert not top & {"flask", "rq", "redis", "click"}, f"{path.relative_to(REPO)} imports a server framework"


def _all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def table_owners() -> dict[str, str]:
    """Table variable name → the one module that declares it with ``Table(...)``."""
    owners: dict[str, str] = {}
    for path in modules():
        for node in tree(path).body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and getattr(node.value.func, "id", None) == "Table"):
                for target in node.targets:
                    assert target.id not in owners, f"table {target.id} declared twice"
                    owners[target.id] = module_name(path)
    return owners


def test_each_table_is_private_to_the_module_that_declares_it():
    owners = table_owners()
    assert {"raw_records", "clusters", "records", "counters"} <= set(owners)
    bad = []
    for path in modules():
        here = module_name(path)
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    owner = owners.get(alias.name)
                    if owner and owner != here and owner in {_ours(node.module), _resolve(path, node)}:
                        bad.append(f"{path.relative_to(REPO)} takes table {alias.name} from {owner}")
    assert not bad, "tables used outside their module (call the owner's methods):\n" + "\n".join(bad)


def _resolve(path: Path, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return None
    package = module_name(path).split(".")
    package = package if path.name == "__init__.py" else package[:-1]
    base = package[:len(package) - node.level + 1] + ([node.module] if node.module else [])
    return _ours(".".join(base))


def test_web_never_creates_tables():
    for path in sorted((REPO / "web").rglob("*.py")):
        assert "create_all" not in path.read_text(encoding="utf-8"), f"{path.relative_to(REPO)}: Alembic creates tables"


def test_every_module_with_tables_is_known_to_the_migrations():
    schema = (REPO / "unioncat" / "schema.py").read_text(encoding="utf-8")
    for owner in sorted(set(table_owners().values())):
        assert f'"{owner}"' in schema, f"{owner} declares tables but unioncat/schema.py SCHEMA_MODULES lacks it"


def test_the_product_never_imports_the_demo():
    for package in set(PACKAGES) - {"demo"}:
        for path in sorted((REPO / package).rglob("*.py")):
            assert not any(n.split(".")[0] == "demo" for n in imported_modules(path)), \
                f"{path.relative_to(REPO)} imports the demo"


def test_modules_and_functions_stay_readable():
    long = []
    for path in modules():
        rel = path.relative_to(REPO).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES and rel not in LONG_MODULES:
            long.append(f"{rel}: {lines} lines")
        for node in ast.walk(tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and f"{rel}:{node.name}" not in LONG_FUNCTIONS:
                    long.append(f"{rel}:{node.lineno} {node.name}: {length} lines")
    assert not long, "over the size rules (split, or name the exception with its reason):\n" + "\n".join(long)


def test_the_architecture_table_lists_every_package():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(\w+)/` \|", text, flags=re.M))
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert listed == on_disk == set(PACKAGES), (listed, on_disk)
