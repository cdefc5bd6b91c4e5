"""Probing a member before (or instead of) harvesting it.

A probe answers "is this source set up right?" in a few seconds, without
touching the store: the OAI-PMH endpoint answers Identify (and what it says
about granularity matters for incremental harvests), the dump path
exists and holds files we would read, a Z39.50 server accepts an Init and
answers the source's query, or an SRU server answers explain.  Used by ``unioncat sources check``
(whose results the staff availability page shows); it never raises for a source's failure.
"""
from __future__ import annotations

import difflib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from lxml import etree

from consortium.config import Source
from .clients.dumps import DEFAULT_PATTERNS, matching_files
from .clients.oai import OAI_NS, BadResponse, ListSpec, NoSetHierarchy, OAIClient
from .clients.xmlsafe import XMLError, parse_xml
from .errors import HarvestError
from .retry import RetryPolicy
from .protocols.zoom_plan import connect, queries_for


@dataclass
class ProbeResult:
    """The outcome of one probe: ``ok``, a one-line ``message`` and what was learnt."""

    source: str
    ok: bool
    message: str
    latency_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


def probe_source(source: Source, session: requests.Session | None = None, timeout: float = 10,
                 env: Mapping[str, str] | None = None) -> ProbeResult:
    """Check that ``source`` is reachable and looks right; never raises for the source's faults.

    ``env`` holds the secrets ``password_env`` keys name (library code never reads the environment).
    """
    if source.protocol == "oai":
        return _probe_oai(source, session, timeout)
    if source.protocol == "file":
        return _probe_file(source)
    if source.protocol == "z3950":
        return _probe_z3950(source, timeout, env)
    return _probe_sru(source, session, timeout)


def _probe_z3950(source: Source, timeout: float, env: Mapping[str, str] | None) -> ProbeResult:
    """Init, then the source's first query (hit count only, no records)."""
    start = time.monotonic()
    query = queries_for(source)[0]
    try:
        with connect(source, env, timeout=timeout) as conn:
            init_ms = round((time.monotonic() - start) * 1000, 1)
            with conn.search(query) as rs:
                hits = rs.size
            details = {"hits": hits, "query": query, "database": conn.database, "syntax": conn.syntax,
                       "init_ms": init_ms, "implementation": conn.option("targetImplementationName"),
                       "implementationVersion": conn.option("targetImplementationVersion")}
    except HarvestError as exc:  # ZoomError, or YazMissing
        message = str(exc)
        return ProbeResult(source.id, False, message if source.url in message else f"{source.url}: {message}",
                           round((time.monotonic() - start) * 1000, 1))
    latency = round((time.monotonic() - start) * 1000, 1)
    name = details["implementation"] or "Z39.50 server"
    return ProbeResult(source.id, True, f"{name}: database {details['database'] or '?'}, {hits} hit(s) for "
                       f"{query}", latency, details)


def _probe_sru(source: Source, session: requests.Session | None, timeout: float) -> ProbeResult:
    """An SRU explain request over plain HTTP (the explain record is optional; the response is not)."""
    version = str(source.options.get("sru_version", "1.2"))
    http = session or requests.Session()
    start = time.monotonic()
    try:
        response = http.get(source.url, params={"operation": "explain", "version": version}, timeout=timeout)
        latency = round((time.monotonic() - start) * 1000, 1)
        response.raise_for_status()
        root = parse_xml(response.content)
    except (requests.RequestException, XMLError) as exc:
        return ProbeResult(source.id, False, f"{source.url}: {exc}", round((time.monotonic() - start) * 1000, 1))
    finally:
        if session is None:
            http.close()
    local = etree.QName(root).localname
    if local != "explainResponse":
        return ProbeResult(source.id, False, f"{source.url}: not an SRU explain response (root <{local}>)",
                           latency)
    found = {etree.QName(e).localname: (e.text or "").strip() for e in root.iter() if isinstance(e.tag, str)}
    details = {"version": found.get("version"), "title": found.get("title"), "database": found.get("database")}
    title = details["title"] or "SRU server"
    return ProbeResult(source.id, True, f"{title}: SRU {details['version'] or version} explain ok", latency, details)


def _probe_oai(source: Source, session: requests.Session | None, timeout: float) -> ProbeResult:
    # A probe should answer quickly: one attempt, the probe's own timeout, no politeness wait.
    client = OAIClient(source.url or "", ListSpec(source.id, source.metadata_prefix, source.set, source.format),
                       timeout=timeout, retry=RetryPolicy(max_retries=0), session=session)
    start = time.monotonic()
    try:
        info = client.identify()
        offered = _offered(client, source)
    except HarvestError as exc:
        elapsed = round((time.monotonic() - start) * 1000, 1)
        html = _html_page(client.session, source.url or "", timeout) if isinstance(exc, BadResponse) else None
        if html is not None:
            return ProbeResult(source.id, False, f"{source.url}: not an OAI-PMH endpoint (HTML{html})", elapsed)
        return ProbeResult(source.id, False, f"{source.url}: {exc}" if source.url not in str(exc) else str(exc),
                           elapsed)
    finally:
        if session is None:
            client.close()
    latency = round((time.monotonic() - start) * 1000, 1)
    details = {
        "repositoryName": info.repository_name, "granularity": info.granularity,
        "earliestDatestamp": info.earliest_datestamp, "protocolVersion": info.protocol_version,
        "deletedRecord": info.deleted_record, "baseURL": info.base_url,
    }
    details.update(offered)
    if info.protocol_version and info.protocol_version != "2.0":
        return ProbeResult(source.id, False, f"{source.url}: OAI-PMH {info.protocol_version}, expected 2.0",
                           latency, details)
    mismatch = _mismatch(source, offered)
    if mismatch:
        return ProbeResult(source.id, False, f"{source.url}: {mismatch}", latency, details)
    name = info.repository_name or "(no repositoryName)"
    return ProbeResult(source.id, True, f"{name}: OAI-PMH {info.protocol_version or '?'}, granularity "
                       f"{info.granularity}, earliest {info.earliest_datestamp or '?'}", latency, details)


#: ListSets pages read at most: a set is usually on the first page; a repository with thousands of sets
#: is not walked to the end by a probe that should answer in seconds.
MAX_SET_PAGES = 5


def _offered(client: OAIClient, source: Source) -> dict[str, Any]:
    """What the repository offers, from ListMetadataFormats and (when the source names a set) ListSets."""
    tree = client.sickle.harvest(verb="ListMetadataFormats").xml
    formats = [(e.text or "").strip() for e in tree.iter(_oai("metadataPrefix"))]
    out: dict[str, Any] = {"metadataFormats": formats}
    if not source.set:
        return out
    sets: list[str] = []
    params = {"verb": "ListSets"}
    try:
        for _ in range(MAX_SET_PAGES):
            tree = client.sickle.harvest(**params).xml
            sets += [(e.text or "").strip() for e in tree.iter(_oai("setSpec")) if e.getparent().tag == _oai("set")]
            token = (tree.findtext(f".//{_oai('resumptionToken')}") or "").strip()
            if not token or source.set in sets:
                break
            params = {"verb": "ListSets", "resumptionToken": token}
        else:
            out["setsComplete"] = False
    except NoSetHierarchy:
        pass
    out["sets"] = sets
    return out


def _mismatch(source: Source, offered: dict[str, Any]) -> str | None:
    """Why the source's ``metadata_prefix`` or ``set`` will not harvest, or None."""
    formats = offered["metadataFormats"]
    if source.metadata_prefix not in formats:
        return (f"metadata_prefix {source.metadata_prefix!r} is not offered; ListMetadataFormats has "
                f"{', '.join(formats) or 'none'}")
    sets = offered.get("sets")
    if source.set and sets is not None and source.set not in sets and offered.get("setsComplete", True):
        if not sets:
            return f"set {source.set!r}: the repository has no sets (ListSets: noSetHierarchy)"
        close = difflib.get_close_matches(source.set, sets, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; it has {len(sets)}, e.g. {', '.join(sets[:5])}"
        return f"set {source.set!r} is not in ListSets{hint}"
    return None


def _html_page(session: requests.Session, url: str, timeout: float) -> str | None:
    """``": <title>"`` (or ``""``) when ``url`` answers Identify with an HTML page, else None.

    An HTML page carries a DOCTYPE, which the hardened XML parser refuses as a possible XXE: true, but
    the person reading the check needs to hear that the URL is a web page, not an OAI-PMH endpoint.
    """
    try:
        response = session.get(url, params={"verb": "Identify"}, timeout=timeout)
    except requests.RequestException:
        return None
    head = response.content[:2048].lstrip().lower()
    if "html" not in response.headers.get("Content-Type", "") and not head.startswith((b"<!doctype html", b"<html")):
        return None
    title = re.search(rb"<title[^>]*>(.*?)</title>", response.content[:20000], re.I | re.S)
    text = " ".join(title.group(1).decode("utf-8", "replace").split())[:80] if title else ""
    return f": {text!r}" if text else ""


def _oai(name: str) -> str:
    return f"{{{OAI_NS}}}{name}"


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


def probe_opac(source: Source, url: str, session: requests.Session | None = None,
               timeout: float = 10) -> ProbeResult:
    """Does the member's OPAC answer its deep link for a sample record (any status below 400)?"""
    http = session or requests.Session()
    start = time.monotonic()
    try:
        response = http.get(url, timeout=timeout, allow_redirects=True, stream=True)
        response.close()
    except requests.RequestException as exc:
        return ProbeResult(source.id, False, f"{url}: {exc}", round((time.monotonic() - start) * 1000, 1))
    finally:
        if session is None:
            http.close()
    latency = round((time.monotonic() - start) * 1000, 1)
    if response.status_code >= 400:
        return ProbeResult(source.id, False, f"{url}: HTTP {response.status_code}", latency)
    return ProbeResult(source.id, True, f"{url}: HTTP {response.status_code}", latency)
