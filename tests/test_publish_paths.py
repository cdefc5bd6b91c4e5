"""One way out: every path that gives MARC — OAI-PMH, the basket, the record download, the API's and the
CLI's exports, `unioncat record` and the Zebra publish — gives the same MARC for the same item, a GBK
CNMARC member record and an unreadable member record included."""
from __future__ import annotations

import io
import re

import pymarc
import pytest
from click.testing import CliRunner
from lxml import etree

from harvester.raw import RawRecord
from peers.provider_fixtures import app_for, built_catalogue
from peers.zebra import zebra_or_skip
from publish.feed import Published
from publish.marc import item_marc, record_output
from publish.zebra import publish
from unioncat.cli import main

KEY = "k-" + "7" * 30
BROKEN = b"00042nam  2200025   4500\x1eno directory here\x1d"  # a leader that promises what is not there


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The test consortium with one member record damaged after the build: the base of a shared cluster."""
    root = tmp_path_factory.mktemp("paths")
    cat = built_catalogue(root)
    shared = next(c for c in cat.clusters.iter_live() if len(c.sources) == 3)
    base = next(c for c in cat.clusters.iter_live() if len(c.sources) == 2)
    cat.raw.apply([RawRecord(source=base.record.source, local_id=base.record.local_id, payload=BROKEN,
                             syntax="iso2709", format="marc21")])
    client = app_for(cat, API_KEYS=[KEY]).test_client()
    yield cat, client, shared, base
    cat.close()


def fields(record: pymarc.Record) -> list[tuple]:
    """What a record says, whatever the syntax it travelled in (leaders differ only in lengths)."""
    return [str(record.leader)[5:9]] + [
        (f.tag, f.data) if f.control_field else (f.tag, f.indicator1, f.indicator2, [tuple(s) for s in f.subfields])
        for f in record.fields]


def from_iso(data: bytes) -> list[pymarc.Record]:
    return list(pymarc.MARCReader(io.BytesIO(data), to_unicode=True, force_utf8=True))


def from_xml(data: bytes) -> list[pymarc.Record]:
    return pymarc.parse_xml_to_array(io.BytesIO(data))


def oai(client, identifier: str, prefix: str) -> pymarc.Record:
    root = etree.fromstring(client.get(f"/oai?verb=GetRecord&identifier=oai:unioncat:{identifier}"
                                       f"&metadataPrefix={prefix}").data)
    [record] = root.iterfind(".//{http://www.loc.gov/MARC21/slim}record")
    return from_xml(b"<collection>" + etree.tostring(record) + b"</collection>")[0]


def exported(client, spec: str, control: str) -> list[pymarc.Record]:
    """The record with 001 ``control`` from the API's ISO 2709 and MARCXML exports of set ``spec``."""
    got = []
    for fmt, read in (("iso2709", from_iso), ("marcxml", from_xml)):
        data = client.get(f"/api/v1/export?set={spec}&format={fmt}", headers={"X-API-Key": KEY}).data
        got += [r for r in read(data) if r["001"].data == control]
    return got


def cli_export(cat, tmp_path, spec: str, control: str) -> list[pymarc.Record]:
    args = ["--sources", str(cat.settings.sources_path), "--data", str(cat.settings.data_dir)]
    out = tmp_path / f"{spec.replace(':', '-')}.mrc"
    result = CliRunner().invoke(main, [*args, "export", "--set", spec, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return [r for r in from_iso(out.read_bytes()) if r["001"].data == control]


def test_a_merged_item_is_the_same_marc_on_every_path(env, tmp_path):
    cat, client, shared, _base = env
    want = fields(item_marc(Published(cat.engine).merged_item(shared.id)))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/basket").text).group(1)
    client.post("/basket/add", data={"id": shared.id, "csrf_token": token})
    got = [oai(client, shared.id, "marcxml"),
           *from_iso(client.get(f"/record/{shared.id}/export.mrc").data),
           *from_xml(client.get(f"/record/{shared.id}/export.xml").data),
           *[r for r in from_iso(client.get("/basket/export.mrc").data) if r["001"].data == shared.id],
           *exported(client, "merged", shared.id), *cli_export(cat, tmp_path, "merged", shared.id)]
    assert len(got) == 7 and all(fields(r) == want for r in got)
    assert {f["a"] for f in got[0].get_fields("852")} == {"cn", "lib-a", "lib-b"}


def test_a_gbk_cnmarc_member_is_the_same_unicode_unimarc_on_every_path(env, tmp_path):
    cat, client, shared, _base = env
    local_id = next(l for s, l in shared.members if s == "cn")
    item = Published(cat.engine).member_item("cn", local_id)
    want = item_marc(item)
    assert want["200"]["a"] and want["100"]["a"][26:28] == "50"          # decoded from GBK, declared Unicode
    assert [f["a"] for f in want.get_fields("035") if f["a"].startswith("(UNIONCAT)")] == [f"(UNIONCAT){shared.id}"]
    got = [oai(client, f"cn:{local_id}", "unimarc"),
           *from_iso(client.get(f"/record/{shared.id}/export.mrc?member=cn:{local_id}").data),
           *from_xml(client.get(f"/record/{shared.id}/export.xml?member=cn:{local_id}").data),
           *exported(client, "members:cn", local_id), *cli_export(cat, tmp_path, "members:cn", local_id),
           *[r for r in from_xml(record_output(cat, shared.id, "marcxml")) if r["001"].data == local_id],
           *[r for r in from_iso(record_output(cat, shared.id, "marc")) if r["001"].data == local_id]]
    assert len(got) == 8 and all(fields(r) == fields(want) for r in got)


def test_record_output_reads_a_gbk_cnmarc_member_where_the_old_cli_failed(env):
    cat, _client, _shared, _base = env
    cluster = next(c for c in cat.clusters.iter_live() if c.sources == ["cn"])
    [(source, local_id)] = cluster.members
    with pytest.raises(UnicodeDecodeError):  # the payload is GBK, as the member sent it
        cat.raw.get(source, local_id).record.payload.decode("utf-8")
    xml = record_output(cat, cluster.id, "marcxml").decode("utf-8")
    assert "水浒传" in xml and xml.count("<record") == 1
    [back] = from_iso(record_output(cat, cluster.id, "marc"))
    assert back["200"]["a"] == "水浒传"
    with pytest.raises(LookupError):
        record_output(cat, "no-such-cluster", "marc")


def test_an_unreadable_member_is_rebuilt_from_its_model_on_every_path(env, tmp_path):
    cat, client, _shared, base = env
    source, local_id = base.record.source, base.record.local_id
    item = Published(cat.engine).member_item(source, local_id)
    want = item_marc(item, cat.records)
    assert want["001"].data == local_id and want["245"]["a"].startswith(base.record.title)   # from the model
    assert f"(UNIONCAT){base.id}" in {f["a"] for f in want.get_fields("035")}
    mrc = client.get(f"/record/{base.id}/export.mrc?member={source}:{local_id}")
    assert mrc.status_code == 200                                               # no 404 any more
    page = client.get(f"/record/{base.id}/member/{source}/{local_id}")
    assert page.status_code == 200 and base.record.title.split()[-1] in page.text
    got = [oai(client, f"{source}:{local_id}", "marcxml"), *from_iso(mrc.data),
           *from_xml(client.get(f"/record/{base.id}/export.xml?member={source}:{local_id}").data),
           *exported(client, f"members:{source}", local_id), *cli_export(cat, tmp_path, f"members:{source}", local_id),
           *[r for r in from_xml(record_output(cat, base.id, "marcxml")) if r["001"].data == local_id]]
    assert len(got) == 7 and all(fields(r) == fields(want) for r in got)
    # its cluster, whose display record it was, falls back to the model the same way on every path
    merged = item_marc(Published(cat.engine).merged_item(base.id))
    assert merged["001"].data == base.id and merged["245"]["a"].startswith(base.record.title)
    assert fields(oai(client, base.id, "marcxml")) == fields(merged)
    assert all(fields(r) == fields(merged) for r in exported(client, "merged", base.id))


def test_zebra_offers_the_same_marc_with_its_005(env, tmp_path):
    zebra_or_skip()
    cat, _client, shared, base = env
    publish(cat, tmp_path / "zebra")
    offered = {r["001"].data: r for r in from_xml((tmp_path / "zebra" / "batches" / "update.xml").read_bytes())}
    published = Published(cat.engine)
    for cluster_id in (shared.id, base.id):
        record = offered[cluster_id]
        assert re.fullmatch(r"\d{14}\.0", record["005"].data)
        record.remove_fields("005")
        assert fields(record) == fields(item_marc(published.merged_item(cluster_id)))
