"""Loading and validating ``sources.yaml`` into the :mod:`consortium.config` model.

Every problem raises :class:`~consortium.config.ConfigError` naming the file,
the source and the key, and saying what was expected, because the person
reading it is editing a 130-member YAML file by hand.  Each ``_…`` helper
checks one group of a member's keys and returns plain values for ``Source``.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .config import ConfigError, Consortium, Group, Source, SourcesFile
from .opac import check_template
from .options import OPTION_KEYS, Err, response_limits, safety_options, zoom_options
from .presets import HOLDINGS_PRESETS, ILS_PRESETS, HoldingsMapping, IlsPreset, mapping
from .signon import parse_sign_on

PROTOCOLS = ("oai", "file", "z3950", "sru")
FORMATS = ("marc21", "unimarc", "cnmarc", "oai_dc", "auto")
FORMAT_ALIASES = {"marcxml": "marc21", "usmarc": "marc21", "marc": "marc21", "dc": "oai_dc"}
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
NAMED_SCHEDULES = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
INTERVAL = re.compile(r"^(\d+)\s*([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TOP_KEYS = {"consortium", "sources", "regions", "groups", "defaults"}


def unknown_key(key: str, allowed) -> str:
    """"did you mean `path`?" for a misspelt key; the whole list only when nothing is close.

    A 130-member file has ~45 possible keys per member: a list of all of them hides the one meant.
    """
    close = difflib.get_close_matches(str(key), sorted(allowed), n=2, cutoff=0.75)
    if close:
        return f"unknown key {key!r}: did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    return f"unknown key {key!r}; expected one of {', '.join(sorted(allowed))}"
HOLDING_KEYS = ("tag", "library", "location", "call_number", "barcode", "status", "note", "volume", "status_map")

SOURCE_KEYS = {
    "id", "name", "name_zh", "region", "protocol", "enabled", "ils", "format", "schedule",
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
    "holdings", "holdings_for", "opac_url", "opac_isbn_url", "opac_ids_stable", "ill_url",
    # reader services (see consortium/signon.py)
    "ill_params", "sign_on",
    # transport
    "timeout", "max_retries", "retry_after_max", "delay", "deadline", "max_page_mb",
}


class KeysOnce(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe subset, each key of a mapping once: PyYAML keeps the last of two equal keys silently (a
    second ``opac_url`` under one member would hide the first).  libyaml's parser where PyYAML has it: the
    same data as ``yaml.safe_load`` at an eighth of the CPU (130 members: 0.01 against 0.08 CPU-s)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise yaml.constructor.ConstructorError(None, None, f"key(s) {', '.join(twice)} given twice in one "
                                                    "mapping (the later would silently replace the first)",
                                                    node.start_mark)
        return super().construct_mapping(node, deep)


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
        data = yaml.load(text, Loader=KeysOnce)
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"not valid YAML: {exc}") from None
    return parse_sources(data, path)


def parse_sources(data: Any, path: Path | str = "sources.yaml") -> SourcesFile:
    """Validate already-parsed YAML (tests and the demo build it in code); ``path`` only names it in errors."""
    path = Path(path)
    if not isinstance(data, dict):
        raise ConfigError(path, "expected a mapping with the keys 'consortium' and 'sources'")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ConfigError(path, f"unknown top-level key(s) {sorted(unknown)}; "
                                + "; ".join(unknown_key(k, TOP_KEYS) for k in sorted(unknown)))
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
    _check_holdings_feeds(sources, path)
    regions, region_names_zh = _regions(data.get("regions"), sources, path)
    groups = _groups(data.get("groups"), seen, path)
    return SourcesFile(path=path, consortium=consortium, sources=tuple(sources), regions=regions, groups=groups,
                       region_names_zh=region_names_zh)


def _consortium(value: Any, path: Path) -> Consortium:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"].strip():
        raise ConfigError(path, "expected a mapping with at least a 'name'", key="consortium")
    allowed = {"name", "name_zh", "ill_url", "ask_url", "login_url", "ill_params", "base_url"}
    unknown = set(value) - allowed
    if unknown:
        raise ConfigError(path, f"unknown key(s) {sorted(unknown)}; "
                                + "; ".join(unknown_key(k, allowed) for k in sorted(unknown)), key="consortium")
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
                      ill_params={str(k): str(v) for k, v in params.items()},
                      name_zh=_name_zh(value, lambda m: ConfigError(path, m, key="consortium.name_zh")))


def _name_zh(entry: dict, err: Callable[[str], ConfigError]) -> str | None:
    """The optional Chinese name (``name_zh``): a non-empty string when given."""
    value = entry.get("name_zh")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise err(f"expected the Chinese name as text; got {value!r}")
    return value.strip()


def _source(entry: dict, path: Path, index: int) -> Source:
    """One member library from its entry (``defaults`` already merged in)."""
    sid = entry.get("id")
    if not isinstance(sid, str) or not ID_PATTERN.match(sid):
        raise ConfigError(path, f"entry {index + 1}: expected an id of lowercase letters, digits, '-', '_' "
                                f"or '.', at most 64 characters; got {sid!r}", key="id")

    def err(key: str, message: str) -> ConfigError:
        return ConfigError(path, message, source=sid, key=key)

    unknown = set(entry) - SOURCE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise err(key, unknown_key(key, SOURCE_KEYS))
    preset = None
    if entry.get("ils") is not None:
        preset = ILS_PRESETS.get(str(entry["ils"]).lower())
        if preset is None:
            raise err("ils", f"unknown ILS preset {entry['ils']!r}; expected one of {', '.join(sorted(ILS_PRESETS))}")
    name, region, protocol, fmt = _identity(entry, preset, err)
    url, file_path, base = _location(entry, protocol, preset, path, sid, err)
    options = _options(entry, protocol, preset, url, path, err)
    schedule, schedule_text = _schedule(entry.get("schedule"), err)
    return Source(
        id=sid, name=name, region=region, protocol=protocol, format=fmt, url=url, path=file_path,
        metadata_prefix=_metadata_prefix(entry, preset, fmt, err), set=_oai_set(entry, err),
        ils=preset.name if preset else None, **_links(entry, preset, base, path, sid, err),
        schedule=schedule, schedule_text=schedule_text, enabled=_flag(entry, "enabled", True, err),
        **_transport(entry, err), encoding=entry.get("encoding"), options=options,
        name_zh=_name_zh(entry, lambda m: err("name_zh", m)),
        holdings_for=_holdings_for(entry, sid, err),
    )


def _holdings_for(entry: dict, sid: str, err: Err) -> str | None:
    """``holdings_for``: the source id of the bibliographic records this holdings feed's MFHD belong to."""
    value = entry.get("holdings_for")
    if value is None:
        return None
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise err("holdings_for", f"expected the id of the source whose bibliographic records these holdings "
                                  f"records belong to; got {value!r}")
    if value == sid:
        raise err("holdings_for", "a source's own holdings records are linked to its bibliographic records "
                                  "already; name another source, or leave holdings_for out")
    return value


def _check_holdings_feeds(sources: list[Source], path: Path) -> None:
    """Every holdings feed names a source of this file that is not itself a holdings feed."""
    by_id = {s.id: s for s in sources}
    for s in sources:
        if s.holdings_for is None:
            continue
        target = by_id.get(s.holdings_for)
        if target is None:
            close = difflib.get_close_matches(s.holdings_for, sorted(by_id), n=1)
            raise ConfigError(path, f"no source {s.holdings_for!r} in this file"
                              + (f": did you mean `{close[0]}`?" if close else ""), source=s.id, key="holdings_for")
        if target.holdings_for is not None:
            raise ConfigError(path, f"{target.id!r} is a holdings feed itself (holdings_for: {target.holdings_for}); "
                                    "name the source that sends the bibliographic records", source=s.id,
                              key="holdings_for")


def _identity(entry: dict, preset: IlsPreset | None, err: Err) -> tuple[str, str, str, str]:
    """Name, region, protocol and record format (aliases resolved, the ILS preset's as default)."""
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
    return name.strip(), region.strip(), protocol, fmt


def _location(entry: dict, protocol: str, preset: IlsPreset | None, path: Path, sid: str,
              err: Err) -> tuple[str | None, Path | None, str | None]:
    """Where the member lives: its URL or file path, and ``base_url`` (for the preset's paths and templates)."""
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
    return url, file_path, base


def _links(entry: dict, preset: IlsPreset | None, base: str | None, path: Path, sid: str,
           err: Err) -> dict[str, Any]:
    """Holdings mappings, OPAC link templates, ILL and sign-on: the ``Source`` fields a reader sees."""
    stable = _flag(entry, "opac_ids_stable", preset.opac_ids_stable if preset else True, err)
    if entry.get("ill_url") is not None:
        _check_url(entry["ill_url"], path, sid, "ill_url")
    ill_params = entry.get("ill_params") or {}
    if not isinstance(ill_params, dict):
        raise err("ill_params", "expected a mapping of extra OpenURL parameters (e.g. {rfr_id: …, svc_id: …})")
    return dict(
        holdings=_holdings(entry.get("holdings", list(preset.holdings) if preset else []), err),
        opac_url=check_template(entry.get("opac_url", preset.opac_url if preset else None), base, "opac_url", err),
        opac_isbn_url=check_template(entry.get("opac_isbn_url", preset.opac_isbn_url if preset else None), base,
                                     "opac_isbn_url", err),
        opac_ids_stable=stable, ill_url=entry.get("ill_url"),
        ill_params={str(k): str(v) for k, v in ill_params.items()},
        sign_on=parse_sign_on(entry.get("sign_on"), err),
    )


def _flag(entry: dict, key: str, default: bool, err: Err) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise err(key, "expected true or false")
    return value


def _transport(entry: dict, err: Err) -> dict[str, float | int]:
    """Timeout, retries and politeness delay: numbers ≥ 0 (a YAML ``true`` is not a number here)."""
    numbers: dict[str, float | int] = {}
    for key, default in (("timeout", 60.0), ("max_retries", 5), ("retry_after_max", 600.0), ("delay", 0.0)):
        value = entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise err(key, f"expected a number ≥ 0; got {value!r}")
        numbers[key] = int(value) if key == "max_retries" else float(value)
    return numbers


def _metadata_prefix(entry: dict, preset: IlsPreset | None, fmt: str, err: Err) -> str:
    prefix = entry.get("metadata_prefix", preset.metadata_prefix if preset and preset.metadata_prefix else
                       ("oai_dc" if fmt == "oai_dc" else "marc21"))
    if not isinstance(prefix, str) or not prefix:
        raise err("metadata_prefix", "expected an OAI-PMH metadataPrefix such as marc21, marcxml or oai_dc")
    return prefix


def _oai_set(entry: dict, err: Err) -> str | None:
    oai_set = entry.get("set")
    if oai_set is not None and not isinstance(oai_set, str):
        raise err("set", "expected an OAI-PMH setSpec string")
    return oai_set


def _options(entry: dict, protocol: str, preset: IlsPreset | None, url: str | None, path: Path,
             err: Err) -> dict[str, Any]:
    """The protocol options for the harvester's clients, validated, with the ILS preset's database and charset."""
    options = {k: entry[k] for k in OPTION_KEYS if k in entry}
    safety_options(options, err)
    if protocol == "oai":
        response_limits(options, err)
    if preset:
        for key in ("database", "charset"):
            if key == "database" and url and urlsplit(str(url)).path.strip("/"):
                continue  # the URL names its database: it wins over the preset's usual one
            if getattr(preset, key) and key not in options:
                options[key] = getattr(preset, key)
    if protocol in ("z3950", "sru"):
        zoom_options(options, protocol, path, err)
    return options


def _holdings(value: Any, err: Err) -> tuple[HoldingsMapping, ...]:
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


def _schedule(value: Any, err: Err) -> tuple[timedelta | None, str | None]:
    if value is None:
        return None, None
    text = str(value).strip().lower()
    if text in NAMED_SCHEDULES:
        return NAMED_SCHEDULES[text], text
    match = INTERVAL.match(text)
    if match and int(match.group(1)) > 0:
        return timedelta(**{UNITS[match.group(2)]: int(match.group(1))}), text
    raise err("schedule", f"expected hourly, daily, weekly or an interval such as 6h, 30m, 2d; got {value!r}")


def _regions(value: Any, sources: list[Source], path: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    """The region names (each a name, or ``{name, name_zh}``) and their Chinese names."""
    used = list(dict.fromkeys(s.region for s in sources))
    if value is None:
        return tuple(used), {}
    if not isinstance(value, list):
        raise ConfigError(path, "expected a list of region names (or {name, name_zh} mappings)", key="regions")
    names, names_zh = [], {}
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and set(item) <= {"name", "name_zh"}:
            zh = _name_zh(item, lambda m: ConfigError(path, m, key=f"regions.{item['name']}.name_zh"))
            names.append(item["name"])
            if zh:
                names_zh[item["name"]] = zh
        elif isinstance(item, str):
            names.append(item)
        else:
            raise ConfigError(path, f"expected a region name or {{name, name_zh}}; got {item!r}", key="regions")
    for src in sources:
        if src.region not in names:
            raise ConfigError(path, f"region {src.region!r} is not in the top-level 'regions' list "
                                    f"({', '.join(names)})", source=src.id, key="region")
    return tuple(names), names_zh


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
        zh = _name_zh(item, lambda m: ConfigError(path, m, key=f"groups.{item['id']}.name_zh"))
        groups.append(Group(id=item["id"], name=str(item.get("name", item["id"])), members=tuple(item["members"]),
                            name_zh=zh))
    return tuple(groups)


def _check_url(value: Any, path: Path, source: str | None, key: str) -> None:
    parts = urlsplit(str(value))
    if not isinstance(value, str) or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(path, f"expected an http(s) URL; got {value!r}", source=source, key=key)
