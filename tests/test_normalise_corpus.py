"""Every MARC 21 file of the shared corpus through the dump reader and the normaliser.

The corpus holds real records from a dozen ILSs and libraries plus
deliberately broken fixtures.  Only ``RecordError`` may come out of
``normalise``; anything else is a bug.  The totals are exact numbers measured
when this test was written, so any change in what is read, quarantined or
normalised shows up here (with a per-file breakdown) and must be explained.
"""
from __future__ import annotations

import os
import traceback
from collections import Counter
from pathlib import Path

import pytest

from harvester.files import DumpError, read_path
from harvester.raw import RawRecord
from normaliser import normalise
from normaliser.errors import RecordError

pytestmark = pytest.mark.corpus

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

#: Measured on the corpus described by shared/corpus/marc21/SOURCES.md (385 files).
EXPECTED = {
    "files": 385,                     # every file except SOURCES.md
    "normalised": 27354,
    "quarantined_at_read": 10,        # truncated last records, trailing junk, bad leaders, broken XML
    "quarantined_at_normalise": 315,  # 304 MFHD holdings records, bad structure, no title, CP866
    "dump_errors": 0,
}
#: A few reasons that must stay exactly as counted (they document decisions).
EXPECTED_REASONS = {
    "MARC 21 holdings record": 304,
    "no title": 5,
    "character set unknown": 2,       # ruby-marc/cp866_multirecord.marc
    "ISO 2709:": 4,
}


@pytest.fixture(scope="module")
def marc21_dir() -> Path:
    corpus = Path(os.environ.get("UNIONCAT_CORPUS") or DEFAULT_CORPUS)
    folder = corpus / "marc21"
    if not folder.is_dir():
        message = f"shared corpus not found at {folder} (set UNIONCAT_CORPUS)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


def _run(folder: Path):
    per_file: dict[str, Counter] = {}
    reasons: Counter = Counter()
    bugs: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".md"):
        name = path.relative_to(folder).as_posix()
        counts = per_file[name] = Counter()
        try:
            for item in read_path(path, "corpus", format="marc21"):
                if not isinstance(item, RawRecord):
                    counts["quarantined_at_read"] += 1
                    continue
                if item.deleted:
                    continue
                try:
                    normalise(item)
                except RecordError as exc:
                    counts["quarantined_at_normalise"] += 1
                    reasons[str(exc)] += 1
                except Exception:  # noqa: BLE001 - the point of the test is to catch these
                    counts["bugs"] += 1
                    bugs.append(f"{name} {item.local_id}:\n{traceback.format_exc()}")
                else:
                    counts["normalised"] += 1
        except DumpError as exc:
            counts["dump_errors"] += 1
            reasons[f"dump: {exc}"] += 1
    return per_file, reasons, bugs


def _breakdown(per_file: dict[str, Counter]) -> str:
    lines = [f"{'file':70} {'ok':>6} {'read-q':>6} {'norm-q':>6}"]
    for name, c in per_file.items():
        lines.append(f"{name:70} {c['normalised']:6} {c['quarantined_at_read']:6} "
                     f"{c['quarantined_at_normalise']:6}{'  DUMP ERROR' if c['dump_errors'] else ''}")
    return "\n".join(lines)


def test_corpus_normalises_with_only_record_errors(marc21_dir):
    per_file, reasons, bugs = _run(marc21_dir)
    assert not bugs, f"{len(bugs)} unexpected exceptions:\n" + "\n".join(bugs[:5])

    totals = Counter()
    for counts in per_file.values():
        totals.update(counts)
    measured = {"files": len(per_file), **{k: totals[k] for k in EXPECTED if k != "files"}}
    by_reason = {prefix: sum(n for r, n in reasons.items() if prefix in r) for prefix in EXPECTED_REASONS}
    report = (_breakdown(per_file) + "\n\nreasons:\n"
              + "\n".join(f"{n:6} {r[:150]}" for r, n in reasons.most_common()))
    assert measured == EXPECTED, report
    assert by_reason == EXPECTED_REASONS, report
