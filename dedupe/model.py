"""A cluster (one edition, its member records and the merged display record), and what a dedupe pass reports."""
from __future__ import annotations

from dataclasses import dataclass, field

from normaliser.model import Record


@dataclass
class Cluster:
    """One catalogue entry.

    ``record`` is the merged display record: the most complete member's
    description, enriched with every member's identifiers, and carrying the
    holdings of every member (``record.holdings``).  ``members`` lists the
    (source, local_id) of the member records behind it; ``match_keys`` lists
    the blocking keys at least two members share (shown to staff; the scored
    pairs behind the merge are in :mod:`dedupe.evidence`).  ``work_key`` is shared by
    the clusters of other editions of the same work (empty when unknown), so
    a record page can list "other editions".
    """

    id: str
    record: Record
    members: list[tuple[str, str]] = field(default_factory=list)
    match_keys: list[str] = field(default_factory=list)
    work_key: str = ""

    @property
    def sources(self) -> list[str]:
        """Member library ids holding this edition, in first-seen order."""
        return list(dict.fromkeys(s for s, _ in self.members))


@dataclass
class DedupeReport:
    """What a dedupe pass did: the stage's report (the build log, the benches' JSON, the job's result)."""

    records_changed: int = 0
    clusters_written: int = 0
    clusters_deleted: int = 0
    redirects: int = 0
    total_clusters: int = 0
    refused_keys: dict[str, int] = field(default_factory=dict)   # oversized blocks not compared
    split_keys: dict[str, int] = field(default_factory=dict)     # oversized blocks compared in title windows
    last_seq: int = 0
    pairs_compared: int = 0        # pairs scored by compare() this pass (only pairs with a changed record)
    pairs_prefiltered: int = 0     # block pairs the exact pre-filter settled without compare()
    records_evaluated: int = 0     # changed records plus the records of their blocks
    rejected_pairs: int = 0        # accepted pairs clustering did not apply (they would chain across a veto)
    records_reclustered: int = 0   # records whose cluster could change (linked to a changed record)
    holdings_changed: int = 0      # holdings records (MFHD) stored, changed or deleted this pass
    authorities_changed: int = 0   # authority records stored, changed or removed (the index expands names)
    resumed: str = ""              # where the interrupted full pass this one finished had stopped
    seconds: float = 0.0
