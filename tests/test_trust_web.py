"""Issue 19, the web half: each red-team finding replayed against the real app on a real server.

waitress serves the app in a thread and ``requests`` plays the browser, the attacker and — with
``X-Forwarded-For`` — the reverse proxy in front.  Items: 1 open redirect, 2 sessions that never end,
3 the slow filter request, 4 forgeable OAI-PMH resumption tokens, 5 Host header poisoning, 6 lockout
and rate limits behind a proxy; plus the failed sign-in in the audit log and the start-up refusal.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import pytest
import requests
import yaml
from click.testing import CliRunner
from catalogue_fixtures import sample_clusters
from lxml import etree
from sqlalchemy import update

from consortium.load import parse_sources
from dedupe.store import ClusterStore
from demo.oai_member import serve
from index.documents import to_document
from index.embedded import EmbeddedIndex
from storage.db import make_engine, sqlite_url, utcnow
from unioncat.cli import main
from unioncat.schema import ensure_schema
from web import create_app
from web.accounts import FIRST_DELAY, FREE_FAILURES, Accounts
from web.oai_request import make_token
from web.origin import check_serving, waitress_options
from web.present import safe_next
from web.sessions import staff_sessions

PASSWORD = "correct horse battery staple"
SOURCES = {
    "consortium": {"name": "Trust Test Consortium"},  # no base_url: the request's Host is all there is
    "sources": [
        {"id": "pku", "name": "Peking University Library", "region": "Beijing", "protocol": "oai",
         "url": "https://pku.example.edu.cn/oai"},
        {"id": "thu", "name": "Tsinghua University Library", "region": "Beijing", "protocol": "oai",
         "url": "https://thu.example.edu.cn/oai"},
        {"id": "fdu", "name": "Fudan University Library", "region": "Shanghai", "protocol": "oai",
         "url": "https://fdu.example.edu.cn/oai"},
    ],
}
OAI = "{http://www.openarchives.org/OAI/2.0/}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trust")
    engine = make_engine(sqlite_url(tmp / "catalogue.db"))
    ensure_schema(engine)
    sources = parse_sources(SOURCES, tmp / "sources.yaml")
    clusters = sample_clusters()
    ClusterStore(engine).save(clusters)
    index = EmbeddedIndex(tmp / "index", heap_size=15_000_000)
    index.add(to_document(c, {s.id: (s.name, s.region) for s in sources.sources}) for c in clusters)
    index.commit()
    Accounts(engine).add("chief", PASSWORD, "admin")
    yield {"engine": engine, "sources": sources, "index": index}
    index.close()
    engine.dispose()


def make_app(world, **config):
    return create_app({"SOURCES": world["sources"], "DB_ENGINE": world["engine"], "SEARCH_BACKEND": world["index"],
                       "SECRET_KEY": "trust-test", **config})


@contextmanager
def served(app):
    """The app on a real waitress server on loopback; yields its root URL."""
    url, stop = serve(app, threads=8, **waitress_options(app))
    try:
        yield url.rsplit("/oai", 1)[0]
    finally:
        stop()


def csrf_of(http: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', http.get(url).text).group(1)


def sign_in(http: requests.Session, root: str, name: str = "chief", password: str = PASSWORD, next_url=None,
            headers=None) -> requests.Response:
    token = csrf_of(http, f"{root}/staff/login")
    data = {"username": name, "password": password, "csrf_token": token}
    if next_url is not None:
        data["next"] = next_url
    return http.post(f"{root}/staff/login", data=data, allow_redirects=False, headers=headers or {})


@pytest.fixture(autouse=True)
def fresh_sign_in_records(world):
    """Each test starts without earlier tests' sign-ins, audit entries or sessions (the tables are per module)."""
    from web.accounts import staff_audit, staff_logins
    with world["engine"].begin() as conn:
        for table in (staff_logins, staff_audit, staff_sessions):
            conn.execute(table.delete())


# -- 1. open redirect --------------------------------------------------------------------------------------------
HOSTILE_NEXT = ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example", "//evil.example",
                "/\\evil.example", "\\\\evil.example", "https://evil.example/", "http:/\\evil.example",
                " //evil.example", "/./\t/evil.example", "javascript:alert(1)", "/\x00/evil.example"]


def test_redirect_targets_are_read_as_a_browser_reads_them(world):
    app = make_app(world, TRUSTED_HOSTS="cat.example.org")
    with app.test_request_context("/", base_url="http://cat.example.org"):
        for value in HOSTILE_NEXT:
            target = safe_next(value)
            assert target is None or (target.startswith("/") and not target.startswith("//")), (value, target)
        assert safe_next("/search?q=a&f=library:pku#top") == "/search?q=a&f=library:pku#top"
        assert safe_next("http://cat.example.org/record/c-hlm-s") == "/record/c-hlm-s"
        assert safe_next("/sea\trch?q=1") == "/search?q=1"
        assert safe_next("https://cat.example.org/record/x") is None  # another scheme is another origin
        assert safe_next("") is None and safe_next(None) is None


def test_no_redirect_leaves_the_site_after_sign_in_or_any_form(world):
    with served(make_app(world, SIGNIN_BURST=100)) as root:
        for value in HOSTILE_NEXT:
            http = requests.Session()
            response = sign_in(http, root, next_url=value)
            assert response.status_code == 302, (value, response.status_code)
            assert _stays_on(root, response.headers["Location"]), value
            token = csrf_of(http, f"{root}/staff/")
            for path, data in (("/library", {"library": "pku"}), ("/basket/add", {"id": "c-hlm-s"}),
                               ("/basket/remove", {"id": "c-hlm-s"}),
                               ("/staff/source/pku/pause", {"paused": "0"}), ("/logout", {})):
                answer = http.post(root + path, data={**data, "next": value, "csrf_token": token},
                                   allow_redirects=False)
                assert answer.status_code in (302, 303), (path, value, answer.status_code)
                assert _stays_on(root, answer.headers["Location"]), (path, value, answer.headers["Location"])


def _stays_on(root: str, location: str) -> bool:
    """Would a browser at ``root`` following ``location`` stay on the site?"""
    return location.startswith("/") and urlsplit(urljoin(root + "/", location)).netloc == urlsplit(root).netloc


# -- 2. sessions ---------------------------------------------------------------------------------------------------
def test_a_cookie_copied_before_sign_out_is_worthless_after_it(world):
    with served(make_app(world)) as root:
        http = requests.Session()
        assert sign_in(http, root).status_code == 302
        stolen = http.cookies.get_dict()
        assert requests.get(f"{root}/staff/status.json", cookies=stolen).status_code == 200
        http.post(f"{root}/staff/logout", data={"csrf_token": csrf_of(http, f"{root}/staff/")})
        assert requests.get(f"{root}/staff/status.json", cookies=stolen).status_code == 401


def test_a_new_password_ends_every_session_of_the_account(world):
    with served(make_app(world)) as root:
        first, second = requests.Session(), requests.Session()
        sign_in(first, root), sign_in(second, root)
        assert first.get(f"{root}/staff/status.json").status_code == 200
        Accounts(world["engine"]).add("chief", PASSWORD, "admin", replace=True)
        assert first.get(f"{root}/staff/status.json").status_code == 401
        assert second.get(f"{root}/staff/status.json").status_code == 401
        assert sign_in(first, root).status_code == 302  # and the new password works


@pytest.mark.parametrize("column, age, setting", [("seen_at", timedelta(minutes=31), {}),
                                                  ("started_at", timedelta(hours=13), {}),
                                                  ("seen_at", timedelta(minutes=6), {"SESSION_IDLE_MINUTES": 5})])
def test_idle_and_old_sessions_end(world, column, age, setting):
    with served(make_app(world, **setting)) as root:
        http = requests.Session()
        sign_in(http, root)
        assert http.get(f"{root}/staff/status.json").status_code == 200
        with world["engine"].begin() as conn:  # the clock moves on
            conn.execute(update(staff_sessions).values(**{column: utcnow() - age}))
        assert http.get(f"{root}/staff/status.json").status_code == 401


def test_sign_in_starts_a_new_session_id(world):
    with served(make_app(world)) as root:
        http = requests.Session()
        http.get(f"{root}/staff/login")
        planted = http.cookies.get("session")
        sign_in(http, root)
        after = http.cookies.get("session")
        assert planted and after and planted != after
        again = requests.Session()
        sign_in(again, root)
        ids = [row.id for row in world["engine"].connect().execute(staff_sessions.select())]
        assert len(set(ids)) == 2


def test_secure_cookies_and_hsts_over_https(world):
    client = make_app(world, BASE_URL="https://cat.example.org/").test_client()
    page = client.get("/staff/login")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    plain = make_app(world, BASE_URL="http://cat.example.org/").test_client().get("/staff/login")
    assert "Strict-Transport-Security" not in plain.headers and "Secure" not in plain.headers["Set-Cookie"]
    forced = make_app(world, SECURE_COOKIES="1").test_client().get("/staff/login")
    assert "Secure" in forced.headers["Set-Cookie"] and "Strict-Transport-Security" in forced.headers


# -- 3. slow unauthenticated requests ------------------------------------------------------------------------------
def test_thousands_of_filters_are_refused_quickly_with_a_reason(world):
    with served(make_app(world)) as root:
        for count, says in ((3000, "4096"), (100, "30 filters")):
            for path, key in (("/search", "f"), ("/search.json", "f"), ("/api/v1/search", "filter")):
                started = time.monotonic()
                answer = requests.get(f"{root}{path}?q=a&" + "&".join(f"{key}=subject:{n}" for n in range(count)))
                assert answer.status_code == 400 and says in answer.text, (path, count)
                assert time.monotonic() - started < 10  # a bound against the minute-long hang, not a benchmark
        assert requests.get(f"{root}/search?q=a&" + "&".join(f"f=subject:{n}" for n in range(30))).status_code == 200
        long = requests.get(f"{root}/search?q=" + "a" * 5000)
        assert long.status_code == 400 and "4096" in long.text
        chinese = requests.get(f"{root}/search?q=a&" + "&".join(f"f=subject:{n}" for n in range(31)),
                               headers={"Accept-Language": "zh-CN"})
        assert chinese.status_code == 400 and "31" in chinese.text and "Remove some" not in chinese.text


# -- 4. OAI-PMH resumption tokens -------------------------------------------------------------------------------------
def _old_style_token(state: dict, key: bytes = b"unioncat-oai:unioncat") -> str:
    """A token signed the way main did, with a key anyone could derive from the repository id."""
    data = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
    return f"{data.rstrip('=')}.{hmac.new(key, data.encode(), hashlib.sha256).hexdigest()[:20]}"


def _oai_error(root: str, token: str) -> str | None:
    answer = requests.get(f"{root}/oai", params={"verb": "ListIdentifiers", "resumptionToken": token})
    assert answer.status_code == 200, answer.text[:300]
    error = etree.fromstring(answer.content).find(f"{OAI}error")
    return None if error is None else error.get("code")


def test_resumption_tokens_are_signed_with_the_secret_and_checked(world):
    app = make_app(world, OAI_PAGE_SIZE=2)
    base = {"v": 1, "m": "oai_dc", "s": None, "f": None, "u": None, "t": 0, "q": 2, "c": 2}
    with served(app) as root:
        first = requests.get(f"{root}/oai", params={"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"})
        token = etree.fromstring(first.content).find(f"{OAI}ListIdentifiers/{OAI}resumptionToken").text
        assert _oai_error(root, token) is None
        assert _oai_error(root, _old_style_token({**base, "q": 10**30})) == "badResumptionToken"
        with app.app_context():
            hostile = [{**base, "q": [1]}, {**base, "q": 10**30}, {**base, "q": -1}, {**base, "t": 1.5},
                       {**base, "c": True}, {**base, "m": ["oai_dc"]}, {**base, "f": "yesterday"},
                       {**base, "s": "no-such-set"}, {**base, "s": {"a": 1}}, {**base, "t": 99}, {"v": 1}]
            signed = [make_token(state) for state in hostile]
        for state, forged in zip(hostile, signed):
            assert _oai_error(root, forged) == "badResumptionToken", state
    other = make_app(world, OAI_PAGE_SIZE=2, SECRET_KEY="another key")
    with served(other) as root:
        assert _oai_error(root, token) == "badResumptionToken"


# -- 5. Host header ---------------------------------------------------------------------------------------------------
def _absolute_urls(html: str) -> list[str]:
    return re.findall(r'https?://[^"\'\s<>&]+', html)


def test_a_hostile_host_header_never_reaches_a_written_url(world):
    with served(make_app(world)) as root:  # nothing configured: loopback names only
        assert requests.get(f"{root}/record/c-hlm-s", headers={"Host": "evil.example"}).status_code == 400
        assert requests.get(f"{root}/record/c-hlm-s").status_code == 200
    with served(make_app(world, BASE_URL="https://cat.example.org/")) as root:
        page = requests.get(f"{root}/record/c-hlm-s", headers={"Host": "evil.example"})
        assert page.status_code == 200 and "evil.example" not in page.text
        assert '<link rel="canonical" href="https://cat.example.org/record/c-hlm-s">' in page.text
        assert '"url": "https://cat.example.org/record/c-hlm-s"' in page.text  # JSON-LD
        found = requests.get(f"{root}/search?q=红楼梦", headers={"Host": "evil.example"}).text
        assert "evil.example" not in found and "rft_id=https%3A%2F%2Fcat.example.org%2Frecord%2Fc-hlm-s" in found
        oai = requests.get(f"{root}/oai?verb=Identify", headers={"Host": "evil.example"}).text
        assert "<baseURL>https://cat.example.org/oai</baseURL>" in oai
        api = requests.get(f"{root}/api/v1/search?q=红楼梦", headers={"Host": "evil.example"}).text
        assert "evil.example" not in api and "https://cat.example.org/api/v1/records/c-hlm-s" in api
    with served(make_app(world, TRUSTED_HOSTS="cat.example.org, opac.example.org")) as root:
        assert requests.get(f"{root}/", headers={"Host": "evil.example"}).status_code == 400
        page = requests.get(f"{root}/record/c-hlm-s", headers={"Host": "opac.example.org"}).text
        assert all("opac.example.org" in url for url in _absolute_urls(page) if "example.org/record" in url)


def test_a_base_url_with_a_path_prefixes_every_link(world):
    client = make_app(world, BASE_URL="https://lib.example.edu.cn/union").test_client()
    page = client.get("/record/c-hlm-s", headers={"Host": "evil.example"}).text
    assert '<link rel="canonical" href="https://lib.example.edu.cn/union/record/c-hlm-s">' in page
    assert 'href="/union/search' in client.get("/search?q=红楼梦").text


def test_serving_off_loopback_needs_a_secret_and_an_address(world):
    with pytest.raises(ValueError, match="UNIONCAT_SECRET_KEY"):
        check_serving(create_app({"SOURCES": world["sources"], "DB_ENGINE": world["engine"],
                                  "SEARCH_BACKEND": world["index"], "BASE_URL": "https://cat.example.org/"}),
                      "0.0.0.0")
    with pytest.raises(ValueError, match="UNIONCAT_BASE_URL"):
        check_serving(make_app(world), "192.0.2.10")
    check_serving(make_app(world, BASE_URL="https://cat.example.org/"), "0.0.0.0")
    check_serving(make_app(world, TRUSTED_HOSTS="cat.example.org"), "::")
    check_serving(create_app({"SOURCES": world["sources"], "DB_ENGINE": world["engine"],
                              "SEARCH_BACKEND": world["index"]}), "127.0.0.1")  # development: fine


def test_serve_refuses_a_public_address_with_development_defaults(tmp_path):
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(SOURCES), encoding="utf-8")
    args = ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "var"), "serve", "--host", "0.0.0.0"]
    result = CliRunner().invoke(main, args, env={"UNIONCAT_SECRET_KEY": "", "UNIONCAT_BASE_URL": ""})
    assert result.exit_code == 2 and "UNIONCAT_SECRET_KEY" in result.output
    result = CliRunner().invoke(main, args, env={"UNIONCAT_SECRET_KEY": "s" * 32, "UNIONCAT_BASE_URL": ""})
    assert result.exit_code == 2 and "UNIONCAT_BASE_URL" in result.output


# -- 6. lockout and rate limits behind a reverse proxy ---------------------------------------------------------------
def behind(address: str) -> dict:
    """What the reverse proxy in front adds: the client's address."""
    return {"X-Forwarded-For": address}


def test_an_attacker_cannot_lock_the_admin_out_behind_the_proxy(world):
    with served(make_app(world, TRUSTED_PROXIES=1, SIGNIN_BURST=100)) as root:
        attacker = requests.Session()
        for _ in range(FREE_FAILURES):
            assert sign_in(attacker, root, password="guess", headers=behind("203.0.113.9")).status_code == 401
        refused = sign_in(attacker, root, headers=behind("203.0.113.9"))  # even the right password waits
        assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= FIRST_DELAY
        assert "Too many failed sign-ins" in refused.text
        admin = requests.Session()
        assert sign_in(admin, root, headers=behind("198.51.100.7")).status_code == 302
        assert admin.get(f"{root}/staff/status.json", headers=behind("198.51.100.7")).status_code == 200
        audit = admin.get(f"{root}/staff/audit.json").json()["audit"]
        failed = [e for e in audit if e["action"] == "login-failed"]
        assert len(failed) == FREE_FAILURES and {e["ip"] for e in failed} == {"203.0.113.9"}
        assert {e["user"] for e in failed} == {"chief"}
        assert any(e["action"] == "login-delayed" and e["ip"] == "203.0.113.9" for e in audit)


def test_only_the_entries_the_proxies_added_are_believed(world):
    with served(make_app(world, TRUSTED_PROXIES=1, SIGNIN_BURST=100)) as root:
        # the client forged the first entry; the proxy appended the address it saw
        forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "X-Forwarded-Proto": "https"}
        sign_in(requests.Session(), root, password="guess", headers=forged)
        admin = requests.Session()
        sign_in(admin, root)
        failed = [e for e in admin.get(f"{root}/staff/audit.json").json()["audit"] if e["action"] == "login-failed"]
        assert [e["ip"] for e in failed] == ["203.0.113.9"]
        page = requests.get(f"{root}/record/c-hlm-s", headers=forged).text
        assert '<link rel="canonical" href="https://127.0.0.1:' in page  # the scheme the proxy was asked in


def test_without_trusted_proxies_a_forged_forwarded_header_changes_nothing(world):
    with served(make_app(world, SIGNIN_BURST=100)) as root:
        attacker = requests.Session()
        for n in range(FREE_FAILURES):
            sign_in(attacker, root, password="guess", headers=behind(f"203.0.113.{n}"))
        refused = sign_in(attacker, root, password="guess", headers=behind("203.0.113.200"))
        assert refused.status_code == 429  # every try counted against 127.0.0.1, the real peer


def test_the_delay_grows_with_each_failure_and_a_success_resets_it(world):
    accounts = Accounts(world["engine"])
    for _ in range(FREE_FAILURES - 1):
        accounts.attempt("chief", "203.0.113.5", False)
    assert accounts.wait_seconds("chief", "203.0.113.5") == 0
    waits = []
    for _ in range(3):
        accounts.attempt("chief", "203.0.113.5", False)
        waits.append(accounts.wait_seconds("chief", "203.0.113.5"))
    assert waits[0] <= FIRST_DELAY and waits[0] < waits[1] < waits[2] and waits[2] >= 3 * FIRST_DELAY
    assert accounts.wait_seconds("chief", "198.51.100.7") == 0
    assert accounts.wait_seconds("other", "203.0.113.5") == 0
    accounts.attempt("chief", "203.0.113.5", True)
    assert accounts.wait_seconds("chief", "203.0.113.5") == 0


def test_failures_past_the_window_are_forgotten(world):
    from web.accounts import WINDOW, staff_logins
    with world["engine"].begin() as conn:
        conn.execute(staff_logins.insert(), [{"at": utcnow() - WINDOW - timedelta(minutes=1), "user": "chief",
                                              "ip": "203.0.113.6", "ok": False}] * 50)
    accounts = Accounts(world["engine"])
    assert accounts.wait_seconds("chief", "203.0.113.6") == 0  # old failures cost nothing
    accounts.attempt("chief", "203.0.113.6", False)
    with world["engine"].connect() as conn:
        assert len(conn.execute(staff_logins.select()).fetchall()) == 1  # and are not kept


def test_per_client_rate_limits_behind_the_proxy(world):
    app = make_app(world, TRUSTED_PROXIES=1, SEARCH_RATE=0.01, SEARCH_BURST=3, API_RATE=0.01, API_BURST=3,
                   API_KEYS="the-right-key")
    with served(app) as root:
        for n, path in enumerate(("/search?q=a", "/search.json?q=a", "/api/v1/search?q=a")):
            greedy, polite = behind(f"203.0.113.1{n}"), behind(f"203.0.113.2{n}")
            statuses = [requests.get(root + path, headers=greedy).status_code for _ in range(5)]
            assert statuses == [200, 200, 200, 429, 429], path
            assert requests.get(root + path, headers=polite).status_code == 200, path
            assert int(requests.get(root + path, headers=greedy).headers["Retry-After"]) >= 1, path
        shared = behind("203.0.113.30")  # the page and its JSON twin are one search allowance
        assert [requests.get(f"{root}{p}?q=a", headers=shared).status_code
                for p in ("/search", "/search.json", "/search", "/search.json")] == [200, 200, 200, 429]
        wrong = [requests.get(f"{root}/api/v1/libraries", headers={**behind("203.0.113.3"), "X-API-Key": f"k{n}"})
                 .status_code for n in range(5)]
        assert wrong == [401, 401, 401, 429, 429]  # guessing keys costs the address its allowance
        right = requests.get(f"{root}/api/v1/libraries", headers={**behind("203.0.113.3"),
                                                                   "X-API-Key": "the-right-key"})
        assert right.status_code == 200
        signin = make_app(world, TRUSTED_PROXIES=1, SIGNIN_RATE=0.01, SIGNIN_BURST=2)
    with served(signin) as root:
        posts = [sign_in(requests.Session(), root, password="x", name=f"u{n}", headers=behind("203.0.113.4"))
                 .status_code for n in range(3)]
        assert posts == [401, 401, 429]
        assert sign_in(requests.Session(), root, headers=behind("203.0.113.8")).status_code == 302
