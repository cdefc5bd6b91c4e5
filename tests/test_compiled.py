"""The compiled copies of the record-handling modules (unioncat/compiled.py, scripts/compile_modules.py), opt-in.

Why: where ``make compiled`` built them they are what a build runs, and a copy must never outlive an edit of
its source — a stale compiled module would run yesterday's code under today's name.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import compile_modules  # noqa: E402

from unioncat import compiled  # noqa: E402


def test_a_module_edited_since_its_build_runs_as_python_and_pure_runs_nothing_compiled(tmp_path):
    package = tmp_path / "toypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "shout.py").write_text("def shout(s: list[str] = ()) -> str:\n    return '!'.join(s)\n")
    assert compile_modules.build(tmp_path, jobs=1, packages=("toypkg",), hook=False) == ["toypkg.shout"]
    assert compile_modules.build(tmp_path, jobs=1, packages=("toypkg",), hook=False) == []  # nothing changed
    probe = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from unioncat import compiled
        finder = compiled.install(packages=("toypkg",))
        from toypkg.shout import shout
        print(shout(("a", "b")), sys.modules["toypkg.shout"].__file__, finder and finder.stale)
    """)

    def run(**env: str) -> str:
        return subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True,
                              env={**compiled.os.environ, **env}).stdout.strip()

    suffix = compiled.sysconfig.get_config_var("EXT_SUFFIX")
    assert run() == f"a!b {tmp_path / compiled.BUILD_DIR / 'toypkg' / ('shout' + suffix)} []"
    assert run(UNIONCAT_PURE="1") == f"a!b {package / 'shout.py'} None"
    (package / "shout.py").write_text("def shout(s=()):\n    return '?'.join(s)\n")
    assert run() == f"a?b {package / 'shout.py'} ['toypkg.shout']"
