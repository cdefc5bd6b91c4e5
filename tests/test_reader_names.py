"""Chinese names for the consortium, its regions, groups and members (``name_zh`` in sources.yaml), and the
Chinese UI showing them; the English UI keeps the English names."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from test_web import SOURCES, env, make_app  # noqa: F401  (test_web's module catalogue)

from consortium.config import ConfigError, display_name
from consortium.load import load_sources, parse_sources

ZH = {"consortium": "测试图书馆联盟", "pku": "北京大学图书馆", "thu": "清华大学图书馆", "fdu": "复旦大学图书馆",
      "Beijing": "北京", "Shanghai": "上海", "group": "京沪联合体"}


def chinese_sources():
    data = copy.deepcopy(SOURCES)
    data["consortium"]["name_zh"] = ZH["consortium"]
    for s in data["sources"]:
        s["name_zh"] = ZH[s["id"]]
    data["regions"] = [{"name": "Beijing", "name_zh": ZH["Beijing"]}, {"name": "Shanghai", "name_zh": ZH["Shanghai"]}]
    data["groups"] = [{"id": "jinghu", "name": "Beijing-Shanghai group", "name_zh": ZH["group"],
                       "members": ["pku", "fdu"]}]
    return parse_sources(data)


def test_name_zh_is_read_everywhere():
    sources = chinese_sources()
    assert sources.consortium.name_zh == ZH["consortium"]
    assert [s.name_zh for s in sources.sources] == [ZH["pku"], ZH["thu"], ZH["fdu"]]
    assert sources.regions == ("Beijing", "Shanghai") and sources.region_name("Beijing", "zh") == "北京"
    assert sources.region_name("Beijing", "en") == "Beijing" and sources.region_name("Nowhere", "zh") == "Nowhere"
    assert display_name(sources.groups[0], "zh") == ZH["group"]
    pku = sources.source("pku")
    for locale in ("zh", "zh_CN", "zh-Hans-CN", "ZH"):
        assert display_name(pku, locale) == ZH["pku"]
    for locale in ("en", None, "", "ja"):
        assert display_name(pku, locale) == "Peking University Library"


def test_without_name_zh_the_name_serves_both_languages():
    plain = parse_sources(copy.deepcopy(SOURCES))
    assert plain.source("pku").name_zh is None and display_name(plain.source("pku"), "zh") == plain.source("pku").name
    assert display_name(plain.consortium, "zh") == "Test Library Consortium"


@pytest.mark.parametrize("where, value, key", [("consortium", 7, "consortium.name_zh"),
                                               ("source", "  ", "name_zh"),
                                               ("regions", [{"name": "Beijing", "name_zh": ["x"]}, "Shanghai"],
                                                "regions.Beijing.name_zh"),
                                               ("regions", [{"name": "Beijing", "zh": "北京"}, "Shanghai"], "regions")])
def test_bad_name_zh_names_the_key(where, value, key):
    data = copy.deepcopy(SOURCES)
    if where == "consortium":
        data["consortium"]["name_zh"] = value
    elif where == "source":
        data["sources"][0]["name_zh"] = value
    else:
        data["regions"] = value
    with pytest.raises(ConfigError) as err:
        parse_sources(data)
    assert err.value.key == key


def test_example_sources_yaml_has_chinese_names():
    sources = load_sources(Path(__file__).resolve().parents[1] / "sources.yaml")
    assert all(s.name_zh for s in sources.sources) and sources.consortium.name_zh
    assert set(sources.region_names_zh) == set(sources.regions)


def test_chinese_ui_shows_chinese_names(env):  # noqa: F811
    client = make_app(env, SOURCES=chinese_sources()).test_client()
    zh = client.get("/search?q=history&lang=zh").text
    assert ZH["consortium"] in zh and ZH["thu"] in zh and ZH["Beijing"] in zh and ZH["group"] in zh
    data = client.get("/search.json?q=history&lang=zh").get_json()
    assert {v["label"] for v in data["facets"]["library"]} == {ZH["thu"], ZH["pku"]}
    assert data["hits"][0]["holdings"][0]["library"] == ZH["thu"]
    record = client.get("/record/c-en-china?lang=zh").text
    assert ZH["thu"] in record and ZH["pku"] in record and "Tsinghua University Library" not in record
    en = client.get("/search?q=history&lang=en").text
    assert "Test Library Consortium" in en and ZH["consortium"] not in en and ZH["thu"] not in en
