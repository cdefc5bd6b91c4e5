"""The CI rule holds for any skip: in CI a skipped test fails the run; elsewhere it stays a skip."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _run(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\n"
        "def test_bare_skip():\n    pytest.skip('no server here')\n\n"
        "@pytest.mark.xfail(reason='known')\ndef test_expected_failure():\n    assert False\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(TESTS)
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "ci_rule", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_skips.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_bare_skip_fails_in_ci_and_an_xfail_stays_expected(tmp_path):
    done = _run(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout
    assert "1 failed" in done.stdout and "1 xfailed" in done.stdout
    assert "skipped in CI (Skipped: no server here)" in done.stdout


def test_outside_ci_a_skip_stays_a_skip(tmp_path):
    done = _run(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout and "1 xfailed" in done.stdout
