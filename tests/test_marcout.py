"""MARC out: member records decoded and re-encoded, merged MARC 21 for clusters, the writers."""
from __future__ import annotations

import io
import json

import pymarc
import pytest
from pymarc import Field, Indicators, Subfield

from publish.marcout import member_family, member_marc, merged_marc, record_to_marc21, to_dc
from publish.writers import to_iso2709, to_marc_json, to_marcxml
from dedupe.model import Cluster
from consortium.presets import HOLDINGS_PRESETS
from harvester.raw import RawRecord
from marc_fixtures import iso2709, make_record, marcxml
from normaliser import normalise
from normaliser.errors import RecordError
from demo.cnmarc import to_cnmarc

HOLDINGS_949 = Field("949", Indicators(" ", " "), [Subfield("l", "MAIN"), Subfield("a", "QA76 .K5")])


def _raw(payload: bytes, source="nju", local_id="1", syntax="iso2709", fmt="marc21") -> RawRecord:
    return RawRecord(source=source, local_id=local_id, payload=payload, syntax=syntax, format=fmt)


def _chinese_cnmarc() -> bytes:
    rec = make_record("c1", title="中国历史", author="王, 伟", isbn="9787101003048", year="2015")
    return to_cnmarc(rec, "c1", library="NJUST", accession="A001")


def _parse_iso(data: bytes) -> pymarc.Record:
    return next(iter(pymarc.MARCReader(io.BytesIO(data), to_unicode=True, force_utf8=True)))


def test_member_marc21_from_marc8_comes_out_utf8():
    # MARC-8 0xE2 is a combining acute written before its letter; same length as the placeholder
    payload = iso2709(make_record("m1", title="CafXe sociXetXe", leader_9=" ")).replace(b"X", b"\xe2")
    out = member_marc(_raw(payload))
    assert str(out.leader)[9] == "a"
    back = _parse_iso(to_iso2709(out))
    assert back["245"]["a"] == "Café société"
    assert back["001"].data == "m1"


def test_member_marcxml_round_trips_through_every_writer():
    source = make_record("x1", title="Data & <Structures>", isbn="0-262-03384-4", extra=[HOLDINGS_949])
    out = member_marc(_raw(marcxml(source), syntax="marcxml"))
    assert member_family(_raw(marcxml(source), syntax="marcxml", fmt="auto")) == "marc21"
    xml_back = pymarc.parse_xml_to_array(io.BytesIO(to_marcxml([out, out])))
    assert len(xml_back) == 2 and xml_back[0]["245"]["a"] == "Data & <Structures>"
    json_back = next(iter(pymarc.JSONReader(json.dumps(to_marc_json(out)))))
    assert json_back["245"]["a"] == "Data & <Structures>" and json_back["949"]["a"] == "QA76 .K5"


def test_member_cnmarc_gbk_is_decoded_and_declared_unicode():
    raw = _raw(_chinese_cnmarc(), source="njust", local_id="c1", fmt="cnmarc")
    assert member_family(raw) == "unimarc"
    out = member_marc(raw)
    assert out["200"]["a"] == "中国历史"
    assert out["100"]["a"][26:28] == "50"
    back = _parse_iso(to_iso2709(out))
    assert back["200"]["a"] == "中国历史"
    assert member_family(_raw(to_iso2709(out), fmt="auto")) == "unimarc"


def test_dublin_core_and_deleted_members_are_refused_clearly():
    dc = (b'<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
          b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T</dc:title></oai_dc:dc>')
    with pytest.raises(RecordError, match="Dublin Core"):
        member_marc(_raw(dc, syntax="xml", fmt="oai_dc"))
    with pytest.raises(RecordError, match="deleted"):
        member_marc(RawRecord(source="a", local_id="1", deleted=True))


def _cluster_from(raws: list[RawRecord], holdings=("generic949",)) -> Cluster:
    from dedupe.merge import merge_records

    mappings = [HOLDINGS_PRESETS[h] for h in holdings]
    records = [normalise(r, mappings) for r in raws]
    return Cluster(id="c000042", record=merge_records(records), members=[r.key for r in records])


def test_merged_marc_keeps_base_fields_and_carries_every_members_holdings():
    a = make_record("a1", title="Networks", isbn="9780262033848", extra=[
        HOLDINGS_949, Field("650", Indicators(" ", "0"), [Subfield("a", "Computer networks.")])])
    b = make_record("b7", title="Networks", isbn="0262033844", extra=[
        Field("949", Indicators(" ", " "), [Subfield("l", "SCI"), Subfield("a", "TK5105 .N4")]),
        Field("020", Indicators(" ", " "), [Subfield("a", "9780262533058")])])
    cluster = _cluster_from([_raw(iso2709(a), "nju", "a1"), _raw(iso2709(b), "seu", "b7")])
    base = next(r for r in (_raw(iso2709(a), "nju", "a1"), _raw(iso2709(b), "seu", "b7"))
                if (r.source, r.local_id) == (cluster.record.source, cluster.record.local_id))
    out = _parse_iso(to_iso2709(merged_marc(cluster, base, organisation="JALIS")))
    assert out["001"].data == "c000042" and out["003"].data == "JALIS"
    assert {f["a"] for f in out.get_fields("035")} >= {"(nju)a1", "(seu)b7"}
    assert not out.get_fields("949")
    f852 = {(f["a"], f["h"]) for f in out.get_fields("852")}
    assert f852 == {("nju", "QA76 .K5"), ("seu", "TK5105 .N4")}
    isbns = {f["a"] for f in out.get_fields("020")}
    assert "9780262533058" in isbns or "0262533057" in isbns
    assert out["245"]["a"].startswith("Networks")
    tags = [f.tag for f in out.fields]
    assert tags == sorted(tags, key=lambda t: (not t.isdigit(), t))


def test_merged_marc_from_cnmarc_base_is_built_from_the_model():
    raw = _raw(_chinese_cnmarc(), source="njust", local_id="c1", fmt="cnmarc")
    cluster = _cluster_from([raw], holdings=("cnmarc905",))
    out = _parse_iso(to_iso2709(merged_marc(cluster, raw)))
    assert out["001"].data == "c000042"
    assert out["245"]["a"].startswith("中国历史")
    assert out["020"]["a"] == "9787101003048"
    assert out["264"]["c"] == "2015"
    assert [f["a"] for f in out.get_fields("852")] == ["njust"]
    assert out.leader[6:8] == "am" and out["008"].data[7:11] == "2015"


def test_record_to_marc21_without_a_raw_record_and_dublin_core():
    cluster = _cluster_from([_raw(iso2709(make_record("z", title="Alone", author="Solo, Han")), "nju", "z")])
    marc = record_to_marc21(cluster.record)
    assert marc["100"]["a"] == "Solo, Han" and marc["245"].indicator1 == "1"
    dc = to_dc(cluster.record)
    assert dc["title"] == ["Alone"] and dc["creator"] == ["Solo, Han"] and dc["date"] == ["2020"]
