"""A long dedupe pass says how far it got: staging (features and keys of every changed record) took about an
hour at 5M member records with nothing said, so it reports every ``STAGED_EVERY`` records."""
from __future__ import annotations

from dedupe import staging
from dedupe.build import dedupe_changes
from dedupe.members import MemberStore
from dedupe.store import ClusterStore
from normaliser.model import Record
from normaliser.store import RecordStore


def test_staging_reports_its_progress(db, monkeypatch):
    monkeypatch.setattr(staging, "STAGED_EVERY", 4)
    store = RecordStore(db)
    store.put([(Record("a", f"b{i}", title=f"Book number {i}"), "a", f"b{i}", i)
               for i in range(1, 10)])
    said: list[str] = []
    monkeypatch.setattr(staging, "in_batches", _batches_of(3, staging.in_batches))
    report = dedupe_changes(store, ClusterStore(db), MemberStore(db), 0, progress=said.append)
    assert report.records_changed == 9
    staged = [message for message in said if message.startswith("staged")]
    assert staged == ["staged 6 changed records (features and blocking keys)",
                      "staged 9 changed records (features and blocking keys)"]


def _batches_of(size, in_batches):
    """``in_batches`` with a small batch, so nine records make three flushes."""
    return lambda changes, take, flush: in_batches(changes, take, flush, size=size)
