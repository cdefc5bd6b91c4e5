"""The forgiving search as the reader meets it, without a browser: "Did you mean" on the page and in
``/search.json``; the dedupe evidence line on the record page only for staff."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from test_web import PASSWORD, _login, env, make_app  # noqa: F401  (test_web's module catalogue)


def test_misspelled_search_corrects_and_suggests(env):  # noqa: F811
    client = make_app(env).test_client()
    data = client.get("/search.json?q=hiatory+of+chnia").get_json()
    assert data["suggestion"] == "history of china" and data["corrected"] is True
    assert [h["id"] for h in data["hits"]] == ["c-en-china"]
    params = parse_qs(urlsplit(data["suggestion_url"]).query)
    assert params["q"] == ["history of china"]
    html = client.get("/search?q=hiatory+of+chnia&f=language:eng").text
    assert "Did you mean:" in html and "<strong>history of china</strong>" in html
    assert "/search?f=language:eng&amp;q=history+of+china" in html.split("did-you-mean")[1].split("</p>")[0]   # filters kept


def test_right_spelling_has_no_suggestion(env):  # noqa: F811
    data = make_app(env).test_client().get("/search.json?q=history+of+china").get_json()
    assert data["suggestion"] == "" and data["corrected"] is False and data["total"] == 1
    nothing = make_app(env).test_client().get("/search.json?q=zzzzqqqq").get_json()
    assert nothing["total"] == 0 and nothing["suggestion"] == "" and nothing["suggestion_url"] is None


def test_matched_on_line_is_for_staff_only(env):  # noqa: F811
    client = make_app(env, STAFF_PASSWORD=PASSWORD).test_client()
    assert "Matched on:" not in client.get("/record/c-en-china").text
    assert client.get("/record/c-en-china.json").get_json()["match_keys"] == []
    _login(client)
    assert "Matched on:" in client.get("/record/c-en-china").text
    assert client.get("/record/c-en-china.json").get_json()["match_keys"] == ["isbn"]
