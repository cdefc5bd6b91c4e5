"""The Chinese UI: every string translated, the committed .mo current, and pages actually in Chinese."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from test_web import env, make_app  # noqa: F401  (the module-scoped catalogue of test_web)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "i18n.py"


@pytest.fixture(scope="module")
def i18n():
    spec = importlib.util.spec_from_file_location("i18n_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_ui_string_has_a_chinese_translation_and_the_mo_is_current(i18n):
    assert [p.parent.parent.name for p in i18n.po_files()] == ["zh"]
    assert i18n.problems() == []


def test_chinese_pages_and_labels(env):  # noqa: F811
    client = make_app(env).test_client()
    html = client.get("/search?q=history&lang=zh").text
    assert '<html lang="zh-Hans">' in html and "检索联合目录" in html and "高级检索" in html
    assert "家图书馆收藏" in html and "文献类型" in html
    assert ">显示主题</a>" in html  # the subject facet's expand link
    assert client.get("/search?q=history").text.count("检索联合目录") >= 1  # the cookie remembers zh
    data = client.get("/search.json?q=history").get_json()
    assert any(v["label"] == "英文" for v in data["facets"]["language"])
    english = make_app(env).test_client()
    assert "Search the catalogue" in english.get("/", headers={"Accept-Language": "en-GB,en"}).text
    assert "检索联合目录" in english.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text


def test_error_pages_speak_the_readers_language(env):  # noqa: F811
    client = make_app(env).test_client()
    missing = client.get("/record/nope?lang=zh")
    assert missing.status_code == 404 and "未找到记录" in missing.text and "nope" in missing.text
    assert "Record not found" in client.get("/record/nope?lang=en").text
    assert client.get("/record/nope.json").get_json()["error"]["title"] == "Record not found"
