"""`sources check` against a real OAI-PMH provider: the source's metadata_prefix and set are checked
against ListMetadataFormats and ListSets, and a URL that answers with a web page is named as such
(not as an XXE refusal)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from consortium.config import Source
from demo.oai_member import make_app, serve
from harvester.probe import probe_source
from marc_fixtures import oai_records

HOME_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Library home - Nanjing</title></head>"
             b"<body><p>Welcome</p></body></html>")


@pytest.fixture(scope="module")
def provider():
    url, stop = serve(make_app(oai_records(4, sets=["books", "serials"]), repository_name="Set library"))
    yield url
    stop()


def _oai(url: str, **keys) -> Source:
    return Source(id="m", name="M", region="E", protocol="oai", url=url, **keys)


def test_prefix_and_set_the_repository_offers_pass(provider):
    result = probe_source(_oai(provider, metadata_prefix="marcxml", set="serials"))
    assert result.ok, result.message
    assert result.details["metadataFormats"] == ["marc21", "marcxml", "oai_dc"]
    assert result.details["sets"] == ["books", "serials"]


def test_a_prefix_not_offered_is_named_with_what_is(provider):
    result = probe_source(_oai(provider, metadata_prefix="cnmarc"))
    assert not result.ok
    assert result.message == (f"{provider}: metadata_prefix 'cnmarc' is not offered; ListMetadataFormats has "
                              "marc21, marcxml, oai_dc")


def test_a_misspelt_set_gets_a_suggestion(provider):
    result = probe_source(_oai(provider, set="book"))
    assert not result.ok and result.message == f"{provider}: set 'book' is not in ListSets; did you mean 'books'?"
    far = probe_source(_oai(provider, set="theses"))
    assert not far.ok and "set 'theses' is not in ListSets; it has 2, e.g. books, serials" in far.message


def test_a_set_on_a_repository_without_sets():
    url, stop = serve(make_app(oai_records(2), repository_name="No sets"))
    try:
        result = probe_source(_oai(url, set="books"))
        plain = probe_source(_oai(url))
    finally:
        stop()
    assert not result.ok and "the repository has no sets" in result.message
    assert plain.ok and "sets" not in plain.details


class _HomePage(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(HOME_PAGE)

    def log_message(self, *args):
        pass


def test_an_html_page_is_not_an_oai_endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HomePage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/opac/index.html"
    try:
        result = probe_source(_oai(url), timeout=5)
    finally:
        server.shutdown()
    assert not result.ok
    assert result.message == f"{url}: not an OAI-PMH endpoint (HTML: 'Library home - Nanjing')"
    assert "XXE" not in result.message
