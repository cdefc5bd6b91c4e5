"""scripts/pick-python.sh: the interpreter the Makefile makes the virtualenv from.

Why: the distribution's build (PGO + LTO on Debian) runs the pipeline ~10% cheaper than a default source build,
but only an interpreter that is new enough and can make a virtualenv will do — else ``make`` fails on a machine
where the first candidate is an old or venv-less python3.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pick-python.sh"
SYSTEM = "/usr/bin/python3"


def usable(python: str) -> bool:
    """What the script asks of a candidate: 3.11 or newer, and able to make a virtualenv."""
    return subprocess.run([python, "-c", "import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))"],
                          capture_output=True).returncode == 0


def pick(*candidates: str) -> str:
    return subprocess.run(["sh", str(SCRIPT), *candidates], capture_output=True, text=True, check=True).stdout.strip()


def fake(tmp_path: Path, name: str, version: tuple[int, int], venv: bool = True) -> str:
    """A stand-in interpreter that answers the script's probe as one of ``version`` (with or without venv)."""
    path = tmp_path / name
    ok = version >= (3, 11) and venv
    path.write_text(f"#!/bin/sh\nexit {0 if ok else 1}\n")
    path.chmod(0o755)
    return str(path)


def test_the_first_candidate_new_enough_with_venv_is_taken(tmp_path):
    old, no_venv, good = fake(tmp_path, "py39", (3, 9)), fake(tmp_path, "bare", (3, 12), venv=False), \
        fake(tmp_path, "py312", (3, 12))
    assert pick(old, no_venv, good, sys.executable) == good
    assert pick(str(tmp_path / "missing"), sys.executable) == sys.executable


def test_nothing_suitable_falls_back_to_python3_on_path(tmp_path):
    assert pick(fake(tmp_path, "py39", (3, 9))) == "python3"


def test_by_default_the_distributions_interpreter_where_it_is_usable():
    chosen = pick()
    assert usable(chosen)
    system_usable = Path(SYSTEM).exists() and usable(SYSTEM)
    assert (chosen == SYSTEM) == system_usable, (chosen, system_usable, os.environ.get("PATH"))
