"""sources.yaml: the documented keys, presets, and errors that say where and what."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from consortium.config import ConfigError
from consortium.load import load_sources, parse_sources
from consortium.presets import HOLDINGS_PRESETS, ILS_PRESETS

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """
consortium: {name: Demo Consortium, ill_url: "https://ill.example.org/openurl", ask_url: "https://ask.example.org/?q={citation}", login_url: "https://uas.example.org/login"}
sources:
  - {id: lib-a, name: Library A, region: Nanjing, protocol: file, path: dumps/lib-a.mrc, format: marc21, opac_url: "https://opac.a.example.edu.cn/record/{local_id}"}
  - {id: lib-b, name: Library B, region: Suzhou, protocol: oai, url: "http://127.0.0.1:8081/oai", metadata_prefix: marcxml, set: books, format: marc21}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_keys_keep_their_names(tmp_path):
    sf = load_sources(write(tmp_path, MINIMAL))
    assert sf.consortium.name == "Demo Consortium"
    assert sf.consortium.ill_url == "https://ill.example.org/openurl"
    assert sf.consortium.ask_url == "https://ask.example.org/?q={citation}"
    assert sf.consortium.login_url == "https://uas.example.org/login"
    a, b = sf.sources
    assert (a.id, a.protocol, a.format, a.region) == ("lib-a", "file", "marc21", "Nanjing")
    assert a.path == (tmp_path / "dumps" / "lib-a.mrc").resolve()  # relative to sources.yaml
    assert a.opac_link("ocm123") == "https://opac.a.example.edu.cn/record/ocm123"
    assert (b.url, b.metadata_prefix, b.set) == ("http://127.0.0.1:8081/oai", "marcxml", "books")
    assert sf.regions == ("Nanjing", "Suzhou")
    assert a.enabled and a.schedule is None
    assert (b.options["deadline"], b.options["max_page_mb"]) == (120.0, 64.0)  # OAI-PMH response limits


@pytest.mark.parametrize("mutate, source, key, expected", [
    (lambda d: d["sources"][1].update(protocol="ftp"), "lib-b", "protocol", "expected one of oai, file, z3950, sru"),
    (lambda d: d["sources"][1].pop("url"), "lib-b", "url", "needs the base URL"),
    (lambda d: d["sources"][0].pop("path"), "lib-a", "path", "relative to sources.yaml"),
    (lambda d: d["sources"][0].update(format="pdf"), "lib-a", "format", "expected one of marc21"),
    (lambda d: d["sources"][0].update(holdings="nope"), "lib-a", "holdings", "unknown holdings preset"),
    (lambda d: d["sources"][0].update(holdings={"tag": "95", "barcode": "p"}), "lib-a", "holdings",
     "three-character MARC tag"),
    (lambda d: d["sources"][0].update(schedule="sometimes"), "lib-a", "schedule", "interval such as 6h"),
    (lambda d: d["sources"][0].update(opac_url="https://x/{marc_no}"), "lib-a", "opac_url", "bad placeholder"),
    (lambda d: d["sources"][0].update(colour="red"), "lib-a", "colour", "unknown key 'colour'; expected one of"),
    (lambda d: d["sources"][0].update(pth="x.mrc"), "lib-a", "pth", "unknown key 'pth': did you mean `path`?"),
    (lambda d: d["sources"][1].update(metadataprefix="marc21"), "lib-b", "metadataprefix",
     "did you mean `metadata_prefix`?"),
    (lambda d: d["sources"][1].update(id="lib-a"), "lib-a", "id", "duplicate source id"),
    (lambda d: d["sources"][0].update(ils="libsys9"), "lib-a", "ils", "unknown ILS preset"),
    (lambda d: d["sources"][0].update(enabled="yes"), "lib-a", "enabled", "true or false"),
    (lambda d: d["sources"][0].update(timeout=-1), "lib-a", "timeout", "number ≥ 0"),
    (lambda d: d["sources"][1].update(deadline=0), "lib-b", "deadline", "seconds for a whole response"),
    (lambda d: d["sources"][1].update(max_page_mb="lots"), "lib-b", "max_page_mb", "megabytes per page"),
])
def test_errors_name_the_file_the_source_and_the_key(tmp_path, mutate, source, key, expected):
    data = yaml.safe_load(MINIMAL)
    mutate(data)
    path = write(tmp_path, yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ConfigError) as info:
        load_sources(path)
    message = str(info.value)
    assert str(path) in message and f"source {source!r}" in message and f"key {key!r}" in message
    assert expected in message


def test_file_level_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'source': did you mean `sources`\?"):
        load_sources(write(tmp_path, MINIMAL.replace("sources:", "source:")))
    with pytest.raises(ConfigError, match="file not found"):
        load_sources(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_sources(write(tmp_path, "sources: [\n"))
    with pytest.raises(ConfigError, match="key 'sources'"):
        load_sources(write(tmp_path, "consortium: {name: X}\nsources: []\n"))
    twice = MINIMAL.replace("format: marc21, opac_url", "format: marc21, path: dumps/other.mrc, opac_url")
    with pytest.raises(ConfigError, match=r"key\(s\) path given twice in one mapping(.|\n)*line 4"):
        load_sources(write(tmp_path, twice))
    with pytest.raises(ConfigError, match="key 'consortium'"):
        load_sources(write(tmp_path, "sources: [{id: a}]\n"))
    with pytest.raises(ConfigError, match="region 'Nanjing' is not in the top-level 'regions'"):
        load_sources(write(tmp_path, MINIMAL + "regions: [Suzhou]\n"))
    with pytest.raises(ConfigError, match="unknown source"):
        load_sources(write(tmp_path, MINIMAL + "groups: [{id: g, members: [lib-a, lib-z]}]\n"))


def test_presets_fill_in_and_sources_override(tmp_path):
    data = yaml.safe_load(MINIMAL)
    data["sources"].append({"id": "koha", "name": "K", "region": "Wuxi", "ils": "koha",
                            "base_url": "https://koha.example.edu.cn"})
    data["sources"].append({"id": "hw", "name": "H", "region": "Wuxi", "ils": "huiwen",
                            "url": "z3950://202.119.47.8:210/libsys2000", "base_url": "http://opac.hw.example.cn:8080"})
    data["sources"].append({"id": "alma", "name": "A", "region": "Wuxi", "ils": "alma", "url": "https://x.example/view/oai/I/request",
                            "holdings": [{"preset": "alma_ava", "location": "q"}]})
    sf = parse_sources(data, tmp_path / "sources.yaml")
    koha = sf.source("koha")
    assert koha.url == "https://koha.example.edu.cn/cgi-bin/koha/oai.pl"
    assert koha.metadata_prefix == "marcxml" and koha.holdings[0].tag == "952"
    assert koha.opac_link("oai:koha.example.edu.cn:4711") == \
        "https://koha.example.edu.cn/cgi-bin/koha/opac-detail.pl?biblionumber=4711"
    hw = sf.source("hw")
    assert hw.protocol == "z3950" and hw.format == "cnmarc" and hw.options["charset"] == "gb2312"
    # Huiwen marc_no values are not stable: an ISBN search is the link that keeps working
    assert hw.opac_link("0000012345", isbn="9787020002207") == \
        "http://opac.hw.example.cn:8080/opac/openlink.php?strSearchType=isbn&strText=9787020002207"
    assert hw.opac_link("0000012345") == "http://opac.hw.example.cn:8080/opac/item.php?marc_no=0000012345"
    alma = sf.source("alma")
    assert alma.holdings[0].tag == "AVA" and alma.holdings[0].location == ("q",)


def test_every_preset_names_real_holdings_presets():
    for preset in ILS_PRESETS.values():
        for name in preset.holdings:
            assert name in HOLDINGS_PRESETS
    for required in ("marc852", "koha952", "alma_ava", "generic949", "generic999"):
        assert required in HOLDINGS_PRESETS


def test_the_repository_files_are_valid():
    sf = load_sources(REPO / "sources.yaml")
    assert len(sf.sources) >= 5 and len(sf.regions) >= 2
    assert any(s.protocol == "oai" for s in sf.sources)
    assert sf.groups and set(sf.groups[0].members) <= set(sf.by_id())


def test_documented_examples_parse():
    """docs/sources.md shows realistic entries; every YAML block in it must load."""
    text = (REPO / "docs" / "sources.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml")[1:]]
    assert len(blocks) >= 2
    ids = set()
    for block in blocks:
        data = yaml.safe_load(block)
        if "consortium" not in data:
            data = {"consortium": {"name": "Docs"}, **data}
        ids |= set(parse_sources(data, REPO / "docs" / "sources.yaml").by_id())
    for ils in ("koha", "aleph", "alma", "folio", "huiwen"):
        assert any(ils in i for i in ids), f"docs/sources.md lacks a {ils} example"


def test_a_database_in_the_url_wins_over_the_preset(tmp_path):
    data = yaml.safe_load(MINIMAL)
    data["sources"].append({"id": "hw", "name": "H", "region": "Wuxi", "ils": "huiwen",
                            "url": "z3950://127.0.0.1:8210/Default", "base_url": "http://opac.example.cn"})
    data["sources"].append({"id": "hw2", "name": "H2", "region": "Wuxi", "ils": "huiwen",
                            "url": "z3950://127.0.0.1:210", "base_url": "http://opac.example.cn"})
    sf = parse_sources(data, tmp_path / "sources.yaml")
    assert "database" not in sf.source("hw").options
    assert sf.source("hw2").options["database"] == "libsys2000"
