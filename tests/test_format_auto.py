"""A source that does not say its ``format`` is ``auto``: each record is read as MARC 21 or as
UNIMARC/CNMARC by its own tags, so a CNMARC member without ``format:`` is no longer quarantined
record by record as "declared MARC 21".  An explicit declaration still wins, and a record that
contradicts it is still quarantined with the evidence."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from consortium.load import parse_sources
from demo.cnmarc import to_cnmarc
from harvester.raw import RawRecord
from marc_fixtures import make_record
from normaliser import normalise
from normaliser.errors import RecordError
from unioncat.cli import main


def _book(control: str, title: str, author: str, isbn: str | None, year: str):
    rec = make_record(control, title=title, author=author, isbn=isbn, year=year)
    rec.leader = "00000nam a2200000 a 4500"
    return rec


BOOKS = [_book("B-1", "红楼梦", "曹雪芹", "9787020002207", "1982"),
         _book("B-2", "中国历史地图集", "谭其骧", "9787503118555", "1996")]


def _source(**extra) -> dict:
    return {"id": "cn", "name": "Huiwen Library", "region": "Suzhou", "protocol": "file", "path": "dumps/cn.iso",
            **extra}


def test_a_source_without_format_is_auto(tmp_path: Path):
    sf = parse_sources({"consortium": {"name": "X"}, "sources": [_source(), _source(id="koha", ils="koha",
                                                                                    base_url="http://k.example")]},
                       tmp_path / "sources.yaml")
    assert [s.format for s in sf.sources] == ["auto", "auto"]  # an ILS preset does not pretend to know either


@pytest.mark.parametrize("fmt", [None, "auto"])
def test_auto_reads_cnmarc_and_marc21_by_their_tags(fmt):
    cn = normalise(RawRecord(source="cn", local_id="CN1", payload=to_cnmarc(BOOKS[0], "CN1", library="NJU"),
                             syntax="iso2709", format=fmt))
    west = normalise(RawRecord(source="cn", local_id="B-1", payload=BOOKS[0].as_marc(), syntax="iso2709", format=fmt))
    assert cn.record_format in ("unimarc", "cnmarc") and west.record_format == "marc21"
    assert cn.title == west.title == "红楼梦"


def test_a_record_contradicting_an_explicit_declaration_is_still_quarantined():
    with pytest.raises(RecordError, match="declared MARC 21 looks like UNIMARC"):
        normalise(RawRecord(source="cn", local_id="CN1", payload=to_cnmarc(BOOKS[0], "CN1"), syntax="iso2709",
                            format="marc21"))


@pytest.mark.parametrize("declared, quarantined", [({}, 0), ({"format": "marc21"}, 2)])
def test_a_cnmarc_member_without_format_is_harvested_whole(tmp_path: Path, declared: dict, quarantined: int):
    (tmp_path / "dumps").mkdir()
    (tmp_path / "dumps" / "cn.iso").write_bytes(b"".join(to_cnmarc(b, f"CN{i}", library="NJU")
                                                         for i, b in enumerate(BOOKS)))
    sources = {"consortium": {"name": "auto test"}, "sources": [_source(**declared)]}
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")

    def cli(*args: str):
        result = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data",
                                           str(tmp_path / "var"), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    cli("run")
    cn = json.loads(cli("quality", "--json").stdout)["cn"]
    assert cn["records"] == len(BOOKS) - quarantined and cn["quarantined"] == quarantined
    if quarantined:
        (reason,) = cn["quarantined_by_reason"]  # one category (digits folded), with the evidence
        assert reason.startswith("normalise: record declared MARC") and "looks like UNIMARC" in reason
    else:
        assert set(cn["record_formats"]) <= {"unimarc", "cnmarc"}
