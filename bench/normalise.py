"""Benchmark ``normalise()`` against raw pymarc parsing of the same bytes, in the same run.

    python bench/normalise.py [--records 20000] [--json]

Three inputs:

* MARC 21 binary — LoC BooksAll (``demo.loc``; cache dir from ``UNIONCAT_CACHE``,
  default ``/work/main/.cache``);
* MARCXML — the same LoC records serialised by pymarc;
* UNIMARC — the corpus (``UNIONCAT_CORPUS``, default ``../shared/corpus``:
  ``unimarc/xbib/periouni.mrc``, 3,064 UTF-8 periodical records) plus CNMARC
  records in GBK built with ``demo.cnmarc.to_cnmarc`` from LoC records,
  repeated to reach ``--records``.

Baselines: ``pymarc.Record(data=…)`` for ISO 2709 (UNIMARC is parsed with
``to_unicode=True, force_utf8=True`` — pymarc cannot read GBK, so this is
a lower bound for it), ``pymarc.parse_xml_to_array`` per record for MARCXML.
The normaliser does structure checks, per-field character-set decisions and
the whole mapping; the aim is at most 2× the baseline's time.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import warnings
from pathlib import Path

import pymarc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from consortium.presets import HOLDINGS_PRESETS  # noqa: E402
from harvester.raw import RawRecord  # noqa: E402
from normaliser import normalise  # noqa: E402
from demo.cnmarc import to_cnmarc  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _pymarc_iso(chunks: list[bytes]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for chunk in chunks:
            try:
                pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
            except Exception:  # noqa: BLE001 - the baseline only needs to try
                pass


def _pymarc_xml(payloads: list[bytes]) -> None:
    for payload in payloads:
        pymarc.parse_xml_to_array(io.BytesIO(payload))


def _normalise(raws: list[RawRecord], holdings) -> int:
    bad = 0
    for raw in raws:
        try:
            normalise(raw, holdings)
        except Exception:  # noqa: BLE001 - RecordError: counted, not benchmarked away
            bad += 1
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    cache = Path(os.environ.get("UNIONCAT_CACHE") or REPO / ".cache")
    corpus = Path(os.environ.get("UNIONCAT_CORPUS") or REPO.parent / "shared" / "corpus")
    loc = list(iter_chunks(loc_file(cache, log=lambda *_: None), limit=args.records))
    xml = [pymarc.record_to_xml(pymarc.Record(data=c, to_unicode=True, force_utf8=True), namespace=True)
           for c in loc]

    unimarc = [c for c in iter_chunks(corpus / "unimarc" / "xbib" / "periouni.mrc")]
    cn = []
    for i, chunk in enumerate(loc[:2000]):
        rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
        cn.append(to_cnmarc(rec, f"CN{i:07d}", library="NJU"))
    mixed = (unimarc + cn) * (args.records // (len(unimarc) + len(cn)) + 1)
    mixed = mixed[:args.records]

    cases = {
        "marc21_iso2709": ([RawRecord("b", str(i), c, "iso2709", "marc21") for i, c in enumerate(loc)],
                           lambda: _pymarc_iso(loc), (HOLDINGS_PRESETS["marc852"],)),
        "marc21_marcxml": ([RawRecord("b", str(i), x, "marcxml", "marc21") for i, x in enumerate(xml)],
                           lambda: _pymarc_xml(xml), (HOLDINGS_PRESETS["marc852"],)),
        "unimarc_iso2709": ([RawRecord("b", str(i), c, "iso2709", "auto") for i, c in enumerate(mixed)],
                            lambda: _pymarc_iso(mixed), (HOLDINGS_PRESETS["cnmarc905"],)),
    }
    results = {}
    for name, (raws, baseline, holdings) in cases.items():
        _normalise(raws[:200], holdings)         # warm up (OpenCC dictionaries, caches)
        base = _best(baseline, args.repeat)
        errors = []
        ours = _best(lambda: errors.append(_normalise(raws, holdings)), args.repeat)
        results[name] = {"records": len(raws), "normalise_rps": round(len(raws) / ours),
                         "pymarc_rps": round(len(raws) / base), "ratio": round(ours / base, 2),
                         "record_errors": errors[-1]}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'input':18} {'records':>8} {'normalise rec/s':>16} {'pymarc rec/s':>13} {'time ratio':>10}")
    for name, r in results.items():
        print(f"{name:18} {r['records']:>8} {r['normalise_rps']:>16} {r['pymarc_rps']:>13} {r['ratio']:>10}"
              f"   ({r['record_errors']} RecordErrors)")


if __name__ == "__main__":
    main()
