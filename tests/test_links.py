from urllib.parse import parse_qsl, urlsplit

from catalogue_fixtures import Contributor, record

from web import links


def _book():
    return record("Dream of the red chamber", subtitle="a novel", contributors=[Contributor("Cao, Xueqin", primary=True)],
                  isbns=["9787020002207"], year=1982, publisher="People's Literature", place="Beijing",
                  edition="2nd ed.", oclc_numbers=["12345"], lccns=["82123456"])


def test_openurl_book_context_object():
    url = links.openurl("https://ill.example.org/request", _book(), rft_id="https://cat.example.org/record/c1",
                        extra={"rfr_id": "info:sid/unioncat", "sid": "CAT"})
    parts = urlsplit(url)
    assert parts.netloc == "ill.example.org" and parts.path == "/request"
    pairs = parse_qsl(parts.query)
    kev = dict(pairs)
    assert kev["url_ver"] == kev["ctx_ver"] == "Z39.88-2004"
    assert kev["rft_val_fmt"] == "info:ofi/fmt:kev:mtx:book"
    assert kev["rft.btitle"] == "Dream of the red chamber: a novel"
    assert kev["rft.au"] == "Cao, Xueqin"
    assert kev["rft.isbn"] == "9787020002207"
    assert kev["rft.date"] == "1982"
    assert kev["rft.pub"] == "People's Literature"
    assert kev["rft.place"] == "Beijing"
    assert kev["rft.edition"] == "2nd ed."
    ids = [v for k, v in pairs if k == "rft_id"]
    assert ids == ["https://cat.example.org/record/c1", "urn:ISBN:9787020002207", "info:oclcnum/12345",
                   "info:lccn/82123456"]
    assert kev["rfr_id"] == "info:sid/unioncat" and kev["sid"] == "CAT"
    assert " " not in url and "+" not in parts.query


def test_openurl_appends_to_existing_query_and_params_override():
    url = links.openurl("https://ill.example.org/r?lang=zh", _book(), extra={"rft.genre": "bookitem"})
    assert url.startswith("https://ill.example.org/r?lang=zh&url_ver=Z39.88-2004")
    assert [v for k, v in parse_qsl(urlsplit(url).query) if k == "rft.genre"] == ["bookitem"]


def test_openurl_serial_uses_journal_format_and_skips_empty_values():
    serial = record("Journal of Asian Studies", format="serial", issns=["0021-9118"])
    kev = dict(links.openurl_pairs(serial))
    assert kev["rft_val_fmt"] == "info:ofi/fmt:kev:mtx:journal"
    assert kev["rft.jtitle"] == "Journal of Asian Studies" and kev["rft.issn"] == "0021-9118"
    assert "rft.au" not in kev and "rft.date" not in kev and "rft.btitle" not in kev


def test_openurl_encodes_cjk_as_utf8():
    url = links.openurl("https://ill.example.org/", record("红楼梦", year=2005))
    assert "rft.btitle=%E7%BA%A2%E6%A5%BC%E6%A2%A6" in url


def test_ill_url_prefers_member_service_and_none_without_any():
    rec = _book()
    assert links.ill_url(rec, None) is None
    assert links.ill_url(rec, "https://ill.example.org/").startswith("https://ill.example.org/?")
    assert links.ill_url(rec, "https://ill.example.org/", "https://ill.pku.example/").startswith("https://ill.pku.example/?")


def test_citation_and_ask_url():
    rec = _book()
    text = links.citation(rec, "https://cat.example.org/record/c1")
    assert text == ("Cao, Xueqin. Dream of the red chamber: a novel. 2nd ed. Beijing: People's Literature, 1982. "
                    "ISBN 9787020002207. https://cat.example.org/record/c1")
    url = links.ask_url("https://ask.example.org/form?q={citation}&src=cat", rec)
    assert url.startswith("https://ask.example.org/form?q=Cao%2C%20Xueqin.%20Dream")
    assert url.endswith("&src=cat")
    assert links.ask_url(None, rec) is None
    assert links.citation(record("")) == ""


def test_login_url_with_and_without_placeholder():
    back = "https://cat.example.org/record/c1?x=1&y=2"
    assert links.login_url("https://sso.example.org/login", back) == \
        "https://sso.example.org/login?target=https%3A%2F%2Fcat.example.org%2Frecord%2Fc1%3Fx%3D1%26y%3D2"
    assert links.login_url("https://sso.example.org/login?svc=cat&return={return}", back).startswith(
        "https://sso.example.org/login?svc=cat&return=https%3A%2F%2F")
    assert links.login_url(None, back) is None
