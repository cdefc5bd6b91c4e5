"""A small consortium with a CNMARC member (GBK, legacy export) and a MARC 21 member:
clustering across formats, search across scripts and pinyin, and ``unioncat quality``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pymarc import Field, Indicators, Subfield

from marc_fixtures import make_record
from unioncat.cli import main
from demo.cnmarc import to_cnmarc


def _book(control, title, author, isbn, year, extra=()):
    rec = make_record(control, title=title, author=author, isbn=isbn, year=year, extra=list(extra))
    rec.leader = "00000nam a2200000 a 4500"
    return rec


def _clc(value):
    return Field(tag="084", indicators=Indicators(" ", " "), subfields=[Subfield("a", value), Subfield("2", "clc")])


@pytest.fixture
def consortium(tmp_path: Path):
    (tmp_path / "dumps").mkdir()
    west = [
        _book("W-1", "红楼梦", "曹雪芹", "9787020002207", "1982", [_clc("I242.47")]),
        _book("W-2", "中国历史地图集", "谭其骧", "9787503118555", "1996"),
        _book("W-3", "A book with a bad ISBN", "Smith, J.", "978-0-00-000000-1", "2001"),
        _book("W-4", "No identifiers at all", "Doe, J.", None, "2002"),
    ]
    (tmp_path / "dumps" / "west.mrc").write_bytes(b"".join(r.as_marc() for r in west))
    cn = [to_cnmarc(west[0], "CN0001", library="NJU"),
          to_cnmarc(_book("x", "紅樓夢", "曹雪芹", None, "1990"), "CN0002", library="NJU"),   # traditional only here
          b"00042nam0 2200000   450 \x1e\x1d"]      # broken
    (tmp_path / "dumps" / "cn.iso").write_bytes(b"".join(cn))
    sources = {
        "consortium": {"name": "CN test"},
        "sources": [
            {"id": "west", "name": "Western Library", "region": "Nanjing", "protocol": "file",
             "path": "dumps/west.mrc", "format": "marc21"},
            {"id": "cn", "name": "Huiwen Library", "region": "Suzhou", "protocol": "file", "path": "dumps/cn.iso",
             "format": "cnmarc", "holdings": ["cnmarc905"]},
        ],
    }
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")
    return tmp_path


def cli(tmp_path, *args, code=0):
    result = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "var"),
                                       *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def search(tmp_path, *words):
    return json.loads(cli(tmp_path, "search", "--json", "--limit", "50", *words).stdout)


def entries(tmp_path, *words) -> list[dict]:
    """Every entry a search finds, as ``unioncat record`` gives it: each work's hit and its other editions
    (the search shows the editions of one work as one result)."""
    found = search(tmp_path, *words)
    ids = [h["id"] for h in found["hits"]] + [e["id"] for w in found["works"] for e in w["editions"]]
    return [json.loads(cli(tmp_path, "record", i).stdout) for i in ids]


def test_cnmarc_and_marc21_cluster_and_search_across_scripts(consortium):
    cli(consortium, "run")
    found = search(consortium, "红楼梦")
    assert len(found["hits"]) == 1 and found["records"] == 2      # one work, two editions
    hits = entries(consortium, "红楼梦")
    by_sources = sorted(tuple(sorted({x["source"] for x in h["holdings"]})) for h in hits)
    # the MARC 21 and CNMARC records of the same ISBN are one entry; the traditional-script record is another
    assert by_sources == [("cn",), ("cn", "west")]
    assert sorted(h["record"]["title"] for h in hits) == ["紅樓夢", "红楼梦"]
    # a search in traditional characters finds the record catalogued in simplified ones, and back
    assert [h["title"] for h in search(consortium, "中國歷史")["hits"]] == ["中国历史地图集"]
    assert len(entries(consortium, "紅樓夢")) == 2
    # pinyin finds Han titles; full-width Latin finds half-width
    assert [h["title"] for h in search(consortium, "zhong guo li shi")["hits"]] == ["中国历史地图集"]
    assert [h["title"] for h in search(consortium, "ＩＳＢＮ")["hits"]] == ["A book with a bad ISBN"]
    shared = next(h for h in found["hits"] if h["library_count"] == 2)
    cn_holding = next(x for x in shared["holdings"] if x["source"] == "cn")
    assert cn_holding["call_number"] == "I242.47/1"


def test_quality_report_per_source(consortium):
    cli(consortium, "run")
    report = json.loads(cli(consortium, "quality", "--json").stdout)
    assert sorted(report) == ["cn", "west"]
    west, cn = report["west"], report["cn"]
    assert (west["records"], west["with_invalid_isbn"], west["without_identifier"]) == (4, 1, 2)   # a bad ISBN is no id
    assert west["record_formats"] == {"marc21": 4} and cn["record_formats"] == {"cnmarc": 2}
    assert cn["records"] == 2 and cn["without_identifier"] == 1      # CN0002 was written without an ISBN
    assert cn["quarantined"] == 1 and list(cn["quarantined_by_reason"]) == [
        next(iter(cn["quarantined_by_reason"]))] and next(iter(cn["quarantined_by_reason"])).startswith("harvest: ")
    only = json.loads(cli(consortium, "quality", "cn", "--json").stdout)
    assert list(only) == ["cn"]
    text = cli(consortium, "quality").stdout
    assert "west: 4 records, 0 quarantined" in text and "with invalid ISBNs 1" in text
    cli(consortium, "quality", "nope", code=2)


def test_quality_counts_repairs_and_normalise_quarantine(consortium):
    gbk_marc21 = make_record("G-1", title="\u00e0" * 4, author=None, year="1999")
    gbk_marc21.leader = "00000nam  2200000   4500"
    payload = gbk_marc21.as_marc()
    # a MARC 21 record with leader/09 blank but GBK text, and a title-less record
    payload = payload.replace("\u00e0".encode("utf-8") * 4, "中国历史".encode("gbk"))
    no_title = make_record("G-2", title="", author=None).as_marc()
    (consortium / "dumps" / "west.mrc").write_bytes(payload + no_title)
    cli(consortium, "run")
    west = json.loads(cli(consortium, "quality", "west", "--json").stdout)["west"]
    assert west["records"] == 1 and west["with_repairs"] == 1
    assert list(west["repairs"]) == ["read as GB18030"]
    assert west["without_title"] == 1
    assert any(k.startswith("normalise: no title") for k in west["quarantined_by_reason"])
