"""Probing a member before (or instead of) harvesting it.

A probe answers "is this source set up right?" in a few seconds, without
touching the store: the OAI-PMH endpoint answers Identify (and what it says
about granularity matters for incremental harvests), or the dump path
exists and holds files we would read.  Used by ``unioncat check``-style
commands and the admin pages; it never raises for a source's failure.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from .config import Source
from .files import DEFAULT_PATTERNS, matching_files
from .oai import HarvestError, OAIClient


@dataclass
class ProbeResult:
    """The outcome of one probe: ``ok``, a one-line ``message`` and what was learnt."""

    source: str
    ok: bool
    message: str
    latency_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


def probe_source(source: Source, session: requests.Session | None = None, timeout: float = 10) -> ProbeResult:
    """Check that ``source`` is reachable and looks right; never raises for the source's faults."""
    if source.protocol == "oai":
        return _probe_oai(source, session, timeout)
    if source.protocol == "file":
        return _probe_file(source)
    return ProbeResult(source.id, False, f"protocol {source.protocol!r} is not supported yet")


def _probe_oai(source: Source, session: requests.Session | None, timeout: float) -> ProbeResult:
    # A probe should answer quickly: one attempt, the probe's own timeout, no politeness wait.
    quick = replace(source, timeout=timeout, max_retries=0, delay=0.0)
    client = OAIClient(quick, session=session)
    start = time.monotonic()
    try:
        info = client.identify()
    except (HarvestError, requests.RequestException, ValueError) as exc:
        return ProbeResult(source.id, False, f"{source.url}: {exc}" if source.url not in str(exc) else str(exc),
                           round((time.monotonic() - start) * 1000, 1))
    finally:
        if session is None:
            client.close()
    latency = round((time.monotonic() - start) * 1000, 1)
    details = {
        "repositoryName": info.repository_name, "granularity": info.granularity,
        "earliestDatestamp": info.earliest_datestamp, "protocolVersion": info.protocol_version,
        "deletedRecord": info.deleted_record, "baseURL": info.base_url,
    }
    if info.protocol_version and info.protocol_version != "2.0":
        return ProbeResult(source.id, False, f"{source.url}: OAI-PMH {info.protocol_version}, expected 2.0",
                           latency, details)
    name = info.repository_name or "(no repositoryName)"
    return ProbeResult(source.id, True, f"{name}: OAI-PMH {info.protocol_version or '?'}, granularity "
                       f"{info.granularity}, earliest {info.earliest_datestamp or '?'}", latency, details)


def _probe_file(source: Source) -> ProbeResult:
    start = time.monotonic()
    result = _check_files(source)
    result.latency_ms = round((time.monotonic() - start) * 1000, 1)
    return result


def _check_files(source: Source) -> ProbeResult:
    path: Path | None = source.path
    if path is None:
        return ProbeResult(source.id, False, "no path configured")
    pattern = source.options.get("pattern")
    if not path.exists():
        return ProbeResult(source.id, False, f"{path}: no such file or folder")
    files = list(matching_files(path, pattern)) if path.is_dir() else [path]
    if not files:
        globs = pattern or " ".join(DEFAULT_PATTERNS)
        return ProbeResult(source.id, False, f"{path}: no files matching {globs}")
    size = sum(f.stat().st_size for f in files)
    empty = [f.name for f in files if f.stat().st_size == 0]
    details = {"files": len(files), "bytes": size, "empty": empty}
    if empty:
        return ProbeResult(source.id, False, f"{path}: {len(empty)} empty file(s): {', '.join(empty[:5])}",
                           details=details)
    return ProbeResult(source.id, True, f"{path}: {len(files)} file(s), {size} bytes", details=details)
