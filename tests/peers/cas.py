"""A real CAS 3.0 server for tests: django-mama-cas 2.5 (PyPI) on loopback, in its own cached virtualenv.

The virtualenv lives in ``$UNIONCAT_CACHE/mama-cas`` (made once with ``pip install``), so Django never
enters unioncat's environment.  In CI a failure to install fails the test; elsewhere it skips.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

from services import cache_dir, ends_with_us, free_port, stop_process, unavailable

REQUIREMENTS = ["django-mama-cas==2.5.0", "Django>=4.2,<5"]
SETTINGS_DIR = Path(__file__).with_name("cas_server")


def install() -> Path:
    """The virtualenv's python, made and filled once."""
    venv = cache_dir("mama-cas")
    python = venv / "bin" / "python"
    marker = venv / "installed.txt"
    if marker.exists() and marker.read_text() == "\n".join(REQUIREMENTS):
        return python
    done = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if done.returncode == 0:
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS],
                              capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        unavailable(f"could not install {' '.join(REQUIREMENTS)}: {done.stderr[-2000:]}", "the CAS tests")
    marker.write_text("\n".join(REQUIREMENTS))
    return python


class CASServer:
    """mama-cas under Django's runserver; ``url`` is the CAS base (``…/cas``), one user made per ``add_user``."""

    def __init__(self) -> None:
        self.python = install()
        self._data = tempfile.TemporaryDirectory(prefix="unioncat-cas-")
        self.env = {**os.environ, "CAS_DATA_DIR": self._data.name, "DJANGO_SETTINGS_MODULE": "settings",
                    "PYTHONPATH": str(SETTINGS_DIR)}
        self._django("migrate", "--noinput", "-v", "0")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/cas"
        self._log = open(Path(self._data.name) / "server.log", "w")
        self.process = subprocess.Popen(ends_with_us([str(self.python), "-m", "django", "runserver",
                                                      f"127.0.0.1:{port}", "--noreload", "--nothreading"]), env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                urlopen(self.url + "/login", timeout=2).read()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("mama-cas did not start: " + (Path(self._data.name) / "server.log").read_text())
                time.sleep(0.2)

    def _django(self, *args: str) -> None:
        subprocess.run([str(self.python), "-m", "django", *args], env=self.env, check=True, capture_output=True)

    def add_user(self, username: str, password: str, first: str = "", last: str = "") -> None:
        code = ("from django.contrib.auth.models import User; "
                f"User.objects.create_user({username!r}, password={password!r}, first_name={first!r}, "
                f"last_name={last!r})")
        self._django("shell", "-c", code)

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()
        self._data.cleanup()
