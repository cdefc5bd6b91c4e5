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
from consortium.load import FORMATS, parse_sources
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


def split_format(arg: os.PathLike | str) -> tuple[Path, str | None]:
    """``FILE:FORMAT`` → (FILE, FORMAT) when the suffix is a record format; a plain FILE → (FILE, None).

    A CNMARC member declares its format so its records are read as CNMARC (100 $a character sets,
    UNIMARC tags) whatever ``auto`` would guess.
    """
    text = str(arg)
    head, sep, tail = text.rpartition(":")
    if sep and head and tail.lower() in FORMATS + ("marcxml", "usmarc"):
        return Path(head), tail.lower()
    return Path(text), None


def file_sources(paths: Iterable[os.PathLike | str]) -> SourcesFile:
    """A consortium of one ``file`` member per MARC file, its id the file name without extension.

    A path may end in ``:FORMAT`` (``lib-c.mrc:cnmarc``) to declare the member's record format.
    """
    entries = []
    for p in paths:
        path, fmt = split_format(p)
        entry = {"id": path.stem, "name": path.stem, "region": "evaluation", "protocol": "file",
                 "path": str(path.resolve())}
        if fmt:
            entry["format"] = fmt
        entries.append(entry)
    return parse_sources({"consortium": {"name": "dedupe evaluation"}, "sources": entries}, "<files>")


def cluster_files(paths: Iterable[os.PathLike | str] | SourcesFile, data_dir: os.PathLike | str,
                  progress: Progress = quiet) -> ClusteredFiles:
    """Harvest, normalise and dedupe MARC files (or the members of a sources file) in a fresh data folder.

    No index.  Raises ``ConfigError`` for a file name that is not a valid
    source id (or two files with one name) and ``RuntimeError`` when a file
    cannot be read.
    """
    sources = paths if isinstance(paths, SourcesFile) else file_sources(paths)
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
