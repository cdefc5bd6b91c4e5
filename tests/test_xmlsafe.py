"""Harvested XML can never make us read local files or fetch URLs (XXE, SSRF)."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lxml import etree

from consortium.config import Source
from harvester.clients.dumps import StreamBroken, read_path
from harvester.clients.oai import BadResponse, ListSpec, OAIClient
from harvester.harvest import harvest_source
from harvester.retry import RetryPolicy
from harvester.clients.xmlsafe import InvalidXMLError, UnsafeXMLError, iterparse, make_parser, parse_xml, strip_illegal_chars
from marc_fixtures import make_record, marcxml, oai_records
from demo.oai_member import make_app, serve

SECRET = "unioncat-secret-3f9a"


@pytest.fixture
def bait(tmp_path):
    """A local file and a loopback URL that an XXE payload would read; counts every fetch."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    hits: list[str] = []
    lock = threading.Lock()

    def app(environ, start_response):
        with lock:
            hits.append(environ.get("PATH_INFO", ""))
        start_response("200 OK", [("Content-Type", "application/xml-dtd")])
        return [f'<!ENTITY leak "{SECRET}">'.encode()]

    url, stop = serve(app)
    yield secret, url.rsplit("/", 1)[0], hits
    stop()


def payloads(secret: Path, base: str) -> dict[str, bytes]:
    return {
        "file entity": f'<!DOCTYPE r [<!ENTITY e SYSTEM "file://{secret}">]><r>&e;</r>'.encode(),
        "http entity": f'<!DOCTYPE r [<!ENTITY e SYSTEM "{base}/entity">]><r>&e;</r>'.encode(),
        "parameter entity": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{base}/param"> %p;]><r>&leak;</r>'.encode(),
        "external DTD": f'<?xml version="1.0"?>\n<!-- hi --><!DOCTYPE r SYSTEM "{base}/dtd"><r>&leak;</r>'.encode(),
        "utf-16": f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY e SYSTEM "{base}/u16">]>'
                  f"<r>&e;</r>".encode("utf-16"),
        "billion laughs": b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                          b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><r>&c;&c;&c;&c;</r>',
    }


def test_the_bait_works_on_a_naive_parser(bait):
    # Control: a careless parser does read the file, so the assertions below mean something.
    # (libxml2 ≥ 2.13 is built without its HTTP client, so the URL bait only matters on
    # older builds; the zero-hit assertions guard those.)
    secret, base, hits = bait
    naive = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=False)
    root = etree.fromstring(payloads(secret, base)["file entity"], naive)
    assert SECRET in "".join(root.itertext())


def test_parse_xml_refuses_every_doctype_and_fetches_nothing(bait):
    secret, base, hits = bait
    for name, payload in payloads(secret, base).items():
        with pytest.raises(UnsafeXMLError, match="DOCTYPE"):
            parse_xml(payload)
        # even the bare parser, without the DOCTYPE check, resolves nothing
        try:
            root = etree.fromstring(payload, make_parser())
        except etree.XMLSyntaxError:
            continue
        assert SECRET not in etree.tostring(root, encoding="unicode"), name
    assert hits == []


def test_iterparse_refuses_doctype(bait, tmp_path):
    secret, base, hits = bait
    import io
    with pytest.raises(UnsafeXMLError):
        list(iterparse(io.BytesIO(payloads(secret, base)["http entity"])))
    dump = tmp_path / "evil.xml"
    dump.write_bytes(f'<!DOCTYPE collection [<!ENTITY e SYSTEM "{base}/file">]>'.encode()
                     + b"<collection>" + marcxml(make_record("1", title="&e;")) + b"</collection>")
    items = list(read_path(dump, "lib"))
    assert len(items) == 1 and isinstance(items[0], StreamBroken) and "DOCTYPE" in items[0].reason
    assert hits == []


def test_iterparse_filtered_by_tag_refuses_doctype_even_when_nothing_matches(bait):
    # With ``tag`` the DOCTYPE is checked when the first matching element starts; a document in
    # which none matches is checked when it ends, so a filter never lets a DOCTYPE through.
    secret, base, hits = bait
    import io
    for name in ("file entity", "http entity", "external DTD"):
        with pytest.raises(UnsafeXMLError):
            list(iterparse(io.BytesIO(payloads(secret, base)[name]), tag="{*}record"))
    assert hits == []


def test_oai_response_with_xxe_is_refused_through_sickle(bait, store):
    secret, base, hits = bait
    evil = payloads(secret, base)
    app = make_app(oai_records(3))

    def hostile(environ, start_response):
        query = environ.get("QUERY_STRING", "")
        if "Identify" in query:
            start_response("200 OK", [("Content-Type", "text/xml")])
            return [evil["http entity"]]
        if "ListRecords" in query:
            body = b"".join(app(environ, lambda *a: None))
            head = (f'<?xml version="1.0"?><!DOCTYPE OAI-PMH [<!ENTITY e SYSTEM "file://{secret}">'
                    f'<!ENTITY f SYSTEM "{base}/page">]>').encode()
            body = head + body.split(b"?>", 1)[1].replace(b"Title 1", b"&e;&f;")
            start_response("200 OK", [("Content-Type", "text/xml")])
            return [body]
        return app(environ, start_response)

    url, stop = serve(hostile)
    try:
        source = Source(id="evil", name="Evil", region="East", protocol="oai", url=url, max_retries=0)
        report = harvest_source(source, store)
        assert report.status == "failed" and "DOCTYPE" in report.error and url in report.error
        client = OAIClient(url, ListSpec("evil"), retry=RetryPolicy(max_retries=0))
        with pytest.raises(BadResponse, match="DOCTYPE"):
            list(client.list_records())
        client.close()
    finally:
        stop()
    assert hits == [] and store.count("evil") == 0


def test_invalid_xml_and_illegal_characters():
    with pytest.raises(InvalidXMLError, match="not well-formed"):
        parse_xml(b"<a><b></a>")
    cleaned, dropped = strip_illegal_chars(b"<a>x\x1fy&#31;&#x1F;&#65;&#10;</a>")
    assert cleaned == b"<a>xy&#65;&#10;</a>" and dropped == 3
    assert parse_xml(cleaned).text == "xyA\n"
