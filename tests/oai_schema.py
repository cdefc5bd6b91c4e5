"""The official OAI-PMH 2.0 schema, fetched at test time from the pyoai 2.5.0 sdist on PyPI (never committed).

Downloaded once into ``$UNIONCAT_CACHE`` (default ``.cache/``) with pip's
ordinary client, then read from there.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from lxml import etree

MEMBER = "pyoai-2.5.0/src/oaipmh/tests/OAI-PMH.xsd"


def oai_xsd_path() -> Path:
    cache = Path(os.environ.get("UNIONCAT_CACHE") or Path(__file__).resolve().parents[1] / ".cache")
    target = cache / "OAI-PMH.xsd"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / "pyoai-2.5.0.tar.gz"
    if not sdist.exists():
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                 "pyoai==2.5.0", "-d", str(cache)], capture_output=True, text=True, timeout=300)
        if result.returncode != 0 or not sdist.exists():
            pytest.fail(f"could not download the pyoai 2.5.0 sdist for OAI-PMH.xsd: {result.stderr[-2000:]}")
    with tarfile.open(sdist) as tar:
        data = tar.extractfile(MEMBER).read()
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


@pytest.fixture(scope="session")
def oai_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(oai_xsd_path())))


def valid(schema: etree.XMLSchema, body: bytes) -> etree._Element:
    """Parse an OAI-PMH response and assert it validates; return its root."""
    root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    if not schema.validate(root):
        raise AssertionError(f"response does not validate against OAI-PMH.xsd: {schema.error_log}\n"
                             f"{body[:2000].decode('utf-8', 'replace')}")
    return root
