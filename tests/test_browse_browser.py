"""Browse lists in real headless Chromium: from a record's call number to its shelf, on a phone, by keyboard."""
from __future__ import annotations

import re

import pytest
from test_browse_web import browse_app
from test_reader_browser import page_width, phone_page

from index.embedded import EmbeddedIndex


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browse-browser")
    index = EmbeddedIndex(tmp / "index", heap_size=15_000_000)
    yield browse_app(index, tmp)
    index.close()


def test_call_number_opens_the_shelf_around_the_record_on_a_phone(app, browser, live_server):
    url = live_server(app)
    with phone_page(browser, 360, 740) as phone:
        phone.goto(url + "/record/b3")
        phone.locator("a.shelf-link").first.click()
        phone.wait_for_url(re.compile(r"/browse/shelf\?"))
        current = phone.locator("ol.browse-entries li.current")
        assert "The history of China" in current.inner_text() and "DS735 .S6" in current.inner_text()
        # the neighbours on the shelf before and after it
        lines = phone.locator("ol.browse-entries li").all_inner_texts()
        assert any("Ancient China" in t for t in lines[:lines.index(current.inner_text())])
        width, wide = page_width(phone, 360)
        assert width <= 360, f"the shelf list scrolls sideways at 360px ({width}px): {wide}"


def test_authors_a_to_z_by_keyboard_and_an_author_searches(app, page, live_server):
    url = live_server(app)
    page.goto(url + "/")
    page.locator("#browse-authors").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/browse/authors$"))
    page.fill("#browse-from", "samuel")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"from=samuel"))
    first = page.locator("ol.browse-entries li a").nth(3)  # after the three neighbours before the start
    assert first.inner_text() == "Samuelson, Paul A."
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?author="))
    assert page.locator("ol.hits li.hit h2 a").all_inner_texts() == ["Economics"]
