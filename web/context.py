"""What every view needs, built once by ``create_app``: sources, stores, search backend."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy.engine import Engine

from dedupe.store import ClusterStore
from consortium.config import Source, SourcesFile
from harvester.store import RawStore
from index.backend import SearchBackend


@dataclass
class Services:
    sources: SourcesFile
    engine: Engine
    backend_config: Any
    clusters: ClusterStore = field(init=False)
    raw: RawStore = field(init=False)
    ops: Any = field(default=None, init=False)        # harvester.ops.OpsStore, set by web.staff.init_app
    accounts: Any = field(default=None, init=False)   # web.accounts.Accounts, set by web.staff.init_app
    jobs: Any = field(default=None, init=False)       # the JOBS runner (web.actions.JobRunner) or None
    _backend: SearchBackend | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self):
        self.clusters = ClusterStore(self.engine)
        self.raw = RawStore(self.engine)
        self._by_id = self.sources.by_id()

    @property
    def backend(self) -> SearchBackend:
        """The search backend: the configured instance, or the factory's product, made once."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    cfg = self.backend_config
                    self._backend = cfg if hasattr(cfg, "search") else cfg()
        return self._backend

    def source(self, source_id: str) -> Source | None:
        return self._by_id.get(source_id)

    def libraries(self) -> dict[str, tuple[str, str]]:
        """source id → (display name, region), what ``index.documents.to_document`` wants."""
        return {s.id: (s.name, s.region) for s in self.sources.sources}


def services() -> Services:
    return current_app.extensions["unioncat"]
