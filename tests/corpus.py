"""Where the shared corpus is, for the corpus tests (required in CI, optional elsewhere)."""
from __future__ import annotations

import os
from pathlib import Path

from services import unavailable

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def corpus_dir(name: str) -> Path:
    """A folder of the shared corpus (``UNIONCAT_CORPUS``); fails in CI and skips elsewhere when missing."""
    corpus = Path(os.environ.get("UNIONCAT_CORPUS") or DEFAULT_CORPUS)
    folder = corpus / name
    if not folder.is_dir():
        unavailable(f"shared corpus not found at {folder} (set UNIONCAT_CORPUS)", "corpus tests")
    return folder
