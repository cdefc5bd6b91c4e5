"""The protocol options of a member library: Z39.50 / SRU keys, the OAI-PMH response limits and the safety stop's.

They travel in ``Source.options`` to the harvester's clients as plain values;
this module checks their types and choices (and reads an ``ids`` file) when
``sources.yaml`` is loaded, so a harvest never starts with a typo in them.
"""
from __future__ import annotations

import codecs
from pathlib import Path
from typing import Callable

#: ``err(key, message)`` makes the ConfigError to raise (it knows the file and the source).
Err = Callable[[str, str], Exception]

#: The keys passed through to the clients in ``Source.options``.
OPTION_KEYS = ("syntax", "query", "record_schema", "database", "charset", "query_charset", "element_set", "user",
               "password_env", "batch_size", "pattern", "from", "sru_version", "incremental", "incremental_query",
               "ids", "lookup_query", "max_shrink", "max_deletions", "deadline", "max_page_mb")
Z3950_SYNTAXES = ("usmarc", "marc21", "unimarc", "xml")
SRU_VERSIONS = ("1.1", "1.2", "2.0")
INCREMENTAL_MODES = ("none", "modified", "year")
#: The OAI-PMH response limits and their defaults: seconds for one whole response (``timeout`` is per
#: read, so a member dripping a byte a second would never hit it) and megabytes one page may have.
RESPONSE_LIMITS = {"deadline": 120.0, "max_page_mb": 64.0}


def zoom_options(options: dict, protocol: str, path: Path, err: Err) -> None:
    """Validate the Z39.50 / SRU keys (types, choices, placeholders) in place."""
    if "syntax" in options:
        syntax = str(options["syntax"]).lower()
        if syntax not in Z3950_SYNTAXES:
            raise err("syntax", f"expected one of {', '.join(Z3950_SYNTAXES)}; got {options['syntax']!r}")
        options["syntax"] = "usmarc" if syntax == "marc21" else syntax
    query = options.get("query")
    if query is not None:
        if isinstance(query, str):
            query = [query]
        if not isinstance(query, list) or not query or not all(isinstance(q, str) and q.strip() for q in query):
            kind = "PQF" if protocol == "z3950" else "CQL"
            raise err("query", f"expected a {kind} query or a non-empty list of them")
    for key in ("charset", "query_charset"):
        if key in options:
            try:
                codecs.lookup(str(options[key]))
            except LookupError:
                raise err(key, f"unknown character set {options[key]!r} (e.g. gb2312, gbk, utf-8, "
                               "iso-8859-1)") from None
    if "batch_size" in options:
        value = options["batch_size"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
            raise err("batch_size", f"expected a whole number of records per present request, 1-10000; got {value!r}")
    if "sru_version" in options:
        version = str(options["sru_version"])
        if version not in SRU_VERSIONS:
            raise err("sru_version", f"expected one of {', '.join(SRU_VERSIONS)}; got {options['sru_version']!r}")
        options["sru_version"] = version
    if "incremental" in options and options["incremental"] not in INCREMENTAL_MODES:
        raise err("incremental", f"expected one of {', '.join(INCREMENTAL_MODES)}; got {options['incremental']!r}")
    if "incremental_query" in options:
        tq = options["incremental_query"]
        if not isinstance(tq, str) or not any(p in tq for p in ("{from}", "{from_iso}", "{from_full}", "{year}")):
            raise err("incremental_query", "expected a query template with {from} (yyyymmdd), {from_iso}, "
                                           "{from_full} (yyyymmddhhmmss) or {year}")
    if "lookup_query" in options and (not isinstance(options["lookup_query"], str)
                                      or "{id}" not in options["lookup_query"]):
        raise err("lookup_query", "expected a query template with {id}")
    if "ids" in options:
        ids = options["ids"]
        if isinstance(ids, str):
            ids_path = (path.parent / ids) if not Path(ids).is_absolute() else Path(ids)
            try:
                ids = [line.strip() for line in ids_path.read_text(encoding="utf-8").splitlines() if line.strip()]
            except OSError as exc:
                raise err("ids", f"cannot read the identifier list {str(ids_path)!r}: {exc.strerror}") from None
        if not isinstance(ids, list) or not ids:
            raise err("ids", "expected a list of identifiers or the path of a file with one per line")
        options["ids"] = [str(i) for i in ids]


def safety_options(options: dict, err: Err) -> None:
    """The safety stop's limits (every protocol; see harvester.safety): a fraction and a record count."""
    if "max_shrink" in options:
        value = options["max_shrink"]
        try:
            fraction = float(value.strip()[:-1]) / 100 if isinstance(value, str) and value.strip().endswith("%") \
                else float(value)
        except (TypeError, ValueError):
            fraction = -1.0
        if isinstance(value, bool) or not 0 <= fraction <= 1:
            raise err("max_shrink", f"expected a fraction 0-1 or a percentage such as '20%'; got {value!r}")
        options["max_shrink"] = fraction
    if "max_deletions" in options:
        value = options["max_deletions"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise err("max_deletions", f"expected a whole number of records ≥ 0; got {value!r}")


def response_limits(options: dict, err: Err) -> None:
    """The OAI-PMH response limits (``deadline``, ``max_page_mb``): positive numbers, defaults filled in."""
    for key, default in RESPONSE_LIMITS.items():
        value = options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            unit = "seconds for a whole response" if key == "deadline" else "megabytes per page"
            raise err(key, f"expected a number > 0 ({unit}); got {value!r}")
        options[key] = float(value)
