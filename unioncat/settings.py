"""Settings, merged once: defaults < ``UNIONCAT_*`` environment < command-line flags.

Library packages never read the environment; they get what they need from
this object, passed in as arguments (as datasette and scrapy do).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

#: Every setting, its environment variable and what it means (docs are tested against this).
DOCUMENTED = {
    "sources_path": ("UNIONCAT_SOURCES", "the consortium file (default ./sources.yaml)"),
    "data_dir": ("UNIONCAT_DATA", "where the database, index and logs live (default ./var)"),
    "db_url": ("UNIONCAT_DB", "SQLAlchemy URL of the stores (default SQLite in the data folder)"),
    "search": ("UNIONCAT_SEARCH", "'embedded' (default) or an Elasticsearch URL such as http://127.0.0.1:9200"),
    "es_index": ("UNIONCAT_ES_INDEX", "Elasticsearch alias the catalogue is searched through (default unioncat)"),
    "es_shards": ("UNIONCAT_ES_SHARDS", "primary shards of a new Elasticsearch index (default 1)"),
    "es_replicas": ("UNIONCAT_ES_REPLICAS", "replicas of a new Elasticsearch index (default 0)"),
    "redis_url": ("UNIONCAT_REDIS", "Redis URL for distributed jobs (unset: jobs run in-process)"),
    "cache_dir": ("UNIONCAT_CACHE", "download cache for the LoC sample records (default ~/.cache/unioncat)"),
    "secret_key": ("UNIONCAT_SECRET_KEY", "Flask session key (default: a random key per process)"),
    "staff_password": ("UNIONCAT_STAFF_PASSWORD", "password of the staff pages (unset: staff pages closed)"),
    "harvest_workers": ("UNIONCAT_HARVEST_WORKERS", "sources harvested at once (default 4)"),
    "max_block": ("UNIONCAT_MAX_BLOCK", "records one match key may join before it is refused (default 500)"),
    "smtp_host": ("UNIONCAT_SMTP_HOST", "mail server for harvest alerts (unset: alerts only on the staff page)"),
    "smtp_port": ("UNIONCAT_SMTP_PORT", "its port (default 25)"),
    "smtp_user": ("UNIONCAT_SMTP_USER", "SMTP login name (unset: no login)"),
    "smtp_password": ("UNIONCAT_SMTP_PASSWORD", "SMTP password"),
    "smtp_starttls": ("UNIONCAT_SMTP_STARTTLS", "1 to upgrade the connection with STARTTLS (default off)"),
    "smtp_from": ("UNIONCAT_SMTP_FROM", "sender address of alert mails (default unioncat@localhost)"),
    "alert_to": ("UNIONCAT_ALERT_TO", "comma-separated addresses that get harvest alerts"),
    "alert_failures": ("UNIONCAT_ALERT_FAILURES", "failed harvests in a row that raise an alert (default 3)"),
    "api_keys": ("UNIONCAT_API_KEYS", "comma-separated API keys (or sha256:<hex> digests) for /api/v1 bulk use and "
                                      "exports (unset: anonymous, rate-limited use only)"),
    "cors_origins": ("UNIONCAT_CORS_ORIGINS", "comma-separated origins (portals) allowed to call /api/v1 from a "
                                              "browser (unset: none)"),
    "admin_email": ("UNIONCAT_ADMIN_EMAIL", "contact address the OAI-PMH Identify response gives"),
}


@dataclass(frozen=True)
class Settings:
    sources_path: Path = Path("sources.yaml")
    data_dir: Path = Path("var")
    db_url: str | None = None
    search: str = "embedded"
    redis_url: str | None = None
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "unioncat")
    secret_key: str | None = None
    staff_password: str | None = None
    harvest_workers: int = 4
    max_block: int = 500
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "unioncat@localhost"
    alert_to: str | None = None
    alert_failures: int = 3
    es_index: str = "unioncat"
    es_shards: int = 1
    es_replicas: int = 0
    api_keys: str | None = None
    cors_origins: str | None = None
    admin_email: str | None = None

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


def load_settings(env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """Merge defaults, environment and flags (``None`` flags mean "not given")."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(Settings)}
    for name, (var, _) in DOCUMENTED.items():
        if env.get(var):
            values[name] = env[var]
    for name, value in flags.items():
        if name not in types:
            raise TypeError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = value
    settings = Settings()
    converted = {}
    for name, value in values.items():
        if name in ("sources_path", "data_dir", "cache_dir"):
            converted[name] = Path(value).expanduser()
        elif name == "smtp_starttls":
            converted[name] = value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")
        elif name in ("harvest_workers", "max_block", "smtp_port", "alert_failures", "es_shards", "es_replicas"):
            try:
                converted[name] = int(value)
            except ValueError:
                raise ValueError(f"{DOCUMENTED[name][0]}: expected a whole number, got {value!r}") from None
        else:
            converted[name] = value
    settings = replace(settings, **converted)
    if settings.search != "embedded" and not settings.uses_elasticsearch:
        raise ValueError(f"UNIONCAT_SEARCH={settings.search!r}: expected 'embedded' or an Elasticsearch URL "
                         "(http://host:9200 or https://…)")
    for name in converted:
        if name not in ("secret_key", "staff_password", "smtp_password", "api_keys"):
            log.debug("setting %s = %r", name, getattr(settings, name))
    return settings
