"""The harvester's stores behind one handle, for callers that hold one (the ``Catalogue``, the web app).

Each table still belongs to one module of :mod:`harvester.stores` and is queried only there; this
class only inherits their methods, so ``RawStore(engine)`` reads and writes raw records, runs,
checkpoints and quarantine as before the split.  New code may take the one store it needs.
"""
from __future__ import annotations

from .raw import QuarantinedItem
from .stores.checkpoints import Checkpoint, CheckpointStore
from .stores.locks import HarvestLockStore
from .stores.quarantine import QuarantineStore
from .stores.records import Counts, RecordStore
from .stores.runs import RunStore

__all__ = ["Checkpoint", "Counts", "QuarantinedItem", "RawStore"]


class RawStore(RecordStore, RunStore, CheckpointStore, QuarantineStore, HarvestLockStore):
    """Raw records, harvest runs, checkpoints, quarantine and harvest locks of one database."""
