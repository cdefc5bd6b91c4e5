"""Acceptance: a wheel built from the tree, installed into a fresh virtualenv outside the checkout, runs
`unioncat demo --no-serve`, `unioncat publish zebra` and the migrations.

Why: the tests otherwise run from the checkout, where a file missing from the package data (Zebra's
configuration, templates, translations, migrations) or a path relative to the repository goes unnoticed
until someone installs the product.  The build must also be quiet (no setuptools warnings).  The wheel is
installed with its dependencies from the package index (pip's cache keeps that quick); nothing of the
checkout is on the path of the installed commands.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from peers.zebra import zebra_or_skip

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("storage", "consortium", "harvester", "normaliser", "dedupe", "publish", "index", "web", "unioncat",
            "demo")
pytestmark = pytest.mark.loc


def run(*cmd: str | Path, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything pointing into the checkout (PYTHONPATH, UNIONCAT_* settings)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("UNIONCAT_")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """Build the wheel from a copy of the tree (so no build/ or egg-info lands in the checkout); its path and log."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".cache", "var", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "tests",
        "bench", "docs"))
    result = run(sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", root / "dist", src, cwd=root,
                 env=clean_env())
    (built,) = (root / "dist").glob("unioncat-*.whl")
    return built, result.stdout + result.stderr


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel and its dependencies (and the demo extra) installed: its bin folder."""
    zebra_or_skip()
    target = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", target, cwd=target, env=clean_env())
    run(target / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check", f"{wheel[0]}[demo]",
        cwd=target, env=clean_env(), timeout=600)
    return target / "bin"


def test_the_build_is_quiet(wheel):
    noise = [line for line in wheel[1].splitlines()
             if "warning" in line.lower() and "byte-compiling is disabled" not in line]
    assert not noise, "\n".join(noise)


def test_the_wheel_holds_every_data_file_and_no_tests(wheel):
    names = set(zipfile.ZipFile(wheel[0]).namelist())
    expected = {p.relative_to(REPO).as_posix() for package in PACKAGES for p in (REPO / package).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc" and p.name != ".keep"}
    assert expected - names == set()
    assert not [n for n in names if n.startswith(("tests/", "bench/", "docs/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel[0]).read(entry_points).decode()
    assert "[unioncat.commands]\ndemo = demo.cli:demo" in text and "unioncat = unioncat.cli:main" in text


def test_demo_publish_zebra_and_migrations_from_the_wheel(venv, tmp_path):
    cache = Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache"))
    env = clean_env(UNIONCAT_CACHE=str(cache))
    demo = run(venv / "unioncat", "demo", "--no-serve", "--records", "300", "--chinese", "30", cwd=tmp_path, env=env)
    assert "[njust] ok:" in demo.stderr and "[seu] ok:" in demo.stderr and "held by several libraries" in demo.stderr
    sources = Path("var/demo/sources.yaml")  # relative, like every path below: run from a folder of its own
    published = run(venv / "unioncat", "--sources", sources, "publish", "zebra", cwd=tmp_path, env=env)
    assert "offered" in published.stderr and (tmp_path / "var" / "zebra" / "zebra.cfg").exists()
    upgraded = run(venv / "unioncat", "--sources", sources, "--data", "fresh", "db", "upgrade", cwd=tmp_path,
                   env=env)
    assert "was empty" in upgraded.stdout + upgraded.stderr
    status = json.loads(run(venv / "unioncat", "--sources", sources, "status", "--json", cwd=tmp_path,
                            env=env).stdout)
    assert status["totals"]["clusters"] > 100
