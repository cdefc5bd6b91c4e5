"""Benchmark SAML 2.0 sign-on: what one reader's sign-in and logout cost the catalogue.

    python bench/saml_signon.py --signins 200

pysaml2's IdP (tests/peers/saml_idp.py, its own process on loopback) and the catalogue's SP (Flask's test
client, in this process).  Each round: ``/login/<library>`` (a signed AuthnRequest), the IdP's login,
``POST /saml/acs`` (pysaml2's checks, the assertion's signature verified by an ``xmlsec1`` child
process), then ``POST /logout`` (a signed LogoutRequest) and the IdP's answer at ``/saml/sls``.  Timed on
the SP side only (the IdP's own work excluded): start, ACS and logout latency percentiles; sign-ins per
second of SP time; CPU seconds of this process and of its children (``xmlsec1``) beside wall time; peak
RSS; the load average before and after (the machine is shared).

Prints one JSON document.  Results go into BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from consortium.load import parse_sources  # noqa: E402
from peers.saml_idp import SAMLIdP, make_key_pair  # noqa: E402
from services import free_port  # noqa: E402
from storage.db import make_engine, sqlite_url  # noqa: E402
from unioncat.schema import ensure_schema  # noqa: E402
from web import create_app  # noqa: E402

USERS = {"lihua": {"eduPersonPrincipalName": ["lihua@pku.edu.cn"], "displayName": ["李华"],
                   "eduPersonScopedAffiliation": ["student@pku.edu.cn"]}}


def make_app(folder: Path, idp: SAMLIdP, key: Path, cert: Path):
    engine = make_engine(sqlite_url(folder / "catalogue.db"))
    ensure_schema(engine)
    sources = parse_sources({"consortium": {"name": "Bench"}, "sources": [
        {"id": "pku", "name": "Peking University Library", "region": "Beijing", "protocol": "file", "path": "x.mrc",
         "sign_on": {"type": "saml", "idp": idp.entity_id, "metadata_url": idp.metadata_url,
                     "scopes": ["pku.edu.cn"]}}]}, folder / "sources.yaml")
    return create_app({"SOURCES": sources, "DB_ENGINE": engine, "INDEX_PATH": str(folder / "index"),
                       "SECRET_KEY": "bench", "SAML_KEY_FILE": str(key), "SAML_CERT_FILE": str(cert)})


def one_round(client, idp: SAMLIdP, browser: requests.Session) -> dict[str, float]:
    """One sign-in and logout; seconds spent in the SP for each step."""
    t0 = time.perf_counter()
    start = client.get("/login/pku")
    t_start = time.perf_counter() - t0
    key = re.search(r'name="key" value="([^"]+)"', browser.get(start.location, timeout=10).text).group(1)
    posted = browser.post(f"{idp.url}/sso/login", data={"key": key, "username": "lihua"}, timeout=10)
    fields = {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', posted.text)}
    t0 = time.perf_counter()
    signed = client.post("/saml/acs", data=fields)
    t_acs = time.perf_counter() - t0
    assert signed.status_code == 302, signed.text[:500]
    page = client.get("/basket")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    t0 = time.perf_counter()
    out = client.post("/logout", data={"csrf_token": token})
    t_logout = time.perf_counter() - t0
    url = html.unescape(re.search(r'id="provider-logout" href="([^"]+)"', out.text).group(1))
    back = urlsplit(browser.get(url, allow_redirects=False, timeout=10).headers["Location"])
    t0 = time.perf_counter()
    done = client.get(f"{back.path}?{back.query}")
    t_sls = time.perf_counter() - t0
    assert done.status_code == 303
    return {"start": t_start, "acs": t_acs, "logout": t_logout, "sls": t_sls}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1), "p95_ms": round(pick(0.95) * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signins", type=int, default=200)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="unioncat-bench-saml-") as tmp:
        folder = Path(tmp)
        idp = SAMLIdP(folder / "idp", port=free_port())
        key, cert = make_key_pair(folder, "sp")
        app = make_app(folder, idp, key, cert)
        client = app.test_client()
        idp.start(client.get("/saml/metadata").data, USERS)
        try:
            browser = requests.Session()
            one_round(client, idp, browser)  # warm-up: metadata fetched and cached
            own0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            wall0 = time.perf_counter()
            rounds = [one_round(client, idp, browser) for _ in range(args.signins)]
            wall = time.perf_counter() - wall0
            own1, kids1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            idp.stop()
    sp_seconds = sum(sum(r.values()) for r in rounds)
    print(json.dumps({
        "signins": args.signins,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "start": percentiles([r["start"] for r in rounds]),
        "acs": percentiles([r["acs"] for r in rounds]),
        "logout": percentiles([r["logout"] for r in rounds]),
        "sls": percentiles([r["sls"] for r in rounds]),
        "sp_signin_and_logout_per_s": round(args.signins / sp_seconds, 1),
        "wall_s_including_idp": round(wall, 2),
        "cpu_s_self": round(own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime, 2),
        "cpu_s_children_xmlsec1_and_idp_startup": round(kids1.ru_utime + kids1.ru_stime - kids0.ru_utime
                                                        - kids0.ru_stime, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
