"""CAS answers that try to smuggle a user name past the parser, and logout at the reader's provider.

A real CAS server never writes markup inside ``<cas:user>``, so the hostile answers come from a tiny
HTTP server of ours (a fault a real peer cannot produce); sign-on and logout run against the real
django-mama-cas (tests/peers/cas.py) and npm's oidc-provider (tests/peers/oidc.py).
"""
from __future__ import annotations

import html
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from test_reader_web import cas_server  # noqa: F401  (the module's real CAS server)
from test_reader_web import with_source as with_consortium_source
from test_web import env, make_app  # noqa: F401  (test_web's module catalogue)

from consortium.load import parse_sources
from web.auth import SignOnError, validate_cas_ticket

SUCCESS = ('<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">'
           '<cas:authenticationSuccess>{inside}</cas:authenticationSuccess></cas:serviceResponse>')
HOSTILE = {
    "comment": "<cas:user>admin<!-- -->.evil</cas:user>",
    "processing instruction": "<cas:user>admin<?x y?>.evil</cas:user>",
    "child element": "<cas:user>admin<cas:b>.evil</cas:b></cas:user>",
    "two users": "<cas:user>admin</cas:user><cas:user>lihua</cas:user>",
}


def with_source(**keys) -> dict:
    """test_web's consortium without its public base URL: URLs follow the test client (localhost), which the
    CAS and OIDC peers accept as service and redirect URIs."""
    data = with_consortium_source(**keys)
    data["consortium"]["base_url"] = None
    return data


@pytest.fixture(scope="module")
def hostile_cas():
    """A CAS look-alike answering ``/cas/p3/serviceValidate`` with the body named by the ticket."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            ticket = parse_qs(urlsplit(self.path).query).get("ticket", [""])[0]
            if ticket == "split":
                inside = HOSTILE["comment"]
            elif ticket == "twice":
                inside = "<cas:user>lihua</cas:user></cas:authenticationSuccess><cas:authenticationSuccess>" \
                         "<cas:user>admin</cas:user>"
            else:
                inside = HOSTILE[ticket.replace("-", " ")]
            body = SUCCESS.format(inside=inside).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cas"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind", [*HOSTILE, "twice"])
def test_markup_inside_a_cas_answer_never_names_a_user(hostile_cas, kind):
    with pytest.raises(SignOnError, match="markup inside|no user|more than one"):
        validate_cas_ticket(hostile_cas, "http://localhost/login/pku/cas", kind.replace(" ", "-"))


def test_a_split_user_name_does_not_sign_anyone_in(env, hostile_cas):  # noqa: F811
    sources = parse_sources(with_source(sign_on={"type": "cas", "server": hostile_cas}))
    client = make_app(env, SOURCES=sources).test_client()
    refused = client.get("/login/pku/cas?ticket=split")
    assert refused.status_code == 401 and "markup inside" in refused.text
    assert "Signed in as" not in client.get("/").text


def test_cas_attributes_are_read_whole(cas_server):  # noqa: F811
    """The real server's answer still validates (text only inside values), with its attributes."""
    browser = requests.Session()
    service = "http://localhost/login/pku/cas"
    login = f"{cas_server.url}/login?service={service}"
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get(login, timeout=10).text).group(1)
    done = browser.post(login, data={"username": "lihua", "password": "correct horse", "csrfmiddlewaretoken": csrf},
                        headers={"Referer": login}, allow_redirects=False, timeout=10)
    ticket = parse_qs(urlsplit(done.headers["Location"]).query)["ticket"][0]
    user, attributes = validate_cas_ticket(cas_server.url, service, ticket)
    assert user == "lihua" and attributes["full_name"] == ["Hua Li"]


# -- logout at the provider ---------------------------------------------------------------------------------

def provider_logout(response) -> str:
    """The provider's logout URL from our "signed out" page (a page, since CSP form-action is 'self')."""
    assert response.status_code == 200, response.text[:300]
    refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', response.text).group(1)
    link = re.search(r'id="provider-logout" href="([^"]+)"', response.text).group(1)
    assert refresh == link
    return html.unescape(link)


def cas_sign_in(client, cas_server, browser: requests.Session) -> None:  # noqa: F811
    start = client.get("/login/pku?next=/record/c-en-china")
    form = browser.get(start.location, timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    done = browser.post(start.location, data={"username": "lihua", "password": "correct horse",
                                              "csrfmiddlewaretoken": csrf},
                        headers={"Referer": start.location}, allow_redirects=False, timeout=10)
    back = urlsplit(done.headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 302


def test_cas_logout_ends_the_cas_session_too(env, cas_server):  # noqa: F811
    sources = parse_sources(with_source(sign_on={"type": "cas", "server": cas_server.url}))
    client = make_app(env, SOURCES=sources).test_client()
    browser = requests.Session()
    cas_sign_in(client, cas_server, browser)
    page = client.get("/record/c-en-china")
    assert "Signed in as" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    out = provider_logout(client.post("/logout", data={"csrf_token": token, "next": "/record/c-en-china"}))
    assert out.startswith(f"{cas_server.url}/logout?service=")
    assert "Signed in as" not in client.get("/").text  # gone here before the CAS server answers
    at_cas = browser.get(out, allow_redirects=False, timeout=10)
    assert at_cas.status_code == 302 and at_cas.headers["Location"].startswith("http://localhost/logout/done")
    back = urlsplit(at_cas.headers["Location"])
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303 and done.location.endswith("/record/c-en-china")
    # the CAS single sign-on session is over: a new sign-on asks for the password again
    again = browser.get(client.get("/login/pku").location, allow_redirects=False, timeout=10)
    assert again.status_code == 200 and "csrfmiddlewaretoken" in again.text


def test_the_page_providers_return_to_neither_leaves_the_site_nor_signs_out(env, cas_server):  # noqa: F811
    sources = parse_sources(with_source(sign_on={"type": "cas", "server": cas_server.url}))
    client = make_app(env, SOURCES=sources).test_client()
    cas_sign_in(client, cas_server, requests.Session())
    done = client.get("/logout/done?next=https://evil.example/")
    assert done.status_code == 303 and urlsplit(urljoin("http://localhost/", done.location)).netloc == "localhost"
    assert "Signed in as" in client.get("/").text  # a link to it from another site ends no session


@pytest.fixture(scope="module")
def oidc_provider():
    from peers.oidc import OIDCProvider
    provider = OIDCProvider(redirect_uri="http://localhost/login/pku/oidc",
                            post_logout_redirect_uri="http://localhost/logout/done")
    yield provider
    provider.stop()


def submit(browser: requests.Session, page: requests.Response, **fields) -> requests.Response:
    """Post the provider page's form (its hidden fields plus ``fields``); follow its redirects."""
    form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page.text, re.S)
    data = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
    return browser.post(urljoin(page.url, form.group(1)), data={**data, **fields}, allow_redirects=False,
                        timeout=10)


def follow_to_us(browser: requests.Session, response: requests.Response) -> requests.Response:
    """Follow the provider's redirects until one points back at the catalogue (http://localhost/…)."""
    while response.is_redirect and not response.headers["Location"].startswith("http://localhost/"):
        response = browser.get(urljoin(response.url, response.headers["Location"]), allow_redirects=False,
                               timeout=10)
    return response


def test_oidc_logout_ends_the_providers_session_too(env, oidc_provider):  # noqa: F811
    sources = parse_sources(with_source(sign_on={"type": "oidc", "issuer": oidc_provider.issuer,
                                                 "client_id": oidc_provider.client_id,
                                                 "client_secret_env": "PKU_SECRET"}))
    client = make_app(env, SOURCES=sources, SECRETS={"PKU_SECRET": oidc_provider.client_secret}).test_client()
    browser = requests.Session()
    start = client.get("/login/pku?next=/record/c-en-china")
    login = follow_to_us(browser, browser.get(start.location, allow_redirects=False, timeout=10))
    consent = follow_to_us(browser, submit(browser, login, login="lihua", password="any"))
    back = follow_to_us(browser, submit(browser, consent))
    callback = urlsplit(back.headers["Location"])
    assert client.get(f"{callback.path}?{callback.query}").status_code == 302
    page = client.get("/record/c-en-china")
    assert "Signed in as Reader lihua" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    out = provider_logout(client.post("/logout", data={"csrf_token": token, "next": "/record/c-en-china"}))
    assert out.startswith(oidc_provider.issuer + "/session/end?")
    query = parse_qs(urlsplit(out).query)
    assert query["post_logout_redirect_uri"] == ["http://localhost/logout/done"] and query["id_token_hint"]
    assert "Signed in as" not in client.get("/").text
    confirm = browser.get(out, timeout=10)
    returned = follow_to_us(browser, submit(browser, confirm, logout="yes"))
    assert returned.headers["Location"].startswith("http://localhost/logout/done")
    done = client.get(urlsplit(returned.headers["Location"]).path)
    assert done.status_code == 303 and done.location.endswith("/record/c-en-china")
    # the provider's session is over: signing on again asks for the login
    again = follow_to_us(browser, browser.get(client.get("/login/pku").location, allow_redirects=False,
                                              timeout=10))
    assert 'name="login"' in again.text
