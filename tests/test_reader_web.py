"""The reader's catalogue without a browser: index fields and scopes, routing, citations, exports, sign-on.

CAS sign-on is tested against a real CAS 3.0 server, django-mama-cas 2.5 (tests/peers/cas.py);
OpenID Connect against npm's oidc-provider in tests/test_reader_browser.py.
"""
from __future__ import annotations

import copy
import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import pymarc
import pytest
import requests
from catalogue_fixtures import LIBRARIES, Classification, cluster, sample_clusters
from search_backends import KINDS
from test_web import SOURCES, env, make_app  # noqa: F401  (test_web's module catalogue)

from consortium.config import ConfigError
from consortium.load import parse_sources
from index.backend import SearchQuery
from index.documents import class_top, to_document
from web.auth import SignOnError, validate_cas_ticket
from web.citations import bibtex_key, to_bibtex, to_ris


# -- index: classification facet, call number / class / ISSN fields, scopes ------------------------------------

@pytest.fixture(scope="module", params=KINDS)
def index(request, backend_factory):
    """The same documents in each backend: the reader's fields and scopes are part of the search contract."""
    clusters = sample_clusters()
    clusters[0].record.classifications = [Classification("clc", "K204.2"), Classification("lcc", "DS735 .A2")]
    clusters[1].record.classifications = [Classification("clc", "I242.4")]
    clusters[3].record.classifications = [Classification("ddc", "951.05")]
    clusters.append(cluster("c-tp", "Python programming", holdings=[("thu", "TP311.56/12")],
                            classifications=[Classification("clc", "TP311.56")]))
    idx = backend_factory(request.param)
    idx.add(to_document(c, LIBRARIES) for c in clusters)
    idx.commit()
    return idx


def ids(index, **kw) -> set[str]:
    return {h.id for h in index.search(SearchQuery(**kw)).hits}


def test_class_top_levels():
    assert class_top("clc", "K204.2") == "CLC K" and class_top("clc", "TP311.56") == "CLC TP"
    assert class_top("lcc", "DS735 .A2") == "LCC DS" and class_top("ddc", "951.05") == "DDC 900"
    assert class_top("udc", "94(510)") == "UDC 9" and class_top("clc", "  ") == ""


def test_classification_facet_and_drill_down(index):
    facets = dict(index.search(SearchQuery()).facets["classification"])
    assert facets == {"CLC K": 1, "LCC DS": 1, "CLC I": 1, "DDC 900": 1, "CLC TP": 1}
    assert ids(index, filters={"classification": ["CLC TP"]}) == {"c-tp"}


def test_call_number_class_number_and_issn_fields(index):
    assert ids(index, fields={"callnumber": "k20"}) == {"c-zh-history"}
    assert ids(index, fields={"callnumber": "TP311.56/12"}) == {"c-tp"}
    assert ids(index, fields={"callnumber": "DS735 .S6 c"}) == {"c-en-china"}  # pku's copy 2
    assert ids(index, fields={"classification": "ｉ２４２"}) == {"c-hlm-s"}     # full-width, lower case
    assert ids(index, fields={"classification": "TP3"}) == {"c-tp"}
    assert ids(index, fields={"classification": "(.*"}) == set()              # regex characters are literal
    assert ids(index, fields={"issn": "00219118"}) == {"c-en-serial"}


def test_scope_is_any_of_its_libraries(index):
    assert ids(index, any_of={"library": ["fdu"]}) == {"c-zh-history", "c-hlm-t", "c-en-map"}
    assert ids(index, any_of={"library": ["fdu", "thu"]}) == {"c-zh-history", "c-hlm-t", "c-en-map", "c-en-china",
                                                              "c-en-serial", "c-tp"}
    scoped = index.search(SearchQuery(any_of={"region": ["Shanghai"]}))
    assert scoped.total == 3 and dict(scoped.facets["region"])["Shanghai"] == 3
    with pytest.raises(ValueError, match="unknown scope"):
        index.search(SearchQuery(any_of={"nope": ["x"]}))


# -- sources.yaml: per-library sign-on and ILL parameters ------------------------------------------------------

def with_source(**keys) -> dict:
    data = copy.deepcopy(SOURCES)
    data["sources"][0].update(keys)
    return data


def test_sign_on_config_is_checked_with_file_source_and_key():
    ok = parse_sources(with_source(sign_on={"type": "oidc", "issuer": "https://idp.pku.example.edu.cn",
                                            "client_id": "unioncat", "client_secret_env": "PKU_OIDC_SECRET"},
                                   ill_params={"svc_id": "pku-ill"}))
    src = ok.sources[0]
    assert src.sign_on.discovery_url == "https://idp.pku.example.edu.cn/.well-known/openid-configuration"
    assert src.sign_on.scope == "openid profile" and src.ill_params == {"svc_id": "pku-ill"}
    cas = parse_sources(with_source(sign_on={"type": "cas", "server": "https://cas.pku.example.edu.cn/cas/"}))
    assert cas.sources[0].sign_on.server == "https://cas.pku.example.edu.cn/cas"
    bad = [
        ({"type": "ldap"}, "sign_on.type"),
        ({"type": "saml"}, "sign_on.idp"),
        ({"type": "saml", "idp": "https://idp"}, "sign_on"),
        ({"type": "saml", "idp": "https://idp", "metadata_url": "https://m", "metadata_file": "/m"}, "sign_on"),
        ({"type": "saml", "idp": "https://idp", "metadata_url": "ftp://m"}, "sign_on.metadata_url"),
        ({"type": "saml", "idp": "https://idp", "metadata_file": "/m", "scopes": ["a@b"]}, "sign_on.scopes"),
        ({"type": "oidc", "client_id": "x"}, "sign_on.issuer"),
        ({"type": "oidc", "issuer": "https://i", "client_id": "x", "client_secret_env": "hunter2-secret"},
         "sign_on.client_secret_env"),
        ({"type": "oidc", "issuer": "https://i", "client_id": "x", "scope": "profile"}, "sign_on.scope"),
        ({"type": "cas", "server": "cas.example.org"}, "sign_on.server"),
        ({"type": "cas", "server": "https://c", "client_id": "x"}, "sign_on"),
    ]
    for value, key in bad:
        with pytest.raises(ConfigError) as info:
            parse_sources(with_source(sign_on=value), "/etc/unioncat/sources.yaml")
        assert info.value.key == key and info.value.source == "pku", value
        assert str(info.value).startswith("/etc/unioncat/sources.yaml: source 'pku': key ")
    with pytest.raises(ConfigError, match="ill_params"):
        parse_sources(with_source(ill_params=["rfr_id"]))


# -- reader's library: holdings order and ILL routing -----------------------------------------------------------

def test_holdings_order_and_get_it_follow_the_chosen_library(env):  # noqa: F811
    client = make_app(env).test_client()
    data = client.get("/record/c-en-china.json").get_json()
    assert data["get_it"]["kind"] == "ill" and data["get_it"]["url"].startswith("https://ill.example.org/request?")
    page = client.get("/record/c-en-china")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/library", data={"library": "fdu", "next": "/record/c-en-china",
                                         "csrf_token": token}).status_code == 303
    data = client.get("/record/c-en-china.json").get_json()
    assert data["get_it"]["kind"] == "ill"  # fdu does not hold it
    client.post("/library", data={"library": "pku", "csrf_token": token, "next": "//evil.example.org/"})
    data = client.get("/record/c-en-china.json").get_json()
    assert data["get_it"] == {"kind": "opac", "url": "https://opac.pku.example.edu.cn/record/pku-c-en-china",
                              "library": "Peking University Library"}
    assert [h["source"] for h in data["holdings"]] == ["pku", "thu"]
    # the region comes next: a Beijing reader (thu) sees thu, then pku (Beijing), then fdu (Shanghai)
    client.post("/library", data={"library": "thu", "csrf_token": token})
    zh = client.get("/record/c-zh-history.json").get_json()
    assert [h["source"] for h in zh["holdings"]] == ["thu", "pku", "fdu"]
    assert zh["get_it"]["url"] == "https://opac.thu.example.edu.cn/search?isbn=9787020002207"
    assert client.post("/library", data={"library": "pku"}).status_code == 400  # no CSRF token


def test_ill_request_uses_the_readers_library_service_and_parameters(env):  # noqa: F811
    sources = parse_sources(with_source(ill_params={"svc_id": "pku-ill"}))
    client = make_app(env, SOURCES=sources).test_client()
    data = client.get("/record/c-en-map.json?home=pku").get_json()
    kev = parse_qs(urlsplit(data["get_it"]["url"]).query)
    assert data["get_it"]["kind"] == "ill"
    assert kev["svc_id"] == ["pku-ill"] and kev["rfr_id"] == ["info:sid/unioncat:test"]
    assert kev["rft.btitle"] == ["Atlas of Asia"] and kev["ctx_ver"] == ["Z39.88-2004"]
    thu = client.get("/record/c-en-map.json?home=thu").get_json()["get_it"]["url"]
    assert thu.startswith("https://ill.thu.example.edu.cn/openurl?")


# -- citations and exports -------------------------------------------------------------------------------------

def test_ris_and_bibtex():
    rec = next(c for c in sample_clusters() if c.id == "c-en-china").record
    ris = to_ris(rec, "https://cat.example.org/record/c-en-china")
    assert ris.startswith("TY  - BOOK\r\n") and ris.endswith("ER  - \r\n")
    assert "TI  - The history of China: an introduction\r\n" in ris and "AU  - Smith, John\r\n" in ris
    assert "AU  - Müller, Anna\r\n" in ris and "SN  - 9780306406157\r\n" in ris and "PY  - 2010\r\n" in ris
    key = bibtex_key(rec, "c-en-china")
    assert key == "smith2010"
    bib = to_bibtex(rec, key)
    assert bib.startswith("@book{smith2010,\n") and "author = {Smith, John and Müller, Anna}" in bib
    rec.title = "50% of {everything} & more_"
    assert r"title = {50\% of \{everything\} \& more\_: an introduction}" in to_bibtex(rec, key)


def test_record_exports_and_basket(env):  # noqa: F811
    client = make_app(env).test_client()
    marc = client.get("/record/c-en-china/export.mrc")
    assert marc.headers["Content-Disposition"] == 'attachment; filename="c-en-china.mrc"'
    (rec,) = list(pymarc.MARCReader(io.BytesIO(marc.data), to_unicode=True, force_utf8=True))
    assert rec["001"].data == "c-en-china" and rec["245"]["a"].startswith("The history of China")
    xml = client.get("/record/c-en-china/export.xml")
    assert pymarc.parse_xml_to_array(io.BytesIO(xml.data))[0]["001"].data == "c-en-china"
    assert client.get("/record/c-en-china/export.json").get_json()["fields"][0] == {"001": "c-en-china"}
    assert client.get("/record/c-old/export.ris").text.startswith("TY  - BOOK")  # retired ids still export
    assert client.get("/record/c-en-china/export.exe").status_code == 404
    assert client.get("/record/c-en-china/export.mrc?member=fdu:x").status_code == 404

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/basket").text).group(1)
    for cid in ("c-en-china", "c-zh-history", "c-en-china", "no-such-id"):
        client.post("/basket/add", data={"id": cid, "csrf_token": token})
    records = list(pymarc.MARCReader(io.BytesIO(client.get("/basket/export.mrc").data), to_unicode=True,
                                     force_utf8=True))
    assert [r["001"].data for r in records] == ["c-en-china", "c-zh-history"]
    assert len(client.get("/basket/export.json").get_json()) == 2
    assert client.get("/basket/export.bib").text.count("@book{") == 2
    client.post("/basket/remove", data={"id": "c-en-china", "csrf_token": token})
    assert "The history of China" not in client.get("/basket").text


def test_coins_and_json_ld_are_escaped(env):  # noqa: F811
    client = make_app(env).test_client()
    html = client.get("/search?q=script").text
    coins = re.search(r'<span class="Z3988" title="([^"]+)"', html).group(1)
    assert "rft.btitle=%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in coins.replace("&amp;", "&")
    page = client.get("/record/c-xss").text
    ld = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S).group(1)
    assert "<script>" not in ld and json.loads(ld)["name"] == "<script>alert(1)</script>"


# -- CAS 3.0 sign-on against a real CAS server (django-mama-cas) ---------------------------------------------

@pytest.fixture(scope="module")
def cas_server():
    from peers.cas import CASServer
    server = CASServer()
    server.add_user("lihua", "correct horse", first="Hua", last="Li")
    yield server
    server.stop()


def test_cas_sign_on_with_service_validate_and_attributes(env, cas_server):  # noqa: F811
    sources = parse_sources(with_source(sign_on={"type": "cas", "server": cas_server.url,
                                                 "name_attribute": "full_name", "label": "PKU CAS"}))
    # the service URL is built from the public base URL; the CAS peer accepts services on localhost only
    client = make_app(env, SOURCES=sources, BASE_URL="http://localhost/").test_client()
    assert "PKU CAS" in client.get("/login").text
    start = client.get("/login/pku?next=/record/c-en-china")
    assert start.status_code == 302 and start.location.startswith(cas_server.url + "/login?service=")
    browser = requests.Session()
    form = browser.get(start.location, timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    done = browser.post(start.location, data={"username": "lihua", "password": "correct horse",
                                              "csrfmiddlewaretoken": csrf},
                        headers={"Referer": start.location}, allow_redirects=False, timeout=10)
    assert done.status_code == 302, done.text[:500]
    back = urlsplit(done.headers["Location"])
    assert back.path == "/login/pku/cas" and parse_qs(back.query)["ticket"][0].startswith("ST-")
    signed = client.get(f"{back.path}?{back.query}")
    assert signed.status_code == 302 and signed.location.endswith("/record/c-en-china")
    page = client.get("/record/c-en-china")
    assert "Signed in as Hua Li" in page.text and "Your library:" in page.text
    assert client.get("/record/c-en-china.json").get_json()["get_it"]["kind"] == "opac"  # pku holds it
    replay = client.get(f"{back.path}?{back.query}")  # a service ticket is good once
    assert replay.status_code == 401 and "INVALID_TICKET" in replay.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/logout", data={"csrf_token": token})
    assert "Signed in as" not in client.get("/").text


def test_cas_failures_are_clear(cas_server):
    with pytest.raises(SignOnError, match="INVALID_TICKET"):
        validate_cas_ticket(cas_server.url, "http://localhost/login/pku/cas", "ST-forged")
    with pytest.raises(SignOnError, match="could not be reached"):
        validate_cas_ticket("http://127.0.0.1:9/cas", "http://localhost/x", "ST-1")


def test_oidc_library_without_its_secret_or_provider_fails_clearly(env):  # noqa: F811
    sources = parse_sources(with_source(sign_on={"type": "oidc", "issuer": "http://127.0.0.1:9",
                                                 "client_id": "unioncat", "client_secret_env": "PKU_SECRET",
                                                 "label": "PKU identity"}))
    no_secret = make_app(env, SOURCES=sources).test_client()
    assert "PKU identity" not in no_secret.get("/login").text
    assert no_secret.get("/login/pku").status_code == 404
    client = make_app(env, SOURCES=sources, SECRETS={"PKU_SECRET": "s"}).test_client()
    assert "PKU identity" in client.get("/login").text
    down = client.get("/login/pku")
    assert down.status_code == 401 and "Peking University Library" in down.text and "not answering" in down.text
    denied = client.get("/login/pku/oidc?error=access_denied&error_description=<b>no</b>")
    assert denied.status_code == 401 and "&lt;b&gt;no&lt;/b&gt;" in denied.text
    assert client.get("/login/thu").status_code == 404  # no sign-on configured for thu
