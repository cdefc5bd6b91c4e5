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
    "search": ("UNIONCAT_SEARCH", "'embedded' (default) — an Elasticsearch URL comes in a later release"),
    "redis_url": ("UNIONCAT_REDIS", "Redis URL for distributed jobs (unset: jobs run in-process)"),
    "cache_dir": ("UNIONCAT_CACHE", "download cache for the LoC sample records (default ~/.cache/unioncat)"),
    "secret_key": ("UNIONCAT_SECRET_KEY", "Flask session key (default: a random key per process)"),
    "staff_password": ("UNIONCAT_STAFF_PASSWORD", "password of the staff pages (unset: staff pages closed)"),
    "harvest_workers": ("UNIONCAT_HARVEST_WORKERS", "sources harvested at once (default 4)"),
    "max_block": ("UNIONCAT_MAX_BLOCK", "records one match key may join before it is refused (default 500)"),
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
        elif name in ("harvest_workers", "max_block"):
            try:
                converted[name] = int(value)
            except ValueError:
                raise ValueError(f"{DOCUMENTED[name][0]}: expected a whole number, got {value!r}") from None
        else:
            converted[name] = value
    settings = replace(settings, **converted)
    if settings.search != "embedded":
        raise ValueError(f"UNIONCAT_SEARCH={settings.search!r}: only 'embedded' is available in this release")
    for name in converted:
        if name not in ("secret_key", "staff_password", "api_keys"):
            log.debug("setting %s = %r", name, getattr(settings, name))
    return settings
