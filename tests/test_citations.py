"""Styled citations through CSL (citeproc-py and the CSL styles repository): APA, MLA, Chicago, GB/T 7714.

The expected strings are the styles' rules as their manuals print them, for
one English and one Chinese record; author names never carry life dates, in
any export.
"""
from __future__ import annotations

import re

import pytest
from catalogue_fixtures import sample_clusters
from test_web import env, make_app  # noqa: F401  (test_web's module catalogue)

from normaliser.model import Contributor, Record
from web.citations import CSL_STYLES, cite, csl_item, json_ld, to_bibtex, to_ris, without_life_dates


def ruskin() -> Record:
    return Record(source="pku", local_id="1", title="Modern painters", year=1900, publisher="G. Allen",
                  place="London", edition="New ed.", format="book", isbns=["9780306406157"],
                  contributors=[Contributor("Ruskin, John, 1819-1900.", primary=True)])


@pytest.mark.parametrize("heading, cited", [
    ("Ruskin, John, 1819-1900.", "Ruskin, John"), ("Ouyang, Hui, 1947-", "Ouyang, Hui"),
    ("曹雪芹, 1715?-1763", "曹雪芹"), ("司马迁, 前145-前86", "司马迁"), ("Smith, John, b. 1950", "Smith, John"),
    ("Confucius, 551 B.C.-479 B.C.", "Confucius"), ("Li, Bai (701-762)", "Li, Bai"),
    ("Bede, the Venerable, Saint, 673-735.", "Bede, the Venerable, Saint"),
    ("Anselm, active 12th century", "Anselm"), ("Homer.", "Homer"), ("Smith, John", "Smith, John")])
def test_life_dates_leave_cited_names(heading, cited):
    assert without_life_dates(heading) == cited


def test_the_four_styles_follow_their_manuals():
    rec = ruskin()
    assert cite([(rec, "r")], "apa") == ["Ruskin, J. (1900). Modern painters (New ed.). G. Allen."]
    # MLA and Chicago keep the given name whole (CSL ``initialize="false"``, which citeproc-py 0.11 ignores)
    assert cite([(rec, "r")], "mla") == ["Ruskin, John. Modern Painters. New ed., G. Allen, 1900."]
    assert cite([(rec, "r")], "chicago") == ["Ruskin, John. 1900. Modern Painters. New ed. G. Allen."]
    assert cite([(rec, "r")], "gbt7714") == ["[1]RUSKIN J. Modern painters. New ed. London: G. Allen, 1900."]


def test_chinese_record_in_gbt7714_keeps_han_names_whole():
    zh = next(c for c in sample_clusters() if c.id == "c-zh-history").record
    zh.contributors = [Contributor("司马迁, 前145-前86", primary=True)]
    assert csl_item(zh, "z")["author"] == [{"literal": "司马迁"}]
    assert cite([(zh, "z")], "gbt7714") == ["[1]司马迁. 中国历史. 北京: 人民文学出版社, 1998."]


def test_numbered_style_numbers_in_the_order_given_and_html_is_escaped():
    rec, other = ruskin(), ruskin()
    other.title, other.year = "Unto this last <& other essays>", 1862
    entries = cite([(rec, "a"), (other, "b")], "gbt7714", html=True)
    assert [e[:3] for e in entries] == ["[1]", "[2]"]
    assert "Unto this last &lt;&amp; other essays&gt;" in entries[1] and "<&" not in entries[1]
    assert "<i>Modern painters</i>" in cite([(rec, "a")], "apa", html=True)[0]
    with pytest.raises(KeyError):
        cite([(rec, "a")], "harvard")


def test_entries_are_kept_and_a_changed_record_or_position_is_rendered_again(monkeypatch):
    from web import citations
    rec, other = ruskin(), ruskin()
    other.title = "Unto this last"
    monkeypatch.setattr(citations, "_entries", citations._Entries(100))  # cold, as after a restart
    cold = cite([(rec, "a"), (other, "b")], "gbt7714")
    assert len(citations._entries._map) == 2
    assert cite([(rec, "a"), (other, "b")], "gbt7714") == cold and len(citations._entries._map) == 2
    # the same records in another order: numbers follow the new order, texts are the same
    assert cite([(other, "b"), (rec, "a")], "gbt7714") == ["[1]" + cold[1][3:], "[2]" + cold[0][3:]]
    rec.year = 1906                                      # a record changed since: its entry is new
    assert "1906" in cite([(rec, "a")], "apa")[0] and "1900" in cite([(ruskin(), "a")], "apa")[0]
    monkeypatch.setattr(citations, "_entries", citations._Entries(2))    # bounded: the least recently used go
    cite([(rec, "a"), (other, "b"), (ruskin(), "c")], "mla")
    assert len(citations._entries._map) == 2


def test_no_export_carries_life_dates():
    rec = ruskin()
    assert "AU  - Ruskin, John\r\n" in to_ris(rec)
    assert "author = {Ruskin, John}" in to_bibtex(rec, "ruskin1900")
    assert json_ld(rec, "https://x/record/1", [])["author"] == [{"@type": "Person", "name": "Ruskin, John"}]
    assert csl_item(rec, "r")["author"] == [{"family": "Ruskin", "given": "John"}]


def test_an_ebook_is_cited_with_its_own_url():
    rec = ruskin()
    rec.format, rec.urls = "ebook", ["https://books.example.org/ruskin"]
    assert csl_item(rec, "r")["URL"] == "https://books.example.org/ruskin"
    assert cite([(rec, "r")], "gbt7714") == [
        "[1]RUSKIN J. Modern painters[M/OL]. New ed. London: G. Allen, 1900. https://books.example.org/ruskin."]
    rec.format = "book"
    assert "URL" not in csl_item(rec, "r")


def test_record_and_basket_citation_routes(env):  # noqa: F811
    client = make_app(env).test_client()
    data = client.get("/record/c-en-china/cite.json").get_json()
    assert data["id"] == "c-en-china" and list(data["styles"]) == list(CSL_STYLES)
    apa = data["styles"]["apa"]
    assert apa["label"] == "APA" and apa["text"][0].startswith("Smith, J., & Müller, A. (2010). The history of China")
    assert "<i>The history of China: an introduction</i>" in apa["html"][0]
    text = client.get("/record/c-en-china/cite/mla.txt")
    assert text.mimetype == "text/plain" and text.text.startswith("Smith, John, and Anna Müller.")
    assert "record/c-en-china" not in text.text  # a print book is not cited as online at our permalink
    missing = client.get("/record/c-en-china/cite/harvard.txt")
    assert missing.status_code == 404 and "apa, mla, chicago, gbt7714" in missing.text
    assert client.get("/record/no-such-id/cite.json").status_code == 404

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/basket").text).group(1)
    for cid in ("c-zh-history", "c-en-china"):
        client.post("/basket/add", data={"id": cid, "csrf_token": token})
    listing = client.get("/basket/cite/gbt7714.txt").text.splitlines()
    assert listing[0].startswith("[1]司马迁. 中国历史. 北京: 人民文学出版社, 1998") and listing[1].startswith("[2]SMITH J")
    assert client.get("/basket/cite.json").get_json()["ids"] == ["c-zh-history", "c-en-china"]


def test_record_page_and_basket_offer_every_style(env):  # noqa: F811
    client = make_app(env).test_client()
    page = client.get("/record/c-en-china").text
    for style in ("apa", "mla", "chicago", "gbt7714"):
        assert f"/record/c-en-china/cite/{style}.txt" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/basket/add", data={"id": "c-en-china", "csrf_token": token})
    basket = client.get("/basket").text
    assert "/basket/cite/gbt7714.txt" in basket and "GB/T 7714" in basket
