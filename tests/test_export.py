"""`unioncat export`: sets as ISO 2709, MARCXML or JSON lines, gzip, incremental, and resumable."""
from __future__ import annotations

import gzip
import io
import json

import pymarc
import pytest
from click.testing import CliRunner
from lxml import etree

import publish.export
from publish.writers import COLLECTION_HEAD, COLLECTION_TAIL, MARC_NS, marcxml_record, to_iso2709
from peers.provider_fixtures import built_catalogue, cat  # noqa: F401 - fixture
from unioncat.cli import main


def run(root, *args, code=0):
    result = CliRunner().invoke(main, ["--sources", str(root / "sources.yaml"), "--data", str(root / "var"), *args])
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def root(cat):
    return cat.settings.sources_path.parent


def test_whole_catalogue_in_each_format(cat, root, tmp_path):
    run(root, "export", "--format", "iso2709", "-o", str(tmp_path / "all.mrc.gz"))
    records = list(pymarc.MARCReader(gzip.decompress((tmp_path / "all.mrc.gz").read_bytes()), to_unicode=True))
    assert sorted(r["001"].data for r in records) == sorted(c.id for c in cat.clusters.iter_live())
    run(root, "export", "--format", "marcxml", "--set", "library:cn", "-o", str(tmp_path / "cn.xml"))
    xml = pymarc.parse_xml_to_array(str(tmp_path / "cn.xml"))
    assert len(xml) == sum(1 for c in cat.clusters.iter_live() if "cn" in c.sources)
    lines = run(root, "export", "--format", "jsonl", "--member", "lib-a").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == cat.records.count("lib-a")
    assert all(r["cluster_id"] == cat.members.cluster_of("lib-a", r["local_id"]) for r in rows)
    assert "members:cn" in run(root, "export", "--list-sets").stdout
    assert "no set" in run(root, "export", "--set", "library:nobody", code=2).output


def test_an_interrupted_export_resumes_to_the_same_file(cat, root, tmp_path, monkeypatch):
    whole = tmp_path / "whole.xml.gz"
    run(root, "export", "--format", "marcxml", "--batch", "3", "-o", str(whole))
    real = publish.export.gzip_chunks

    def dies_after_two(chunks):  # fault injection: the process is killed after two chunks
        for n, chunk in enumerate(real(chunks)):
            if n == 2:
                raise KeyboardInterrupt
            yield chunk

    part = tmp_path / "part.xml.gz"
    monkeypatch.setattr("unioncat.cli.publish.gzip_chunks", dies_after_two)
    run(root, "export", "--format", "marcxml", "--batch", "3", "-o", str(part), code=1)
    assert (tmp_path / "part.xml.gz.progress").exists()
    monkeypatch.undo()
    assert "resuming" in run(root, "export", "--format", "marcxml", "--batch", "3", "-o", str(part),
                             "--resume").output
    assert gzip.decompress(part.read_bytes()) == gzip.decompress(whole.read_bytes())
    assert not (tmp_path / "part.xml.gz.progress").exists()
    assert len(pymarc.parse_xml_to_array(io.BytesIO(gzip.decompress(part.read_bytes())))) == cat.clusters.count()


def test_incremental_export_carries_deletions(tmp_path):
    up = built_catalogue(tmp_path)
    try:
        last = up.clusters.changed_since(0)
        seq = max(s for s, _, _ in last)
        gone = next(c for c in up.clusters.iter_live() if c.record.title == "The analects")
        up.clusters.save([], deleted=[gone.id])
        lines = run(tmp_path, "export", "--format", "jsonl", "--after", str(seq)).stdout.splitlines()
        assert [json.loads(l) for l in lines] == [
            {"kind": "merged", "id": gone.id, "seq": seq + 1, "updated": json.loads(lines[0])["updated"],
             "deleted": True}]
        marc = run(tmp_path, "export", "--after", str(seq)).stdout_bytes
        [deleted] = list(pymarc.MARCReader(marc))
        assert deleted.leader[5] == "d" and deleted["001"].data == gone.id
    finally:
        up.close()


def test_a_control_character_in_a_subfield_code_is_replaced_not_dropped():
    rec = pymarc.Record()
    rec.add_field(pymarc.Field("001", data="x1"))
    rec.add_field(pymarc.Field("245", pymarc.Indicators("1", "0"),
                               [pymarc.Subfield("a", "Title"), pymarc.Subfield("\x01", "junk")]))
    el = marcxml_record(rec)
    subfields = [(s.get("code"), s.text) for s in el.iter(f"{{{MARC_NS}}}subfield")]
    assert subfields == [("a", "Title"), ("?", "junk")]


def test_a_control_character_as_an_indicator_keeps_the_field():
    """Issue 19 item 8: a 245 whose indicator is a control character went out without its title."""
    rec = pymarc.Record()
    rec.add_field(pymarc.Field("001", data="x1"))
    rec.add_field(pymarc.Field("245", pymarc.Indicators("\x1f", "\x00"),
                               [pymarc.Subfield("a", "Ti\x0btle\ud800"), pymarc.Subfield("c", "by")]))
    rec.add_field(pymarc.Field("5\x010", pymarc.Indicators(" ", " "), [pymarc.Subfield("a", "note")]))
    text = etree.tostring(marcxml_record(rec))
    back = pymarc.parse_xml_to_array(io.BytesIO(COLLECTION_HEAD + text + COLLECTION_TAIL))[0]
    [title] = back.get_fields("245")
    assert (title.indicator1, title.indicator2) == (" ", " ")
    assert title.get_subfields("a") == ["Ti\ufffdtle\ufffd"] and title.get_subfields("c") == ["by"]
    assert back.get_fields("5?0")[0].get_subfields("a") == ["note"]
    assert len(back.fields) == len(rec.fields)


def test_a_data_field_under_a_control_tag_keeps_its_subfields():
    """A flipped tag byte can make a data field ``000``; every reader takes 00X for a control field."""
    rec = pymarc.Record()
    rec.add_field(pymarc.Field("001", data="x1"))
    damaged = pymarc.Field("010", pymarc.Indicators("1", "0"),
                           [pymarc.Subfield("a", "kept"), pymarc.Subfield("b", "too")])
    damaged.tag = "000"  # as the decoder leaves it: a data field whose tag byte was flipped
    rec.add_field(damaged)
    back = pymarc.parse_xml_to_array(io.BytesIO(COLLECTION_HEAD + etree.tostring(marcxml_record(rec))
                                                + COLLECTION_TAIL))[0]
    iso = next(iter(pymarc.MARCReader(io.BytesIO(to_iso2709(rec)), to_unicode=True)))
    for out in (back, iso):
        [field] = out.get_fields("?00")
        assert field.get_subfields("a", "b") == ["kept", "too"]
