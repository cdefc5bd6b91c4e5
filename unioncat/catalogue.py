"""The :class:`Catalogue`: the opened stores, the search index and the consortium file.

Every command, job and page works on one of these.  It lives apart from the pipeline's
stages so that modules which only need the stores (alerts, availability, the web
wiring) do not pull in the stages.
"""
from __future__ import annotations

import logging
import shutil

from consortium.config import SourcesFile
from consortium.load import load_sources
from dedupe.members import MemberStore
from dedupe.store import ClusterStore
from harvester.store import RawStore
from index.backend import SearchBackend
from index.embedded import EmbeddedIndex, IndexSchemaError
from normaliser.store import RecordStore
from storage.db import make_engine, set_value

from .schema import ensure_schema
from .settings import Settings

log = logging.getLogger(__name__)

#: The pipeline's checkpoints: named counters in the database, each stage's "done up to here".
NORMALISE_CHECKPOINT = "normalise_from_raw_seq"
DEDUPE_CHECKPOINT = "dedupe_from_record_seq"
#: The ``dedupe.features.MATCHER_VERSION`` the stored features and blocking keys were made by.
MATCHER_KEY = "dedupe_matcher_version"
INDEX_CHECKPOINT = "index_from_cluster_seq"


class Catalogue:
    """The opened stores and the consortium file: what every command works on."""

    def __init__(self, settings: Settings, sources: SourcesFile | None = None):
        self.settings = settings
        self.sources = sources if sources is not None else load_sources(settings.sources_path)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.database_url)
        ensure_schema(self.engine)  # Alembic: creates a new database, upgrades an older one
        self.raw = RawStore(self.engine)
        self.records = RecordStore(self.engine)
        self.clusters = ClusterStore(self.engine)
        self.members = MemberStore(self.engine)
        self._index: SearchBackend | None = None

    @property
    def index(self) -> SearchBackend:
        """The search index; one built by an older schema is dropped and rebuilt from the clusters."""
        if self._index is None and self.settings.uses_elasticsearch:
            # imported here: the Elasticsearch client is heavy and the embedded default never needs it
            from index.elastic import ElasticsearchBackend
            self._index = ElasticsearchBackend(self.settings.search, index=self.settings.es_index,
                                               shards=self.settings.es_shards, replicas=self.settings.es_replicas)
        if self._index is None:
            try:
                self._index = EmbeddedIndex(self.settings.index_dir)
            except IndexSchemaError as exc:
                log.warning("%s — rebuilding the index from the stored clusters", exc)
                shutil.rmtree(self.settings.index_dir)
                with self.engine.begin() as conn:
                    set_value(conn, INDEX_CHECKPOINT, 0)
                self._index = EmbeddedIndex(self.settings.index_dir)
        return self._index

    def libraries(self) -> dict[str, tuple[str, str]]:
        """Member id → (display name, region), for documents and pages."""
        return {s.id: (s.name, s.region) for s in self.sources.sources}

    def source_order(self) -> dict[str, int]:
        """Member id → its position in sources.yaml (dedupe's tie-break for the preferred record)."""
        return {s.id: i for i, s in enumerate(self.sources.sources)}

    def holdings_feeds(self) -> dict[str, str]:
        """Each holdings feed's source id → the source whose bibliographic records it holds (``holdings_for``)."""
        return {s.id: s.holdings_for for s in self.sources.sources if s.holdings_for}

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        self.engine.dispose()
