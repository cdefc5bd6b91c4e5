"""What a Z39.50 or SRU member's keys mean: the connection, the queries of a run, the records' ids.

Z39.50 has no "list everything" verb and no deletion feed, so a harvest is a series of searches:

* **full** — the source's ``query`` (one PQF query, or a list of them, e.g. by year ranges or class
  letters, to stay under a server's result-set limit; CQL for SRU), every hit fetched with batched
  present requests of ``batch_size``;
* **incremental** — ``incremental: modified`` (Bib-1 1012 ≥ the high water, the newest 005 seen)
  or ``incremental: year`` (date of publication ≥ the high-water year), or an own
  ``incremental_query`` template with ``{from}`` (yyyymmdd), ``{from_iso}`` (yyyy-mm-dd),
  ``{from_full}`` (yyyymmddhhmmss) or ``{year}``;
* **lookup** — ``ids``: a list of identifiers, each searched with ``lookup_query`` (``{id}``).

Kept apart from the harvest itself (:mod:`harvester.protocols.z3950`) so a probe can connect and
search without running anything.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from consortium.config import Source
from ..clients.zoom import Connection, Record, ZoomError
from ..raw import QuarantinedItem, RawRecord

DEFAULT_QUERY = {"z3950": '@attr 1=_ALLRECORDS @attr 2=103 ""', "sru": "cql.allRecords=1"}
INCREMENTAL = {
    "z3950": {"modified": "@attr 1=1012 @attr 2=4 @attr 4=109 {from}",
              "year": "@attr 1=31 @attr 2=4 @attr 4=109 {year}"},
    "sru": {"modified": "rec.lastModificationDate>={from_iso}", "year": "dc.date>={year}"},
}
LOOKUP = {"z3950": '@attr 1=12 "{id}"', "sru": 'rec.id="{id}"'}
DEFAULT_BATCH = 100
XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>\s*")
CONTROL_001 = re.compile(rb'<(?:\w+:)?controlfield[^>]*\btag="001"[^>]*>([^<]*)<')
CONTROL_005 = re.compile(rb'<(?:\w+:)?controlfield[^>]*\btag="005"[^>]*>([^<]*)<')


@dataclass
class Plan:
    """What one run searches for: its kind, its queries, and whether they are CQL (SRU)."""

    kind: str  # full | incremental | lookup
    queries: list[str]
    cql: bool


def queries_for(source: Source) -> list[str]:
    """The source's full-harvest queries (``query``: one or a list; everything by default)."""
    value = source.options.get("query", DEFAULT_QUERY[source.protocol])
    return [value] if isinstance(value, str) else [str(q) for q in value]


def plan(source: Source, full: bool, high_water: str | None) -> Plan:
    """What a run searches for: the full queries, the incremental one, or one lookup per id."""
    cql = source.protocol == "sru"
    opts = source.options
    ids = opts.get("ids")
    if ids:
        template = opts.get("lookup_query", LOOKUP[source.protocol])
        return Plan("lookup", [template.replace("{id}", _escape(str(i))) for i in ids], cql)
    mode = opts.get("incremental", "none")
    template = opts.get("incremental_query") or INCREMENTAL[source.protocol].get(mode)
    if full or not template or not high_water or mode == "none" and not opts.get("incremental_query"):
        return Plan("full", queries_for(source), cql)
    hw = (high_water + "0" * 14)[:14]
    values = {"from": hw[:8], "from_iso": f"{hw[:4]}-{hw[4:6]}-{hw[6:8]}", "from_full": hw, "year": hw[:4]}
    query = template
    for key, value in values.items():
        query = query.replace("{" + key + "}", value)
    return Plan("incremental", [query], cql)


def _escape(value: str) -> str:
    """An id made safe inside a quoted term (PQF and CQL escape quotes and backslashes alike)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def connect(source: Source, env: Mapping[str, str] | None = None, timeout: float | None = None) -> Connection:
    """A ZOOM connection set up from the source's keys (raises :class:`ZoomError` / ``YazMissing``)."""
    opts = source.options
    password = None
    if opts.get("password_env"):
        password = (env or {}).get(opts["password_env"])
        if password is None:
            raise ZoomError(0, f"password_env {opts['password_env']!r} is not set in the harvester's "
                               "environment", diagset="unioncat")
    syntax = opts.get("syntax") or ("unimarc" if source.format in ("unimarc", "cnmarc") else "usmarc")
    return Connection(
        source.url, database=opts.get("database"), syntax="xml" if source.protocol == "sru" else syntax,
        element_set=opts.get("element_set"), charset=opts.get("charset"),
        query_charset=opts.get("query_charset", opts.get("charset")),
        user=opts.get("user"), password=password, timeout=source.timeout if timeout is None else timeout,
        batch_size=int(opts.get("batch_size", DEFAULT_BATCH)),
        sru=opts.get("sru", "get") if source.protocol == "sru" else None,
        sru_version=str(opts["sru_version"]) if opts.get("sru_version") else None,
        record_schema=opts.get("record_schema", "marcxml") if source.protocol == "sru" else None,
    )


# -- records ---------------------------------------------------------------------------
def iso2709_field(data: bytes, tag: bytes) -> bytes | None:
    """The value of control field ``tag`` of an ISO 2709 record (no decoding), or None."""
    try:
        base = int(data[12:17])
        directory = data[24:base - 1]
        for i in range(0, len(directory) - 11, 12):
            if directory[i:i + 3] == tag:
                length, start = int(directory[i + 3:i + 7]), int(directory[i + 7:i + 12])
                return data[base + start:base + start + length].rstrip(b"\x1e\x1d")
    except ValueError:
        return None
    return None


def to_raw(source: Source, rec: Record) -> RawRecord | QuarantinedItem:
    """One retrieved record as a :class:`RawRecord` (its id from 001, its datestamp from 005), or why not."""
    data = rec.data
    if rec.syntax == "xml" or source.protocol == "sru":
        data = XML_DECL.sub(b"", data, count=1)
        m = CONTROL_001.search(data)
        local_id = m.group(1).strip() if m else None
        m5 = CONTROL_005.search(data)
        stamp = m5.group(1).strip() if m5 else None
        syntax = "marcxml"
    else:
        if len(data) < 25 or not data[:5].isdigit():
            return QuarantinedItem(source.id, None, f"hit {rec.position}: not an ISO 2709 record", data)
        local_id = iso2709_field(data, b"001")
        local_id = local_id.strip() if local_id else None
        stamp = iso2709_field(data, b"005")
        syntax = "iso2709"
    if not local_id:
        return QuarantinedItem(source.id, None, f"hit {rec.position}: no 001 (record id)", data)
    try:
        text_id = local_id.decode("utf-8")
    except UnicodeDecodeError:
        text_id = local_id.decode("latin-1")
    datestamp = stamp.decode("ascii", "replace").strip()[:32] if stamp else None
    return RawRecord(source=source.id, local_id=text_id[:255], payload=data, syntax=syntax, format=source.format,
                     datestamp=datestamp)


def stamp14(value: str | None) -> str | None:
    """A 005 (or any datestamp) as yyyymmddhhmmss, the high water's form; None without a full date."""
    digits = re.sub(r"\D", "", value or "")[:14]
    return digits.ljust(14, "0") if len(digits) >= 8 else None


