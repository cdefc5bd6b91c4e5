"""A real OpenID Connect provider for tests: npm's ``oidc-provider`` 9.x run by node on loopback.

``npm install`` goes into ``$UNIONCAT_CACHE/oidc-provider`` once (cached across runs).
In CI a missing node/npm fails the test; elsewhere it skips with the reason.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from services import cache_dir, ends_with_us, stop_process, unavailable

VERSION = "9.13.3"
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")


def install() -> Path:
    """``npm install oidc-provider@VERSION`` into the cache (once); its directory."""
    target = cache_dir("oidc-provider")
    installed = target / "node_modules" / "oidc-provider" / "package.json"
    if installed.exists() and json.loads(installed.read_text()).get("version") == VERSION:
        return target
    if not shutil.which("npm") or not shutil.which("node"):
        unavailable("node and npm are needed to run the oidc-provider (make install: Node 20+)",
                    "the sign-on tests")
    target.mkdir(parents=True, exist_ok=True)
    if not (target / "package.json").exists():
        (target / "package.json").write_text('{"name": "unioncat-oidc-provider", "private": true}\n')
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"oidc-provider@{VERSION}"],
                          cwd=target, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        unavailable(f"npm install oidc-provider@{VERSION} failed: {done.stderr[-2000:]}", "the sign-on tests")
    return target


class OIDCProvider:
    """A running provider (RP-initiated logout on): ``issuer``, ``client_id``, ``client_secret``; ``stop()``."""

    def __init__(self, redirect_uri: str, client_id: str = "unioncat", client_secret: str = "s3cret-for-tests",
                 post_logout_redirect_uri: str = ""):
        """``post_logout_redirect_uri``: the relying party's page the provider's logout may return to."""
        self.client_id, self.client_secret = client_id, client_secret
        env = {**os.environ, "OIDC_PROVIDER_DIR": str(install()), "OIDC_CLIENT_ID": client_id,
               "OIDC_CLIENT_SECRET": client_secret, "OIDC_REDIRECT_URI": redirect_uri,
               "OIDC_POST_LOGOUT_REDIRECT_URI": post_logout_redirect_uri, "NODE_ENV": "development"}
        self._log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(ends_with_us(["node", str(SCRIPT)]), env=env, stdout=subprocess.PIPE,
                                        stderr=self._log, text=True)
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(5)
            self._log.seek(0)
            raise RuntimeError(f"oidc-provider did not start: {self._log.read()[-2000:]}")
        self.issuer = json.loads(line)["issuer"]

    def stop(self) -> None:
        stop_process(self.process)
        self.process.stdout.close()
        self._log.close()
