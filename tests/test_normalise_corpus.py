"""Every MARC 21 file of the shared corpus through the dump reader and the normaliser.

The corpus holds real records from a dozen ILSs and libraries plus
deliberately broken fixtures.  Only ``RecordError`` may come out of
``normalise``; anything else is a bug.  The totals are exact numbers measured
when this test was written, so any change in what is read, quarantined or
normalised shows up here (with a per-file breakdown) and must be explained.
"""
from __future__ import annotations

import traceback
from collections import Counter
from pathlib import Path

import pytest

from harvester.clients.dumps import DumpError, read_path
from harvester.raw import RawRecord
from normaliser import normalise
from normaliser.errors import RecordError
from corpus import corpus_dir

pytestmark = pytest.mark.corpus


#: Measured on the corpus described by shared/corpus/marc21/SOURCES.md (396 files, with the holdings/ records added in the second round).
EXPECTED = {
    "files": 396,                     # every file except SOURCES.md
    "normalised": 29475,              # incl. 1,431 MFHD holdings records (normaliser/mfhd.py)
    "quarantined_at_read": 10,        # truncated last records, trailing junk, bad leaders, broken XML
    "quarantined_at_normalise": 19,   # 8 MFHD without 004 (nothing to attach to), bad structure, no title, CP866
    "dump_errors": 0,
}
#: A few reasons that must stay exactly as counted (they document decisions).
EXPECTED_REASONS = {
    "without 004": 8,   # e.g. folio-migration-tools/mfhd_with_dupe_866s.mrc
    "no title": 7,                    # incl. the 2 below
    "read as CP866": 2,               # ruby-marc/cp866_multirecord.marc: Russian text is read, but it is
                                      # VINITI's own format (no 245), not MARC 21
    "character set unknown": 0,
    "ISO 2709:": 4,
}


@pytest.fixture(scope="module")
def marc21_dir() -> Path:
    return corpus_dir("marc21")


@pytest.fixture(scope="module")
def unimarc_dir() -> Path:
    return corpus_dir("unimarc")


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


# --- UNIMARC / CNMARC --------------------------------------------------------------------

#: Measured on shared/corpus/unimarc (SOURCES.md there), every file read with format "auto".
EXPECTED_UNIMARC = {
    "xbib/periouni.mrc": {"normalised": 3064},
    "qa-catalogue/serial.bnr.1993.mrc": {"normalised": 11},
    "pymarc/testunimarc.dat": {"normalised": 1},
    "ruby-marc/cp866_unimarc.marc": {"quarantined_at_normalise": 1},   # VINITI format in CP866, no title tag
    "xbib/rusmarc.xml": {"normalised": 1},
    "cnmarc/dp2_sample_cnmarcxml.xml": {"normalised": 10},
    "cnmarc/dp2_sample_unimarcxml.xml": {"normalised": 10},
}


def _unimarc_items(folder: Path, fmt: str):
    """Every file through the harvester's own reader (CNMARC XML in http://www.nlc.cn/ inside SRU too)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".md"):
        yield path.relative_to(folder).as_posix(), list(read_path(path, "corpus", format=fmt))


@pytest.mark.parametrize("fmt", ["auto", "unimarc"])
def test_unimarc_corpus_normalises_with_only_record_errors(unimarc_dir, fmt):
    from consortium.presets import HOLDINGS_PRESETS

    holdings = [HOLDINGS_PRESETS[n] for n in ("cnmarc905", "cnmarc906", "koha995")]
    per_file: dict[str, dict] = {}
    bugs, reasons = [], Counter()
    for name, items in _unimarc_items(unimarc_dir, fmt):
        counts = Counter()
        for item in items:
            if not isinstance(item, RawRecord):
                counts["quarantined_at_read"] += 1
                continue
            try:
                normalise(item, holdings)
            except RecordError as exc:
                counts["quarantined_at_normalise"] += 1
                reasons[str(exc)[:160]] += 1
            except Exception:  # noqa: BLE001
                bugs.append(f"{name} {item.local_id}:\n{traceback.format_exc()}")
            else:
                counts["normalised"] += 1
        per_file[name] = dict(counts)
    assert not bugs, "\n".join(bugs[:5])
    assert per_file == EXPECTED_UNIMARC, f"{per_file}\n{reasons}"
    assert all("no title" in r for r in reasons), reasons


def test_real_cnmarc_spot_checks(unimarc_dir):
    from consortium.presets import HOLDINGS_PRESETS

    items = list(read_path(unimarc_dir / "cnmarc" / "dp2_sample_cnmarcxml.xml", "corpus", format="cnmarc"))
    recs = [normalise(i, [HOLDINGS_PRESETS["cnmarc905"]]) for i in items]
    first = recs[0]
    assert first.control_number == "990002180740203961" and first.record_format == "cnmarc"
    assert first.isbns == ["9787503717444"] and first.price == "CNY68.00"
    assert (first.title, first.title_pinyin) == ("'94中国发展报告", "'94Zhong Guo Fa Zhan Bao Gao")
    assert (first.responsibility, first.place, first.publisher, first.year) == ("国家统计局编", "北京", "中国统计出版社", 1994)
    assert first.extent == "320页" and first.languages == ["chi"] and first.countries == ["CN"]
    assert first.subjects == ["经济发展 -- 概况 -- 中国 -- 1994"]
    assert [(c.scheme, c.value) for c in first.classifications] == [("clc", "F124")]
    assert [c.name for c in first.contributors] == ["叶震", "李强", "国家统计局"]
    assert [(h.library, h.call_number) for h in first.holdings] == [("BNU", "F124/26")]
    assert sum(1 for r in recs if any(i.startswith("calis:CAL ") for i in r.other_ids)) == 3
    assert [r.format for r in recs].count("ebook") == 1
    # the same 10 records served as "unimarcxml" normalise to the same thing
    again = [normalise(i, [HOLDINGS_PRESETS["cnmarc905"]])
             for i in read_path(unimarc_dir / "cnmarc" / "dp2_sample_unimarcxml.xml", "corpus", format="auto")]
    def same(r):
        d = r.to_dict()
        return {k: v for k, v in d.items() if k not in ("local_id", "holdings")}
    assert [same(r) for r in again] == [same(r) for r in recs]


def test_unimarc_spot_checks(unimarc_dir):
    (name, items), = [x for x in _unimarc_items(unimarc_dir / "pymarc", "auto")]
    rec = normalise(items[0])
    assert (rec.title, rec.year, rec.languages, rec.record_format) == (
        "L' altra faccia della spirale", 1996, ["ita"], "unimarc")
    assert rec.contributors[0].name == "Asimov, Isaac" and rec.contributors[0].primary
    bnr = [normalise(i) for i in read_path(unimarc_dir / "qa-catalogue" / "serial.bnr.1993.mrc", "c", format="auto")]
    assert all(r.format == "serial" for r in bnr)
    assert sum(1 for r in bnr if any("double-encoded UTF-8 repaired" in w for w in r.warnings)) >= 5
    (rus,) = read_path(unimarc_dir / "xbib" / "rusmarc.xml", "corpus", format="auto")
    assert normalise(rus).title == "Сучасна соціальна філософія"
