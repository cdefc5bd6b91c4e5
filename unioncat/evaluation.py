"""``unioncat dedupe evaluate``'s ground: MARC files run through harvest → normalise → dedupe.

Each file becomes one ``file`` member of a throw-away consortium in a fresh
data folder, so the clusters come from exactly the code a real build runs.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from consortium.config import SourcesFile
from consortium.load import parse_sources
from dedupe.explain import accepted_pair_rules

from .catalogue import Catalogue
from .pipeline import Progress, quiet, dedupe_stage, harvest, normalise_stage
from .settings import Settings

@dataclass
class ClusteredFiles:
    """Member keys and clusters of MARC files run through harvest → normalise → dedupe."""

    members: dict[tuple[str, str], tuple[list[str], str | None]]  # (source, 001) → (match keys, cluster id)
    refused_keys: set[str]
    quarantined: int
    pair_rules: dict[frozenset, str] = field(default_factory=dict)  # {a, b} → rule that accepted the pair


def file_sources(paths: Iterable[os.PathLike | str]) -> SourcesFile:
    """A consortium of one ``file`` member per MARC file, its id the file name without extension."""
    entries = []
    for p in paths:
        path = Path(p).resolve()
        entries.append({"id": path.stem, "name": path.stem, "region": "evaluation", "protocol": "file",
                        "path": str(path)})
    return parse_sources({"consortium": {"name": "dedupe evaluation"}, "sources": entries}, "<files>")


def cluster_files(paths: Iterable[os.PathLike | str], data_dir: os.PathLike | str,
                  progress: Progress = quiet) -> ClusteredFiles:
    """Harvest, normalise and dedupe MARC files in a fresh data folder; no index.

    Raises ``ConfigError`` for a file name that is not a valid source id (or
    two files with one name) and ``RuntimeError`` when a file cannot be read.
    """
    sources = file_sources(paths)
    data_dir = Path(data_dir)
    cat = Catalogue(Settings(data_dir=data_dir, sources_path=data_dir / "sources.yaml"), sources)
    try:
        reports = harvest(cat, list(sources.sources), full=True, progress=progress)
        failed = [r for r in reports if r.status != "ok"]
        if failed:
            raise RuntimeError("; ".join(f"{r.source}: {r.error}" for r in failed))
        normalised = normalise_stage(cat, progress)
        deduped = dedupe_stage(cat, progress)
        return ClusteredFiles(members=cat.members.load(), refused_keys=set(deduped.refused_keys),
                              quarantined=sum(r.counts.quarantined for r in reports) + normalised.quarantined,
                              pair_rules=accepted_pair_rules(cat.engine))
    finally:
        cat.close()
