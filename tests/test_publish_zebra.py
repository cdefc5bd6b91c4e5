"""`unioncat publish zebra`: the merged records in a real Zebra, searched by yaz-client and our ZOOM
client over Z39.50 and SRU by every Bib-1 attribute cataloguers send; updates and deletions follow."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pymarc
import pytest
from click.testing import CliRunner
from pymarc import MARCReader

from harvester.clients.zoom import Connection
from peers.provider_fixtures import built_catalogue
from unioncat.cli import main
from unioncat.pipeline import build, harvest, select_sources
from publish.zebra import QualityBar, publish, serve
from peers.zebra import zebra_or_skip

# (Bib-1 use attribute, PQF term, CQL index, title expected among the hits, expected hit count)
SEARCHES = [
    (4, "chamber", "dc.title", "Dream of the red chamber", 1),
    (1003, "knuth", "dc.creator", "The art of computer programming", 1),
    (7, "9780262510875", "bath.isbn", "Structure and interpretation of computer programs", 1),
    (8, "0021-9118", "bath.issn", "Journal of Asian studies", 1),
    (21, "cosmology", "dc.subject", "A brief history of time", 1),
    (1016, "periodicals", "cql.serverChoice", "Journal of Asian studies", 1),
    (31, "1899", "dc.date", "Personal rights and the domestic relations", 1),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    zebra_or_skip()
    root = tmp_path_factory.mktemp("zebra-publish")
    cat = built_catalogue(root)
    report = publish(cat, root / "zebra")
    server = serve(root / "zebra", port=0)
    yield cat, server, report
    server.stop()
    cat.close()


def yaz(target: str, *commands: str) -> str:
    result = subprocess.run(["yaz-client", target], input="\n".join([*commands, "quit"]) + "\n",
                            capture_output=True, text=True, timeout=60)
    return result.stdout


def hits(output: str) -> int:
    line = next(l for l in output.splitlines() if "Number of hits" in l)
    return int(line.split(":")[1].split(",")[0])


def test_quality_bar_decides_what_is_offered(published):
    cat, _server, report = published
    assert report.updated == cat.clusters.count() - 1 and report.below_bar == 1
    bar = QualityBar.parse("245, 260|264, 300, 1XX|7XX")
    assert bar == QualityBar()
    with pytest.raises(ValueError):
        QualityBar.parse("title")


@pytest.mark.parametrize("use, term, _cql, title, count", SEARCHES)
def test_yaz_client_z3950_search_and_marc21_that_pymarc_reads(published, tmp_path, use, term, _cql, title, count):
    _cat, server, _ = published
    dump = tmp_path / "out.mrc"
    out = yaz(f"tcp:{server.host}:{server.port}/Default", "format usmarc", f"set_marcdump {dump}",
              f"find @attr 1={use} {term}", "show 1")
    assert hits(out) == count
    [record] = list(MARCReader(dump.read_bytes(), to_unicode=True, force_utf8=True))
    assert record["245"]["a"].startswith(title)
    assert record.leader[9] == "a" and record["001"].data.startswith("uc")


def test_local_number_and_date_last_modified(published):
    cat, server, _ = published
    cluster = next(c for c in cat.clusters.iter_live() if c.record.title == "The analects")
    target = f"tcp:{server.host}:{server.port}/Default"
    assert hits(yaz(target, f"find @attr 1=12 {cluster.id}")) == 1
    assert hits(yaz(target, "find @attr 1=1012 @attr 2=4 @attr 4=109 20000101")) == cat.clusters.count() - 1
    assert hits(yaz(target, "find @attr 1=1012 @attr 2=5 @attr 4=109 29990101")) == 0
    assert hits(yaz(target, "find @attr 1=4 pamphlet")) == 0  # below the quality bar: not offered


def test_yaz_client_over_sru_by_every_index(published):
    cat, server, _ = published
    cluster = next(c for c in cat.clusters.iter_live() if c.record.title == "The analects")
    queries = [f'{cql}="{term}"' for _u, term, cql, _t, _c in SEARCHES]
    queries += [f"rec.id={cluster.id}", "rec.lastModificationDate>/numeric 20000101"]
    out = yaz(server.sru_url, "querytype cql", *[f"find {q}" for q in queries])
    found = [int(line.split(":")[1].split(",")[0]) for line in out.splitlines() if "Number of hits" in line]
    assert found == [c for *_, c in SEARCHES] + [1, cat.clusters.count() - 1]


def test_zoom_client_by_local_number_and_date_last_modified(published):
    cat, server, _ = published
    cluster = next(c for c in cat.clusters.iter_live() if c.record.title == "The analects")
    with Connection(server.url, syntax="usmarc") as conn:
        [rec] = conn.search(f"@attr 1=12 {cluster.id}").records(0, 1)
        assert pymarc.Record(data=rec.data, to_unicode=True, force_utf8=True)["001"].data == cluster.id
        assert conn.search("@attr 1=1012 @attr 2=4 @attr 4=109 20000101").size == cat.clusters.count() - 1
    with Connection(server.sru_url, record_schema="marcxml") as conn:
        assert conn.search(f"rec.id={cluster.id}", cql=True).size == 1
        assert conn.search("rec.lastModificationDate>/numeric 29990101", cql=True).size == 0


@pytest.mark.parametrize("use, term, cql, title, count", SEARCHES)
def test_zoom_client_over_z3950_and_sru(published, use, term, cql, title, count):
    _cat, server, _ = published
    with Connection(server.url, syntax="usmarc") as conn:
        rs = conn.search(f"@attr 1={use} {term}")
        assert rs.size == count
        records = [pymarc.Record(data=r.data, to_unicode=True, force_utf8=True) for r in rs.records(0, count)]
    assert title in {r["245"]["a"].rstrip(" :/") for r in records}
    with Connection(server.sru_url, record_schema="marcxml") as conn:
        rs = conn.search(f'{cql}="{term}"', cql=True)
        assert rs.size == count
        xml = [pymarc.parse_xml_to_array(io.BytesIO(r.data))[0] for r in rs.records(0, count)]
    assert title in {r["245"]["a"].rstrip(" :/") for r in xml}
    assert all(r.get_fields("852") for r in xml)  # holdings travel with the record


def test_marc8_on_request(published):
    cat, server, _ = published
    cluster = next(c for c in cat.clusters.iter_live() if c.record.title == "水浒传")
    with Connection(server.url, syntax="usmarc", element_set="marc8") as conn:
        [rec] = conn.search(f"@attr 1=12 {cluster.id}").records(0, 1)
    assert rec.data[9:10] == b" " and b"\x1b$1" in rec.data  # MARC-8 (CJK in its EACC set), as leader/09 says
    assert pymarc.Record(data=rec.data, to_unicode=True)["245"]["a"] == "水浒传"


def test_updates_and_deletions_reach_zebra_on_the_next_publish(tmp_path):
    zebra_or_skip()
    cat = built_catalogue(tmp_path)
    server = None
    try:
        work = tmp_path / "zebra"
        publish(cat, work)
        server = serve(work, port=0)
        target = f"tcp:{server.host}:{server.port}/Default"
        assert hits(yaz(target, "find @attr 1=4 analects")) == 1
        assert hits(yaz(target, "find @attr 1=4 domestic")) == 1
        # lib-a retitles A-03; lib-b withdraws its only copy of The analects
        dumps = tmp_path / "dumps"
        a = [r for r in MARCReader((dumps / "lib-a.mrc").read_bytes())]
        rec = next(r for r in a if r["001"].data == "A-03")
        rec["245"]["a"] = "Personal rights and marital relations"
        (dumps / "lib-a.mrc").write_bytes(b"".join(r.as_marc() for r in a))
        b = [r for r in MARCReader((dumps / "lib-b.mrc").read_bytes()) if r["001"].data != "B-10"]
        (dumps / "lib-b.mrc").write_bytes(b"".join(r.as_marc() for r in b))
        harvest(cat, select_sources(cat), full=True)
        build(cat)
        report = publish(cat, work)
        assert report.deleted >= 1 and report.updated >= 1 and not report.full
        assert hits(yaz(target, "find @attr 1=4 analects")) == 0
        assert hits(yaz(target, "find @attr 1=4 domestic")) == 0
        assert hits(yaz(target, "find @attr 1=4 marital")) == 1
        assert publish(cat, work).updated == 0  # nothing changed: nothing to do
    finally:
        if server is not None:
            server.stop()
        cat.close()


def test_cli_publish_zebra(tmp_path):
    zebra_or_skip()
    built_catalogue(tmp_path).close()
    args = ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "var")]
    result = CliRunner().invoke(main, [*args, "publish", "zebra", "--require", "245,100|110|700"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "11 offered" in result.output and "2 below the quality bar" in result.output  # serial (710 only), pamphlet
    assert (Path(tmp_path / "var" / "zebra" / "zebra.cfg")).exists()
    bad = CliRunner().invoke(main, [*args, "publish", "zebra", "--require", "title"])
    assert bad.exit_code == 2 and "quality bar" in bad.output
