"""Separate holdings records (MFHD) attached to their bibliographic records, on real consortium data.

The acceptance data is the CARLI I-Share (Illinois, Voyager) union-catalogue
test set of the eXtensible Catalog project (shared/corpus/marc21/holdings/
mst/001-xc_dedup.xml): 92 bibliographic and 243 holdings records from 14
member libraries (003).  Split by library it is harvested as 14 members;
242 of the 243 004 fields name a bibliographic record of the same library,
the last one names none and must be reported, not lost.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from lxml import etree

from corpus import corpus_dir
from unioncat.cli import main

pytestmark = pytest.mark.corpus

MARC = "http://www.loc.gov/MARC21/slim"
NS = {"m": MARC}


def _control(record, tag: str) -> str:
    found = record.find(f"m:controlfield[@tag='{tag}']", NS)
    return (found.text or "").strip() if found is not None else ""


def _mst_records() -> list:
    path = corpus_dir("marc21") / "holdings" / "mst" / "001-xc_dedup.xml"
    return etree.parse(str(path)).findall(".//m:record", NS)


def _write_member(path: Path, records) -> None:
    root = etree.Element(f"{{{MARC}}}collection", nsmap={None: MARC})
    for record in records:
        root.append(record)
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def cli(tmp_path: Path, *args: str):
    result = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "var"),
                                       *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def mst(tmp_path):
    """The file split into one MARCXML file per member library, holdings records first (they may come first)."""
    by_member: dict[str, list] = {}
    for record in _mst_records():
        by_member.setdefault(_control(record, "003"), []).append(record)
    sources = []
    for member, records in sorted(by_member.items()):
        records.sort(key=lambda r: r.find("m:leader", NS).text[6] == "a")
        _write_member(tmp_path / f"{member}.xml", records)
        sources.append({"id": member.lower(), "name": member, "protocol": "file", "path": f"{member}.xml", "region": "Illinois",
                        "format": "marc21"})
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"consortium": {"name": "I-Share"}, "sources": sources}))
    return tmp_path, by_member


def _expected(by_member) -> tuple[Counter, list[tuple[str, str, str]]]:
    """Holdings records per (member, bib 001) from the file's own 004 links, and the ones that resolve nowhere."""
    bibs = {(m.lower(), _control(r, "001")) for m, rs in by_member.items() for r in rs
            if r.find("m:leader", NS).text[6] == "a"}
    links: Counter = Counter()
    orphans = []
    for member, records in by_member.items():
        for r in records:
            if r.find("m:leader", NS).text[6] in "uvxy":
                key = (member.lower(), _control(r, "004"))
                if key in bibs:
                    links[key] += 1
                else:
                    orphans.append((member.lower(), _control(r, "001"), key[1]))
    return links, orphans


def _catalogue(tmp_path):
    from unioncat.pipeline import Catalogue
    from unioncat.settings import load_settings
    return Catalogue(load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "var"))


def _holdings_per_bib(cat) -> tuple[Counter, Counter]:
    """MFHD holdings per member bibliographic record over every entry, and entries per member record."""
    held: Counter = Counter()
    entries: Counter = Counter()
    for cluster in cat.clusters.iter_live():
        for member in cluster.members:
            entries[member] += 1
        for h in cluster.record.holdings:
            if h.holdings_id:
                held[(h.source, h.local_id)] += 1
    return held, entries


def test_mst_consortium_attaches_every_resolvable_holdings_record(mst):
    tmp_path, by_member = mst
    expected, orphans = _expected(by_member)
    assert sum(expected.values()) == 242 and len(orphans) == 1 and len(by_member) == 14

    cli(tmp_path, "harvest")
    build = cli(tmp_path, "build")
    assert "0 quarantined" in build.stderr
    cat = _catalogue(tmp_path)
    try:
        held, entries = _holdings_per_bib(cat)
        # every bibliographic record is in exactly one entry, with exactly the holdings its 004 links give it
        assert set(entries.values()) == {1} and len(entries) == 92
        assert held == expected
        # a serial with 853/863 pairs gets a generated summary; 866 summaries are carried as given
        summaries = [h.summary for c in cat.clusters.iter_live() for h in c.record.holdings if h.summary]
        assert "1994/1995-2009/2010" in summaries and "v.4(2007)-" in summaries
    finally:
        cat.close()

    report = json.loads(cli(tmp_path, "quality", "--json").stdout)
    source, local_id, bib = orphans[0]
    assert report[source]["orphan_holdings"] == 1
    assert report[source]["orphan_examples"] == [f"{local_id} → 004 {bib}"]
    assert sum(q["holdings_records"] for q in report.values()) == 243
    assert sum(q["orphan_holdings"] for q in report.values()) == 1
    text = cli(tmp_path, "quality", source).stdout
    assert f"orphan {local_id} → 004 {bib}" in text


def test_deleted_holdings_record_and_deleted_bib_remove_their_holdings(mst):
    tmp_path, by_member = mst
    cli(tmp_path, "harvest")
    cli(tmp_path, "build")
    expected, _ = _expected(by_member)
    (member, bib), _n = max(expected.items(), key=lambda kv: kv[1])
    name = next(m for m in by_member if m.lower() == member)
    records = by_member[name]
    mfhd = [r for r in records if _control(r, "004") == bib]
    other_bib = next(k for k in expected if k[0] == member and k[1] != bib)
    kept = [r for r in records if r is not mfhd[0] and _control(r, "001") != other_bib[1]]
    _write_member(tmp_path / f"{name}.xml", kept)
    cli(tmp_path, "harvest", member)
    cli(tmp_path, "build")
    cat = _catalogue(tmp_path)
    try:
        held, entries = _holdings_per_bib(cat)
        assert held[(member, bib)] == expected[(member, bib)] - 1
        assert other_bib not in entries and held[other_bib] == 0
    finally:
        cat.close()
    # the deleted bib's holdings records are still stored: they are reported, not lost
    report = json.loads(cli(tmp_path, "quality", "--json", member).stdout)
    already = sum(1 for s, _, _ in _expected(by_member)[1] if s == member)
    assert report[member]["orphan_holdings"] == expected[other_bib] + already


def _serial_with_two_ranges(cat):
    """An entry two libraries hold with year ranges, and a year the first covers and the second does not."""
    for cluster in cat.clusters.iter_live():
        ranges: dict[str, list] = {}
        for h in cluster.record.holdings:
            ranges.setdefault(h.source, []).extend(h.coverage)
        covered = {s: r for s, r in ranges.items() if r}
        for a, ra in covered.items():
            for b, rb in covered.items():
                for first, last in ra:
                    year = next((y for y in range(first, min(last, 2100) + 1)
                                 if not any(f <= y <= t for f, t in rb)), None)
                    if a != b and year is not None:
                        return cluster, a, b, year
    raise AssertionError("no serial held with different ranges")


def test_serial_page_json_and_api_show_ranges_and_ill_skips_libraries_without_the_year(mst):
    from unioncat.present import make_app
    from urllib.parse import parse_qs, urlsplit

    tmp_path, _ = mst
    (tmp_path / "sources.yaml").write_text((tmp_path / "sources.yaml").read_text().replace(
        "name: I-Share", "name: I-Share\n  ill_url: https://ill.example.org/openurl"))
    cli(tmp_path, "harvest")
    cli(tmp_path, "build")
    cat = _catalogue(tmp_path)
    try:
        cluster, holder, other, year = _serial_with_two_ranges(cat)
        client = make_app(cat).test_client()
        data = client.get(f"/record/{cluster.id}.json?year={year}&volume=7").get_json()
        by_source = {g["source"]: g for g in data["holdings"]}
        assert by_source[holder]["summaries"] and by_source[holder]["coverage"]
        assert by_source[holder]["covers_year"] is True and by_source[other]["covers_year"] is False
        lenders = {l["source"] for l in data["lenders"]}
        assert holder in lenders and other not in lenders
        kev = parse_qs(urlsplit(data["links"]["ill"]).query)
        assert cluster.record.format == "serial"
        assert kev["rft.date"] == [str(year)] and kev["rft.volume"] == ["7"] and kev["rft.genre"] == ["journal"]
        html = client.get(f"/record/{cluster.id}?year={year}").text
        assert by_source[holder]["summaries"][0].split(" ")[0] in html and "does not hold" in html
        api = client.get(f"/api/v1/records/{cluster.id}/holdings").get_json()
        assert any(h["summary"] and h["coverage"] for h in api["holdings"] if h["source"] == holder)
        # the reader's own library holds the journal but not that year: the button is an ILL request
        mine = client.get(f"/record/{cluster.id}.json?year={year}&home={other}").get_json()
        assert mine["get_it"]["kind"] == "ill" and other not in {l["source"] for l in mine["lenders"]}
        assert client.get(f"/record/{cluster.id}.json?home={other}").get_json()["get_it"]["kind"] != "ill"
        oai = client.get("/oai?verb=ListRecords&metadataPrefix=marcxml&set=merged").text
        assert 'tag="866"' in oai and by_source[holder]["summaries"][0].split(" ")[0] in oai
        # e-resources: each library's proxied link is shown to its own readers only
        ebook = next(c for c in cat.clusters.iter_live() if len({h.source for h in c.record.holdings if h.urls}) > 2)
        linked = sorted({h.source for h in ebook.record.holdings if h.urls})
        mine = linked[0]
        view = client.get(f"/record/{ebook.id}.json?home={mine}").get_json()
        own = {u for h in ebook.record.holdings if h.source == mine for u in h.urls}
        assert set(view["online"]["yours"]) == own and view["online"]["others"] == len(linked) - 1
        page = client.get(f"/record/{ebook.id}?home={mine}").text
        others = {u for h in ebook.record.holdings if h.source != mine for u in h.urls} - own
        assert "Online at your library" in page and f"Online at {len(linked) - 1} other libraries" in page
        assert not any(f'href="{u}"' in page for u in others)
        bad = client.get(f"/record/{cluster.id}.json?year=soon").get_json()
        assert bad["wanted"]["year_error"] is True and bad["wanted"]["year"] is None
    finally:
        cat.close()


def test_a_separate_holdings_feed_links_by_004_to_its_bib_source_in_either_order(mst):
    """Each library sends its bibs in one feed and its MFHD in another (``holdings_for``): the holdings
    arrive first and wait, the bibs come, every resolvable 004 attaches under the library, the orphan is
    reported on the feed that sent it."""
    tmp_path, by_member = mst
    expected, orphans = _expected(by_member)
    sources = []
    for member, records in sorted(by_member.items()):
        is_bib = [r.find("m:leader", NS).text[6] == "a" for r in records]
        _write_member(tmp_path / f"{member}.xml", [r for r, b in zip(records, is_bib) if b])
        _write_member(tmp_path / f"{member}-mfhd.xml", [r for r, b in zip(records, is_bib) if not b])
        common = {"protocol": "file", "region": "Illinois", "format": "marc21"}
        sources += [{"id": member.lower(), "name": member, "path": f"{member}.xml", **common},
                    {"id": f"{member.lower()}-mfhd", "name": f"{member} holdings", "path": f"{member}-mfhd.xml",
                     "holdings_for": member.lower(), **common}]
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"consortium": {"name": "I-Share"}, "sources": sources}))
    feeds = [s["id"] for s in sources if "holdings_for" in s]
    cli(tmp_path, "harvest", *feeds)
    cli(tmp_path, "build")
    cli(tmp_path, "harvest", *[s["id"] for s in sources if s["id"] not in feeds])
    cli(tmp_path, "build")
    cat = _catalogue(tmp_path)
    try:
        held, entries = _holdings_per_bib(cat)
        assert len(entries) == 92 and held == expected    # the library's holdings, not the feed's
        assert not any(h.source.endswith("-mfhd") for c in cat.clusters.iter_live() for h in c.record.holdings)
    finally:
        cat.close()
    report = json.loads(cli(tmp_path, "quality", "--json").stdout)
    source, local_id, bib = orphans[0]
    assert report[f"{source}-mfhd"]["orphan_examples"] == [f"{local_id} → 004 {bib}"]
    assert sum(q["orphan_holdings"] for q in report.values()) == 1
