"""Loading and validating ``sources.yaml``, the consortium file.

The file names the consortium and its services (ILL, sign-on, ask a
librarian), its regions and groups of libraries, and every member library:
how to reach it, what it sends and how to link back into its OPAC.  Errors
name the file, the source and the key, and say what was expected, because the
person reading them is editing a 130-member YAML file by hand.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

from .presets import HOLDINGS_PRESETS, ILS_PRESETS, HoldingsMapping, mapping
from .signon import SignOn, parse_sign_on

PROTOCOLS = ("oai", "file", "z3950", "sru")
FORMATS = ("marc21", "unimarc", "cnmarc", "oai_dc", "auto")
FORMAT_ALIASES = {"marcxml": "marc21", "usmarc": "marc21", "marc": "marc21", "dc": "oai_dc"}
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
NAMED_SCHEDULES = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
INTERVAL = re.compile(r"^(\d+)\s*([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
HOLDING_KEYS = ("tag", "library", "location", "call_number", "barcode", "status", "note", "volume", "status_map")

SOURCE_KEYS = {
    "id", "name", "region", "protocol", "enabled", "ils", "format", "schedule",
    # where it lives
    "url", "path", "base_url",
    # OAI-PMH
    "metadata_prefix", "set", "from",
    # Z39.50 / SRU (through YAZ's ZOOM API; see docs/sources.md)
    "syntax", "query", "record_schema", "database", "charset", "query_charset", "element_set",
    "user", "password_env", "batch_size", "sru_version", "incremental", "incremental_query", "ids",
    "lookup_query", "max_shrink", "max_deletions",
    # files
    "encoding", "pattern",
    # holdings and links
    "holdings", "opac_url", "opac_isbn_url", "opac_ids_stable", "ill_url",
    # reader services (see harvester/signon.py)
    "ill_params", "sign_on",
    # transport
    "timeout", "max_retries", "retry_after_max", "delay",
}


class ConfigError(ValueError):
    """``sources.yaml`` is wrong; the message says where and what was expected."""

    def __init__(self, file: Path | str, message: str, source: str | None = None, key: str | None = None):
        self.file, self.source, self.key = str(file), source, key
        where = [self.file]
        if source is not None:
            where.append(f"source {source!r}")
        if key is not None:
            where.append(f"key {key!r}")
        super().__init__(f"{': '.join(where)}: {message}")


@dataclass(frozen=True)
class Consortium:
    name: str
    ill_url: str | None = None
    ask_url: str | None = None
    login_url: str | None = None
    ill_params: dict[str, str] = field(default_factory=dict)
    base_url: str | None = None


@dataclass(frozen=True)
class Group:
    """A named group of libraries (e.g. a teaching consortium) for scoped search."""

    id: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """One member library and how to harvest it."""

    id: str
    name: str
    region: str
    protocol: str
    format: str = "auto"   # unsaid: the normaliser tells MARC 21 from UNIMARC/CNMARC per record
    url: str | None = None
    path: Path | None = None
    metadata_prefix: str = "marc21"
    set: str | None = None
    ils: str | None = None
    holdings: tuple[HoldingsMapping, ...] = ()
    opac_url: str | None = None
    opac_isbn_url: str | None = None
    opac_ids_stable: bool = True
    ill_url: str | None = None
    #: extra OpenURL parameters for this member's ILL requests (over the consortium's ``ill_params``)
    ill_params: dict[str, str] = field(default_factory=dict)
    #: how this member's readers sign on (OpenID Connect or CAS), or None
    sign_on: SignOn | None = None
    schedule: timedelta | None = None
    schedule_text: str | None = None
    enabled: bool = True
    timeout: float = 60.0
    max_retries: int = 5
    retry_after_max: float = 600.0
    delay: float = 0.0
    encoding: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def opac_link(self, local_id: str | None = None, isbn: str | None = None,
                  control_number: str | None = None) -> str | None:
        """A deep link into this member's OPAC for one record, or None.

        Where the ILS's record ids are not stable (Huiwen's ``marc_no``), or
        there is no record template, an ISBN search is the link that keeps
        working; otherwise the record page.
        """
        values = {
            "local_id": quote(opac_id(local_id or ""), safe=""),
            "oai_id": quote(local_id or "", safe=""),
            "isbn": quote(isbn or "", safe=""),
            "control_number": quote(control_number or "", safe=""),
        }
        if isbn and self.opac_isbn_url and (not self.opac_ids_stable or not self.opac_url):
            return self.opac_isbn_url.format(**values)
        if self.opac_url and local_id:
            # An unstable id without an ISBN: the record link is the best we have.
            return self.opac_url.format(**values)
        return None


@dataclass(frozen=True)
class SourcesFile:
    """The whole consortium file, validated."""

    path: Path
    consortium: Consortium
    sources: tuple[Source, ...]
    regions: tuple[str, ...]
    groups: tuple[Group, ...] = ()

    def source(self, source_id: str) -> Source:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(source_id)

    def by_id(self) -> dict[str, Source]:
        return {s.id: s for s in self.sources}


def opac_id(local_id: str) -> str:
    """The member's own record id inside a harvested identifier.

    OAI identifiers wrap it (``oai:koha.example.org:123`` → ``123``,
    ``oai:host:tenant/uuid`` → ``uuid``); file records use their 001 as is.
    """
    if local_id.startswith("oai:"):
        return re.split(r"[:/]", local_id)[-1]
    return local_id


def load_sources(path: Path | str) -> SourcesFile:
    """Read and validate ``sources.yaml``; raise :class:`ConfigError` on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "file not found (give --sources FILE or set UNIONCAT_SOURCES)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"not valid YAML: {exc}") from None
    return parse_sources(data, path)


def parse_sources(data: Any, path: Path | str = "sources.yaml") -> SourcesFile:
    path = Path(path)
    if not isinstance(data, dict):
        raise ConfigError(path, "expected a mapping with the keys 'consortium' and 'sources'")
    unknown = set(data) - {"consortium", "sources", "regions", "groups", "defaults"}
    if unknown:
        raise ConfigError(path, f"unknown top-level key(s) {sorted(unknown)}; expected consortium, "
                                "sources, regions, groups, defaults")
    consortium = _consortium(data.get("consortium"), path)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(path, "expected a mapping of source keys", key="defaults")
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(path, "expected a non-empty list of member libraries", key="sources")
    sources, seen = [], set()
    for i, entry in enumerate(raw_sources):
        if not isinstance(entry, dict):
            raise ConfigError(path, f"entry {i + 1} is not a mapping", key="sources")
        merged = {**defaults, **entry}
        src = _source(merged, path, i)
        if src.id in seen:
            raise ConfigError(path, "duplicate source id; every member needs its own", source=src.id, key="id")
        seen.add(src.id)
        sources.append(src)
    regions = _regions(data.get("regions"), sources, path)
    groups = _groups(data.get("groups"), seen, path)
    return SourcesFile(path=path, consortium=consortium, sources=tuple(sources), regions=regions, groups=groups)


def _consortium(value: Any, path: Path) -> Consortium:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"].strip():
        raise ConfigError(path, "expected a mapping with at least a 'name'", key="consortium")
    allowed = {"name", "ill_url", "ask_url", "login_url", "ill_params", "base_url"}
    unknown = set(value) - allowed
    if unknown:
        raise ConfigError(path, f"unknown key(s) {sorted(unknown)}; expected {sorted(allowed)}", key="consortium")
    for key in ("ill_url", "login_url", "base_url"):
        if value.get(key) is not None:
            _check_url(value[key], path, None, f"consortium.{key}")
    if value.get("ask_url") is not None:
        _check_url(value["ask_url"].replace("{citation}", "x"), path, None, "consortium.ask_url")
    params = value.get("ill_params") or {}
    if not isinstance(params, dict):
        raise ConfigError(path, "expected a mapping of extra OpenURL parameters", key="consortium.ill_params")
    return Consortium(name=value["name"].strip(), ill_url=value.get("ill_url"), ask_url=value.get("ask_url"),
                      login_url=value.get("login_url"), base_url=value.get("base_url"),
                      ill_params={str(k): str(v) for k, v in params.items()})


def _source(entry: dict, path: Path, index: int) -> Source:
    sid = entry.get("id")
    if not isinstance(sid, str) or not ID_PATTERN.match(sid):
        raise ConfigError(path, f"entry {index + 1}: expected an id of lowercase letters, digits, '-', '_' "
                                f"or '.', at most 64 characters; got {sid!r}", key="id")

    def err(key: str, message: str) -> ConfigError:
        return ConfigError(path, message, source=sid, key=key)

    unknown = set(entry) - SOURCE_KEYS
    if unknown:
        raise err(sorted(unknown)[0], f"unknown key; expected one of {', '.join(sorted(SOURCE_KEYS))}")
    preset = None
    if entry.get("ils") is not None:
        preset = ILS_PRESETS.get(str(entry["ils"]).lower())
        if preset is None:
            raise err("ils", f"unknown ILS preset {entry['ils']!r}; expected one of {', '.join(sorted(ILS_PRESETS))}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise err("name", "expected the library's display name")
    region = entry.get("region")
    if not isinstance(region, str) or not region.strip():
        raise err("region", "expected the region the library belongs to (used for facets and availability)")
    protocol = entry.get("protocol", preset.protocol if preset else None)
    if protocol not in PROTOCOLS:
        raise err("protocol", f"expected one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    fmt = str(entry.get("format", preset.format if preset else "auto")).lower()
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise err("format", f"expected one of {', '.join(FORMATS)} (or marcxml, usmarc); got {entry['format']!r}")
    base = entry.get("base_url")
    if base is not None:
        _check_url(base, path, sid, "base_url")
        base = base.rstrip("/")

    url, file_path = entry.get("url"), None
    if protocol == "oai":
        if url is None and base and preset and preset.oai_path:
            url = base + preset.oai_path
        if url is None:
            raise err("url", "an OAI-PMH source needs the base URL of its repository, "
                             "e.g. https://koha.example.edu.cn/cgi-bin/koha/oai.pl")
        _check_url(url, path, sid, "url")
    elif protocol == "file":
        if not isinstance(entry.get("path"), str) or not entry["path"]:
            raise err("path", "a file source needs the path of an ISO 2709 or MARCXML file or folder "
                              "(relative paths are relative to sources.yaml)")
        file_path = (path.parent / entry["path"]).resolve() if not Path(entry["path"]).is_absolute() \
            else Path(entry["path"])
    else:
        if url is None:
            example = "z3950://127.0.0.1:9210/Default" if protocol == "z3950" else "http://127.0.0.1:9210/Default"
            raise err("url", f"a {protocol} source needs its address, e.g. {example}")
        scheme = urlsplit(str(url)).scheme
        allowed = ("z3950", "tcp") if protocol == "z3950" else ("http", "https")
        if scheme not in allowed:
            raise err("url", f"expected a {'/'.join(allowed)} URL; got {url!r}")

    holdings = _holdings(entry.get("holdings", list(preset.holdings) if preset else []), err)
    opac_url = _template(entry.get("opac_url", preset.opac_url if preset else None), base, "opac_url", err)
    opac_isbn_url = _template(entry.get("opac_isbn_url", preset.opac_isbn_url if preset else None), base,
                              "opac_isbn_url", err)
    stable = entry.get("opac_ids_stable", preset.opac_ids_stable if preset else True)
    if not isinstance(stable, bool):
        raise err("opac_ids_stable", "expected true or false")
    schedule, schedule_text = _schedule(entry.get("schedule"), err)
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise err("enabled", "expected true or false")
    numbers = {}
    for key, default in (("timeout", 60.0), ("max_retries", 5), ("retry_after_max", 600.0), ("delay", 0.0)):
        value = entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise err(key, f"expected a number ≥ 0; got {value!r}")
        numbers[key] = value
    prefix = entry.get("metadata_prefix", preset.metadata_prefix if preset and preset.metadata_prefix else
                       ("oai_dc" if fmt == "oai_dc" else "marc21"))
    if not isinstance(prefix, str) or not prefix:
        raise err("metadata_prefix", "expected an OAI-PMH metadataPrefix such as marc21, marcxml or oai_dc")
    oai_set = entry.get("set")
    if oai_set is not None and not isinstance(oai_set, str):
        raise err("set", "expected an OAI-PMH setSpec string")
    if entry.get("ill_url") is not None:
        _check_url(entry["ill_url"], path, sid, "ill_url")
    ill_params = entry.get("ill_params") or {}
    if not isinstance(ill_params, dict):
        raise err("ill_params", "expected a mapping of extra OpenURL parameters (e.g. {rfr_id: …, svc_id: …})")
    sign_on = parse_sign_on(entry.get("sign_on"), err)
    options = {k: entry[k] for k in ("syntax", "query", "record_schema", "database", "charset", "query_charset",
                                     "element_set", "user", "password_env", "batch_size", "pattern", "from",
                                     "sru_version", "incremental", "incremental_query", "ids", "lookup_query",
                                     "max_shrink", "max_deletions")
               if k in entry}
    _safety_options(options, err)
    if preset:
        for key in ("database", "charset"):
            if key == "database" and url and urlsplit(str(url)).path.strip("/"):
                continue  # the URL names its database: it wins over the preset's usual one
            if getattr(preset, key) and key not in options:
                options[key] = getattr(preset, key)
    if protocol in ("z3950", "sru"):
        _zoom_options(options, protocol, file_path, path, err)
    return Source(
        id=sid, name=name.strip(), region=region.strip(), protocol=protocol, format=fmt, url=url, path=file_path,
        metadata_prefix=prefix, set=oai_set, ils=preset.name if preset else None, holdings=holdings,
        opac_url=opac_url, opac_isbn_url=opac_isbn_url, opac_ids_stable=stable, ill_url=entry.get("ill_url"),
        ill_params={str(k): str(v) for k, v in ill_params.items()}, sign_on=sign_on,
        schedule=schedule, schedule_text=schedule_text, enabled=enabled, timeout=float(numbers["timeout"]),
        max_retries=int(numbers["max_retries"]), retry_after_max=float(numbers["retry_after_max"]),
        delay=float(numbers["delay"]), encoding=entry.get("encoding"), options=options,
    )


Z3950_SYNTAXES = ("usmarc", "marc21", "unimarc", "xml")
SRU_VERSIONS = ("1.1", "1.2", "2.0")
INCREMENTAL_MODES = ("none", "modified", "year")


def _zoom_options(options: dict, protocol: str, file_path, path: Path, err) -> None:
    """Validate the Z39.50 / SRU keys (types, choices, placeholders) in place."""
    import codecs

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


def _safety_options(options: dict, err) -> None:
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


def _holdings(value: Any, err) -> tuple[HoldingsMapping, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            if item not in HOLDINGS_PRESETS:
                raise err("holdings", f"unknown holdings preset {item!r}; expected one of "
                                      f"{', '.join(sorted(HOLDINGS_PRESETS))} or a mapping with a 'tag'")
            out.append(HOLDINGS_PRESETS[item])
        elif isinstance(item, dict):
            unknown = set(item) - set(HOLDING_KEYS) - {"preset"}
            if unknown:
                raise err("holdings", f"unknown key(s) {sorted(unknown)}; expected {', '.join(HOLDING_KEYS)}")
            base = {}
            if "preset" in item:
                if item["preset"] not in HOLDINGS_PRESETS:
                    raise err("holdings", f"unknown holdings preset {item['preset']!r}")
                base = HOLDINGS_PRESETS[item["preset"]].as_dict()
            merged = {**base, **{k: v for k, v in item.items() if k != "preset"}}
            tag = str(merged.get("tag", ""))
            if not re.fullmatch(r"[0-9A-Za-z]{3}", tag):
                raise err("holdings", f"expected a three-character MARC tag such as 852, 952 or AVA; got {tag!r}")
            codes = {}
            for key in HOLDING_KEYS[1:-1]:
                if merged.get(key) is not None:
                    code = str(merged[key])
                    if not re.fullmatch(r"[0-9a-z]+", code):
                        raise err("holdings", f"{key}: expected subfield code(s) such as 'p' or 'hi'; got {code!r}")
                    codes[key] = code
            status_map = merged.get("status_map") or {}
            if not isinstance(status_map, dict):
                raise err("holdings", "status_map: expected a mapping of code to status text")
            out.append(mapping(tag, status_map={str(k): str(v) for k, v in status_map.items()}, **codes))
        else:
            raise err("holdings", f"expected a preset name or a mapping; got {item!r}")
    return tuple(out)


def _template(value: Any, base: str | None, key: str, err) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise err(key, "expected a URL template string")
    if "{base}" in value:
        if not base:
            raise err(key, "the template uses {base}; set base_url on this source")
        value = value.replace("{base}", base)
    try:
        value.format(local_id="1", oai_id="1", isbn="1", control_number="1")
    except (KeyError, IndexError, ValueError) as exc:
        raise err(key, f"bad placeholder {exc}; templates may use {{local_id}}, {{oai_id}}, {{isbn}}, "
                       "{control_number} and {base}") from None
    if not value.startswith(("http://", "https://")):
        raise err(key, f"expected an http(s) URL template; got {value!r}")
    return value


def _schedule(value: Any, err) -> tuple[timedelta | None, str | None]:
    if value is None:
        return None, None
    text = str(value).strip().lower()
    if text in NAMED_SCHEDULES:
        return NAMED_SCHEDULES[text], text
    match = INTERVAL.match(text)
    if match and int(match.group(1)) > 0:
        return timedelta(**{UNITS[match.group(2)]: int(match.group(1))}), text
    raise err("schedule", f"expected hourly, daily, weekly or an interval such as 6h, 30m, 2d; got {value!r}")


def _regions(value: Any, sources: list[Source], path: Path) -> tuple[str, ...]:
    used = list(dict.fromkeys(s.region for s in sources))
    if value is None:
        return tuple(used)
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ConfigError(path, "expected a list of region names", key="regions")
    for src in sources:
        if src.region not in value:
            raise ConfigError(path, f"region {src.region!r} is not in the top-level 'regions' list "
                                    f"({', '.join(value)})", source=src.id, key="region")
    return tuple(value)


def _groups(value: Any, ids: set[str], path: Path) -> tuple[Group, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(path, "expected a list of {id, name, members}", key="groups")
    groups = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not isinstance(item.get("members"), list):
            raise ConfigError(path, f"expected {{id, name, members: [source ids]}}; got {item!r}", key="groups")
        missing = [m for m in item["members"] if m not in ids]
        if missing:
            raise ConfigError(path, f"group {item['id']!r} names unknown source(s) {missing}", key="groups")
        groups.append(Group(id=item["id"], name=str(item.get("name", item["id"])), members=tuple(item["members"])))
    return tuple(groups)


def _check_url(value: Any, path: Path, source: str | None, key: str) -> None:
    parts = urlsplit(str(value))
    if not isinstance(value, str) or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(path, f"expected an http(s) URL; got {value!r}", source=source, key=key)
