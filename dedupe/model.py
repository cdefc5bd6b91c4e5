"""A cluster: one edition, its member records and the merged display record."""
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
