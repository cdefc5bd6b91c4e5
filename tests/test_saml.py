"""SAML 2.0 reader sign-on (web/saml.py) against a real IdP: pysaml2's own ``Server`` (tests/peers/saml_idp.py).

Every message crosses HTTP: the catalogue (Flask's test client) redirects to the IdP process, the IdP's
answer is posted back exactly as a browser would post its auto-submitting form.  Refusals: an expired
assertion, a replayed one (same browser, another browser, a saved cookie), one for another audience,
XML-signature-wrapping variants, an ePPN outside the library's scope, and federation metadata not signed
by the federation's certificate.
"""
from __future__ import annotations

import base64
import copy
import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from lxml import etree
from peers.saml_idp import SAMLIdP, make_key_pair
from services import free_port
from test_reader_web import with_source
from test_signon_logout import provider_logout
from test_web import env, make_app  # noqa: F401  (test_web's module catalogue)

from consortium.load import parse_sources
from web import saml_trust

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
USERS = {
    "lihua": {"eduPersonPrincipalName": ["lihua@pku.edu.cn"], "eduPersonScopedAffiliation": ["student@pku.edu.cn"],
              "displayName": ["李华"]},
    "mallory": {"eduPersonPrincipalName": ["mallory@thu.edu.cn"], "displayName": ["Mallory"]},
}


@pytest.fixture(scope="module")
def idp(env, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("saml")
    server = SAMLIdP(folder / "idp", port=free_port())
    sp_key, sp_cert = make_key_pair(folder, "sp")
    server.sp_config = {"SAML_KEY_FILE": str(sp_key), "SAML_CERT_FILE": str(sp_cert)}
    app = app_for(env, server)
    server.start(app.test_client().get("/saml/metadata").data, USERS)
    yield server
    server.stop()


def app_for(env, server, base_url=None, **sign_on):  # noqa: F811
    config = {"type": "saml", "idp": server.entity_id, "metadata_url": server.metadata_url,
              "scopes": ["pku.edu.cn"], "label": "PKU CARSI", **sign_on}
    data = with_source(sign_on=config)
    data["consortium"]["base_url"] = base_url  # None: URLs from the request (the test client's localhost)
    return make_app(env, SOURCES=parse_sources(data), **getattr(server, "sp_config", {}))


@pytest.fixture
def client(env, idp):  # noqa: F811
    idp.control("normal")
    return app_for(env, idp).test_client()


def answer_from_idp(client, user: str = "lihua", next_url: str = "/record/c-en-china") -> dict[str, str]:
    """Start sign-on, sign in at the IdP; the auto-posting form's fields (SAMLResponse, RelayState)."""
    start = client.get(f"/login/pku?next={next_url}")
    assert start.status_code == 302, start.text
    assert start.location.startswith(saml_idp_url(client) + "/sso/redirect?SAMLRequest=")
    assert "Signature=" in start.location  # our AuthnRequest is signed, with RSA-SHA256
    assert parse_qs(urlsplit(start.location).query)["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    browser = requests.Session()
    form = browser.get(start.location, timeout=10)
    assert form.status_code == 200, form.text
    key = re.search(r'name="key" value="([^"]+)"', form.text).group(1)
    posted = browser.post(f"{saml_idp_url(client)}/sso/login", data={"key": key, "username": user}, timeout=10)
    assert posted.status_code == 200, posted.text
    assert 'action="http://localhost/saml/acs"' in posted.text
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', posted.text))
    return {k: html.unescape(v) for k, v in fields.items()}


def saml_idp_url(client) -> str:
    source = client.application.extensions["unioncat"].source("pku")
    return source.sign_on.metadata_url.rsplit("/", 1)[0]


def signed_in_as(client) -> str | None:
    with client.session_transaction() as session:
        return (session.get("reader") or {}).get("id")


def post_answer(client, fields: dict[str, str]):
    return client.post("/saml/acs", data=fields)


# -- the SP's metadata ---------------------------------------------------------------------------------------

def test_sp_metadata_is_signed_and_names_the_endpoints(client, idp):
    response = client.get("/saml/metadata")
    assert response.status_code == 200 and response.mimetype == "application/samlmetadata+xml"
    root = etree.fromstring(response.data)
    assert root.get("entityID") == "http://localhost/saml/metadata"
    md = "{urn:oasis:names:tc:SAML:2.0:metadata}"
    acs = root.find(f"{md}SPSSODescriptor/{md}AssertionConsumerService")
    assert acs.get("Location") == "http://localhost/saml/acs" and acs.get("Binding").endswith("HTTP-POST")
    assert root.find(f"{md}SPSSODescriptor/{md}SingleLogoutService").get("Location") == "http://localhost/saml/sls"
    assert root.find(f"{md}SPSSODescriptor").get("AuthnRequestsSigned") == "true"
    saml_trust.verify_metadata(response.data, idp.sp_config["SAML_CERT_FILE"])  # signed by our own key


def test_with_a_base_url_the_sp_is_named_by_it_whatever_the_host_header(env, idp):  # noqa: F811
    client = app_for(env, idp, base_url="https://cat.example.org/").test_client()
    root = etree.fromstring(client.get("/saml/metadata", headers={"Host": "evil.example"}).data)
    assert root.get("entityID") == "https://cat.example.org/saml/metadata"
    assert b"evil.example" not in etree.tostring(root)


def test_without_a_key_pair_saml_libraries_are_not_offered(env, idp):  # noqa: F811
    sources = parse_sources(with_source(sign_on={"type": "saml", "idp": idp.entity_id,
                                                 "metadata_url": idp.metadata_url, "label": "PKU CARSI"}))
    bare = make_app(env, SOURCES=sources).test_client()
    assert "PKU CARSI" not in bare.get("/login").text
    assert bare.get("/login/pku").status_code == 404 and bare.get("/saml/metadata").status_code == 404


def test_a_broken_key_pair_is_refused_at_start_with_the_file_named(env, idp, tmp_path):  # noqa: F811
    other_key, _ = make_key_pair(tmp_path, "other")
    cert = idp.sp_config["SAML_CERT_FILE"]
    cases = [({"SAML_CERT_FILE": cert}, "needs both"),
             ({"SAML_KEY_FILE": str(tmp_path / "missing.key"), "SAML_CERT_FILE": cert}, "missing.key"),
             ({"SAML_KEY_FILE": str(other_key), "SAML_CERT_FILE": cert}, "is not the certificate of")]
    for config, message in cases:
        with pytest.raises(ValueError, match=message):
            make_app(env, SOURCES=env["sources"], **config)


# -- sign-in and logout ----------------------------------------------------------------------------------------

def test_sign_in_with_a_signed_assertion_and_single_logout(client, idp):
    assert "PKU CARSI" in client.get("/login").text
    signed = post_answer(client, answer_from_idp(client))
    assert signed.status_code == 302 and signed.location.endswith("/record/c-en-china"), signed.text
    page = client.get("/record/c-en-china")
    assert "Signed in as 李华" in page.text and "Your library:" in page.text
    with client.session_transaction() as session:
        reader = session["reader"]
    assert reader["id"] == "lihua@pku.edu.cn" and reader["library"] == "pku" and reader["via"] == "saml"
    assert reader["affiliation"] == ["student@pku.edu.cn"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    out = provider_logout(client.post("/logout", data={"csrf_token": token, "next": "/record/c-en-china"}))
    assert out.startswith(idp.url + "/slo/redirect?SAMLRequest=")
    assert "Signature=" in out and signed_in_as(client) is None  # gone here at once
    at_idp = requests.get(out, allow_redirects=False, timeout=10)
    assert at_idp.status_code == 302, at_idp.text  # the IdP verified our signed LogoutRequest
    back = urlsplit(at_idp.headers["Location"])
    assert back.path == "/saml/sls" and "SAMLResponse" in parse_qs(back.query)
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303 and done.location.endswith("/record/c-en-china")
    assert "Signed in as" not in client.get("/").text


def test_idp_initiated_logout_ends_the_readers_session(client, idp):
    post_answer(client, answer_from_idp(client))
    assert signed_in_as(client) == "lihua@pku.edu.cn"
    started = requests.post(f"{idp.url}/logout-user", json={"sp": "http://localhost/saml/metadata",
                                                             "name_id": "lihua-transient"}, timeout=10)
    location = urlsplit(started.json()["location"])
    answer = client.get(f"{location.path}?{location.query}")
    assert answer.status_code == 302 and answer.location.startswith(idp.url + "/slo/redirect?SAMLResponse=")
    assert signed_in_as(client) is None


def test_cross_site_post_without_the_session_cookie_is_posted_again_from_our_page(env, idp):  # noqa: F811
    """SameSite=Lax keeps the session cookie off the IdP's cross-site POST: a same-site form re-posts it."""
    idp.control("normal")
    client = app_for(env, idp).test_client()
    fields = answer_from_idp(client)
    cookieless = app_for(env, idp).test_client()
    page = post_answer(cookieless, fields)
    assert page.status_code == 200 and 'id="saml-continue"' in page.text and "saml-continue.js" in page.text
    assert "Set-Cookie" not in page.headers  # the browser's own session (with the pending request) stays
    repost = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text))
    assert html.unescape(repost["SAMLResponse"]) == fields["SAMLResponse"] and repost["resubmitted"] == "1"
    signed = post_answer(client, {k: html.unescape(v) for k, v in repost.items()})
    assert signed.status_code == 302 and signed_in_as(client) == "lihua@pku.edu.cn"


# -- refusals ---------------------------------------------------------------------------------------------------

def test_an_expired_assertion_is_refused(client, idp):
    idp.control("expired")
    refused = post_answer(client, answer_from_idp(client))
    assert refused.status_code == 401 and "Sign-on with Peking University Library failed" in refused.text
    assert signed_in_as(client) is None


def test_an_assertion_for_another_audience_is_refused(client, idp):
    idp.control("audience")
    refused = post_answer(client, answer_from_idp(client))
    assert refused.status_code == 401 and signed_in_as(client) is None


def test_a_replayed_assertion_is_refused(env, client, idp):  # noqa: F811
    fields = answer_from_idp(client)
    with client.session_transaction() as session:
        saved_pending = dict(session["saml_pending"])  # an attacker's copy of the cookie, taken before use
    assert post_answer(client, fields).status_code == 302 and signed_in_as(client) == "lihua@pku.edu.cn"
    # the same browser again: the request it answered is no longer pending
    again = post_answer(client, {**fields, "resubmitted": "1"})
    assert again.status_code == 400
    # another browser that started its own sign-on: the answer is not to its request
    other = app_for(env, idp).test_client()
    other.get("/login/pku")
    assert post_answer(other, {**fields, "resubmitted": "1"}).status_code == 400 and signed_in_as(other) is None
    # a browser replaying the cookie saved before the first use: only the replay cache stops it
    thief = client.application.test_client()
    with thief.session_transaction() as session:
        session["saml_pending"] = saved_pending
    stolen = post_answer(thief, fields)
    assert stolen.status_code == 401 and "replayed" in stolen.text and signed_in_as(thief) is None


def test_an_eppn_outside_the_librarys_scope_is_refused(client, idp):
    refused = post_answer(client, answer_from_idp(client, user="mallory"))
    assert refused.status_code == 401 and "outside the library" in refused.text
    assert signed_in_as(client) is None


def test_members_sharing_an_idp_are_told_apart_by_scope(env, idp):  # noqa: F811
    """A university's two libraries behind one IdP: the reader's ePPN scope picks their library."""
    data = with_source(sign_on={"type": "saml", "idp": idp.entity_id, "metadata_url": idp.metadata_url,
                                "scopes": ["pku.edu.cn"]})
    data["sources"][1]["sign_on"] = {"type": "saml", "idp": idp.entity_id, "metadata_url": idp.metadata_url,
                                     "scopes": ["thu.edu.cn"]}
    data["consortium"]["base_url"] = None  # the SP the IdP knows: http://localhost
    idp.control("normal")
    client = make_app(env, SOURCES=parse_sources(data), **idp.sp_config).test_client()
    assert post_answer(client, answer_from_idp(client, user="mallory")).status_code == 302
    with client.session_transaction() as session:
        assert session["reader"]["library"] == "thu" and session["reader"]["id"] == "mallory@thu.edu.cn"


def wrapped(fields: dict[str, str], variant: str) -> dict[str, str]:
    """An XML-signature-wrapping forgery of a genuine answer: the signed assertion kept, an evil one read."""
    root = etree.fromstring(base64.b64decode(fields["SAMLResponse"]))
    signed = root.find(f"{{{SAML}}}Assertion")
    evil = copy.deepcopy(signed)
    for value in evil.iter(f"{{{SAML}}}AttributeValue"):
        if value.text == "lihua@pku.edu.cn":
            value.text = "admin@pku.edu.cn"
    evil.remove(evil.find(f"{{{DS}}}Signature"))
    index = list(root).index(signed)
    if variant == "evil-first":          # two assertions: a forged one before the signed one
        evil.set("ID", "_evil" + signed.get("ID"))
        root.insert(index, evil)
    elif variant == "signed-in-extensions":  # the signed one hidden in Extensions, the evil one takes its ID
        root.remove(signed)
        extensions = etree.Element(f"{{{SAMLP}}}Extensions")
        extensions.append(signed)
        root.insert(1, extensions)
        root.insert(index + 1, evil)
    else:                                # the signed one inside the evil one's own Signature/Object
        root.remove(signed)
        evil_sig = copy.deepcopy(signed.find(f"{{{DS}}}Signature"))
        obj = etree.SubElement(evil_sig, f"{{{DS}}}Object")
        obj.append(signed)
        evil.insert(1, evil_sig)
        root.insert(index, evil)
    return {**fields, "SAMLResponse": base64.b64encode(etree.tostring(root)).decode()}


@pytest.mark.parametrize("variant", ["evil-first", "signed-in-extensions", "signed-in-signature-object"])
def test_signature_wrapping_is_refused(client, idp, variant):
    fields = answer_from_idp(client)
    refused = post_answer(client, wrapped(fields, variant))
    assert refused.status_code == 401, refused.text[:300]
    assert signed_in_as(client) is None


# -- IdP metadata: a federation aggregate verified by its signing certificate ---------------------------------

def test_federation_aggregate_signed_by_the_federation_signs_in(env, idp):  # noqa: F811
    idp.control("normal")
    client = app_for(env, idp, metadata_url=idp.federation_url, metadata_cert=str(idp.federation_cert)).test_client()
    fields = answer_from_idp_via(client, idp)
    assert post_answer(client, fields).status_code == 302 and signed_in_as(client) == "lihua@pku.edu.cn"


def answer_from_idp_via(client, idp) -> dict[str, str]:
    start = client.get("/login/pku")
    assert start.status_code == 302, start.text
    browser = requests.Session()
    key = re.search(r'name="key" value="([^"]+)"', browser.get(start.location, timeout=10).text).group(1)
    posted = browser.post(f"{idp.url}/sso/login", data={"key": key, "username": "lihua"}, timeout=10)
    return {k: html.unescape(v) for k, v in
            re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', posted.text)}


def test_an_idp_missing_from_the_metadata_fails_with_its_name(env, idp):  # noqa: F811
    client = app_for(env, idp, idp="https://idp.elsewhere.example.edu.cn/idp/shibboleth").test_client()
    refused = client.get("/login/pku")
    assert refused.status_code == 401 and "no identity provider" in refused.text
    assert "https://idp.elsewhere.example.edu.cn/idp/shibboleth" in refused.text


def test_metadata_not_signed_by_the_federation_is_refused(env, idp):  # noqa: F811
    wrong_cert = app_for(env, idp, metadata_url=idp.federation_url, metadata_cert=str(idp.cert)).test_client()
    refused = wrong_cert.get("/login/pku")
    assert refused.status_code == 401 and "does not verify" in refused.text
    unsigned = app_for(env, idp, metadata_url=idp.metadata_url, metadata_cert=str(idp.federation_cert))
    assert "not signed as a whole" in unsigned.test_client().get("/login/pku").text
    aggregate = requests.get(idp.federation_url, timeout=10).content
    saml_trust.verify_metadata(aggregate, str(idp.federation_cert))
    tampered = aggregate.replace(b"/idp/shibboleth", b"/idp/evil")
    with pytest.raises(saml_trust.SAMLRefused, match="does not verify"):
        saml_trust.verify_metadata(tampered, str(idp.federation_cert))


def test_an_unsigned_or_altered_logout_request_from_the_idp_ends_nothing(client, idp):
    post_answer(client, answer_from_idp(client))
    started = requests.post(f"{idp.url}/logout-user", json={"sp": "http://localhost/saml/metadata",
                                                             "name_id": "lihua-transient"}, timeout=10)
    location = urlsplit(started.json()["location"])
    params = parse_qs(location.query)
    unsigned = "&".join(p for p in location.query.split("&") if not p.startswith(("Signature=", "SigAlg=")))
    assert client.get(f"{location.path}?{unsigned}").status_code == 400
    altered = location.query.replace("RelayState=", "RelayState=x") if "RelayState=" in location.query \
        else location.query + "&RelayState=elsewhere"
    assert client.get(f"{location.path}?{altered}").status_code == 400
    assert params["SigAlg"][0].endswith("rsa-sha256")
    sha1 = location.query.replace("rsa-sha256", "rsa-sha1")
    assert client.get(f"{location.path}?{sha1}").status_code == 400
    assert signed_in_as(client) == "lihua@pku.edu.cn"  # none of them ended the session
    assert client.get(f"{location.path}?{location.query}").status_code == 302  # the genuine one does
    assert signed_in_as(client) is None


# -- a real browser: the IdP's cross-site POST, our same-site re-post, single logout ---------------------------

def test_sign_in_and_out_in_a_real_browser(env, idp, tmp_path, live_server, page):  # noqa: F811
    """Chromium, with the catalogue on ``localhost`` and the IdP on ``127.0.0.1``: two sites, so the IdP's
    POST carries no SameSite=Lax cookie and the catalogue's continue page (a script of its own) re-posts."""
    browser_idp = SAMLIdP(tmp_path / "idp", port=free_port())
    browser_idp.sp_config = idp.sp_config
    url = live_server(app_for(env, browser_idp)).replace("127.0.0.1", "localhost")
    browser_idp.start(requests.get(f"{url}/saml/metadata", timeout=10).content, USERS)
    try:
        page.goto(f"{url}/record/c-en-china")
        page.click("header.site >> text=Sign in")
        page.click("text=PKU CARSI")
        page.wait_for_url(re.compile(re.escape(browser_idp.url) + "/sso/redirect"))
        page.fill('input[name="username"]', "lihua")
        page.click("button")
        page.wait_for_url(f"{url}/record/c-en-china")
        assert "Signed in as 李华" in page.inner_text("header.site")
        page.click("text=Sign out")
        page.wait_for_url(f"{url}/record/c-en-china")  # via the IdP's single logout and /saml/sls
        assert "Sign in" in page.inner_text("header.site")
    finally:
        browser_idp.stop()


def test_an_expired_federation_aggregate_is_refused(env, idp):  # noqa: F811
    client = app_for(env, idp, metadata_url=idp.federation_url + "?valid_hours=-1",
                     metadata_cert=str(idp.federation_cert)).test_client()
    refused = client.get("/login/pku")
    assert refused.status_code == 401 and "metadata has expired" in refused.text
