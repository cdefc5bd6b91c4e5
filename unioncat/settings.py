"""Settings, merged once: defaults < ``UNIONCAT_*`` environment < command-line flags.

Library packages never read the environment; they get what they need from
this object, passed in as arguments (as datasette and scrapy do).

Every setting is one row of :data:`SETTINGS`: its default, its environment
variable and what it means.  The :class:`Settings` defaults, the parsing of
the environment and the README check (``tests/test_docs.py``) all read that
table, so a setting is added in one place.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """One setting: ``default`` is a value, or a function giving it (computed per :class:`Settings`).

    The default's type says how the environment's text is read (a ``None``
    default means text); ``secret`` values are never logged.
    """

    name: str
    default: Any
    env: str
    help: str
    secret: bool = False

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def parse(self, value: Any) -> Any:
        """The environment's (or a flag's) value as this setting's type; ValueError names the variable."""
        kind = type(self.default_value())
        if kind is bool:
            return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")
        if kind is int:
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"{self.env}: expected a whole number, got {value!r}") from None
        if issubclass(kind, Path):
            return Path(value).expanduser()
        return value


def _user_cache() -> Path:
    return Path.home() / ".cache" / "unioncat"


#: Every setting, in the order the README lists them (docs are tested against this).
SETTINGS: tuple[Setting, ...] = (
    Setting("sources_path", Path("sources.yaml"), "UNIONCAT_SOURCES", "the consortium file (default ./sources.yaml)"),
    Setting("data_dir", Path("var"), "UNIONCAT_DATA", "where the database, index and logs live (default ./var)"),
    Setting("db_url", None, "UNIONCAT_DB", "SQLAlchemy URL of the stores (default SQLite in the data folder)"),
    Setting("search", "embedded", "UNIONCAT_SEARCH",
            "'embedded' (default) or an Elasticsearch URL such as http://127.0.0.1:9200"),
    Setting("es_index", "unioncat", "UNIONCAT_ES_INDEX",
            "Elasticsearch alias the catalogue is searched through (default unioncat)"),
    Setting("es_shards", 1, "UNIONCAT_ES_SHARDS", "primary shards of a new Elasticsearch index (default 1)"),
    Setting("es_replicas", 0, "UNIONCAT_ES_REPLICAS", "replicas of a new Elasticsearch index (default 0)"),
    Setting("redis_url", None, "UNIONCAT_REDIS", "Redis URL for distributed jobs (unset: jobs run in-process)"),
    Setting("cache_dir", _user_cache, "UNIONCAT_CACHE",
            "download cache for the LoC sample records (default ~/.cache/unioncat)"),
    Setting("secret_key", None, "UNIONCAT_SECRET_KEY", "Flask session key (default: a random key per process)",
            secret=True),
    Setting("staff_password", None, "UNIONCAT_STAFF_PASSWORD",
            "password of the built-in admin staff account (unset: stored accounts only)", secret=True),
    Setting("harvest_workers", 4, "UNIONCAT_HARVEST_WORKERS", "sources harvested at once (default 4)"),
    Setting("max_block", 500, "UNIONCAT_MAX_BLOCK",
            "records one match key may join and still be compared all-pairs (default 500; see UNIONCAT_BLOCK_WINDOW)"),
    Setting("dedupe_workers", 0, "UNIONCAT_DEDUPE_WORKERS",
            "worker processes of a dedupe pass: its scoring, and with 100,000 changed records or more its "
            "staging, scoring and merging as partitions (default 0: one per core; 1: all in the build's own process)"),
    Setting("dedupe_partitions", 0, "UNIONCAT_DEDUPE_PARTITIONS",
            "with UNIONCAT_REDIS: rq jobs a dedupe pass's staging (a full pass), scoring and merging are cut "
            "into, taken by any worker (default 0: the pass runs in its one job)"),
    Setting("block_window", 30, "UNIONCAT_BLOCK_WINDOW",
            "compare each record of a block over UNIONCAT_MAX_BLOCK with the next this many in title order "
            "(default 30; 0 refuses such a block: no pair in it is compared)"),
    Setting("smtp_host", None, "UNIONCAT_SMTP_HOST",
            "mail server for harvest alerts (unset: alerts only on the staff page)"),
    Setting("smtp_port", 25, "UNIONCAT_SMTP_PORT", "its port (default 25)"),
    Setting("smtp_user", None, "UNIONCAT_SMTP_USER", "SMTP login name (unset: no login)"),
    Setting("smtp_password", None, "UNIONCAT_SMTP_PASSWORD", "SMTP password", secret=True),
    Setting("smtp_starttls", False, "UNIONCAT_SMTP_STARTTLS",
            "1 to upgrade the connection with STARTTLS (default off)"),
    Setting("smtp_from", "unioncat@localhost", "UNIONCAT_SMTP_FROM",
            "sender address of alert mails (default unioncat@localhost)"),
    Setting("alert_to", None, "UNIONCAT_ALERT_TO", "comma-separated addresses that get harvest alerts"),
    Setting("alert_failures", 3, "UNIONCAT_ALERT_FAILURES",
            "failed harvests in a row that raise an alert (default 3)"),
    Setting("api_keys", None, "UNIONCAT_API_KEYS",
            "comma-separated API keys (or sha256:<hex> digests) for /api/v1 bulk use and exports "
            "(unset: anonymous, rate-limited use only)", secret=True),
    Setting("cors_origins", None, "UNIONCAT_CORS_ORIGINS",
            "comma-separated origins (portals) allowed to call /api/v1 from a browser (unset: none)"),
    Setting("admin_email", None, "UNIONCAT_ADMIN_EMAIL",
            "contact address the OAI-PMH Identify response gives (default catalogue@example.org)"),
    Setting("base_url", None, "UNIONCAT_BASE_URL",
            "the catalogue's public address, used for every absolute URL it writes (default: the consortium's "
            "base_url in sources.yaml; unset: the request's Host, if trusted)"),
    Setting("trusted_hosts", None, "UNIONCAT_TRUSTED_HOSTS",
            "comma-separated host names answered when no base URL is set (default: loopback names only)"),
    Setting("trusted_proxies", 0, "UNIONCAT_TRUSTED_PROXIES",
            "reverse proxies in front of the web app whose X-Forwarded-For/-Proto are believed (default 0)"),
    Setting("secure_cookies", "auto", "UNIONCAT_SECURE_COOKIES",
            "1: cookies only over HTTPS and HSTS; 0: not; auto (default): on when the base URL is https"),
    Setting("session_idle", 30, "UNIONCAT_SESSION_IDLE", "minutes a staff session may sit unused (default 30)"),
    Setting("session_max", 12, "UNIONCAT_SESSION_MAX", "hours a staff session lasts at most (default 12)"),
    Setting("search_rate", 5, "UNIONCAT_SEARCH_RATE",
            "searches per second one client may make, bursts of 6× (default 5)"),
    Setting("saml_key", None, "UNIONCAT_SAML_KEY",
            "PEM private key of the catalogue's SAML 2.0 service provider (unset: no SAML sign-on)"),
    Setting("saml_cert", None, "UNIONCAT_SAML_CERT", "PEM certificate of that key, published in /saml/metadata"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def _default(name: str) -> Any:
    """The dataclass field of setting ``name``, its default taken from :data:`SETTINGS`."""
    setting = BY_NAME[name]
    if callable(setting.default):
        return field(default_factory=setting.default)
    return field(default=setting.default)


@dataclass(frozen=True)
class Settings:
    """The merged settings (the annotations are for readers and type checkers; defaults come from the table)."""

    sources_path: Path = _default("sources_path")
    data_dir: Path = _default("data_dir")
    db_url: str | None = _default("db_url")
    search: str = _default("search")
    es_index: str = _default("es_index")
    es_shards: int = _default("es_shards")
    es_replicas: int = _default("es_replicas")
    redis_url: str | None = _default("redis_url")
    cache_dir: Path = _default("cache_dir")
    secret_key: str | None = _default("secret_key")
    staff_password: str | None = _default("staff_password")
    harvest_workers: int = _default("harvest_workers")
    max_block: int = _default("max_block")
    dedupe_workers: int = _default("dedupe_workers")
    dedupe_partitions: int = _default("dedupe_partitions")
    block_window: int = _default("block_window")
    smtp_host: str | None = _default("smtp_host")
    smtp_port: int = _default("smtp_port")
    smtp_user: str | None = _default("smtp_user")
    smtp_password: str | None = _default("smtp_password")
    smtp_starttls: bool = _default("smtp_starttls")
    smtp_from: str = _default("smtp_from")
    alert_to: str | None = _default("alert_to")
    alert_failures: int = _default("alert_failures")
    api_keys: str | None = _default("api_keys")
    cors_origins: str | None = _default("cors_origins")
    admin_email: str | None = _default("admin_email")
    base_url: str | None = _default("base_url")
    trusted_hosts: str | None = _default("trusted_hosts")
    trusted_proxies: int = _default("trusted_proxies")
    secure_cookies: str = _default("secure_cookies")
    session_idle: int = _default("session_idle")
    session_max: int = _default("session_max")
    search_rate: int = _default("search_rate")
    saml_key: str | None = _default("saml_key")
    saml_cert: str | None = _default("saml_cert")

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'unioncat.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def uses_elasticsearch(self) -> bool:
        return self.search.startswith(("http://", "https://"))


if [f.name for f in fields(Settings)] != [s.name for s in SETTINGS]:  # pragma: no cover - caught at import
    raise RuntimeError("unioncat.settings: the Settings fields and the SETTINGS table name different settings")


def load_settings(env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """Merge defaults, environment and flags (``None`` flags mean "not given")."""
    env = os.environ if env is None else env
    unknown = sorted(set(flags) - set(BY_NAME))
    if unknown:
        raise TypeError(f"unknown setting {unknown[0]!r}")
    given = {s.name: env[s.env] for s in SETTINGS if env.get(s.env)}
    given.update({name: value for name, value in flags.items() if value is not None})
    converted = {name: BY_NAME[name].parse(value) for name, value in given.items()}
    settings = replace(Settings(), **converted)
    if settings.search != "embedded" and not settings.uses_elasticsearch:
        raise ValueError(f"UNIONCAT_SEARCH={settings.search!r}: expected 'embedded' or an Elasticsearch URL "
                         "(http://host:9200 or https://…)")
    _log_overrides(settings, converted)
    return settings


def _log_overrides(settings: Settings, converted: Mapping[str, Any]) -> None:
    """Say at start-up which settings differ from the defaults (scrapy's habit), secrets left out."""
    for name in converted:
        if not BY_NAME[name].secret:
            log.debug("setting %s = %r", name, getattr(settings, name))

