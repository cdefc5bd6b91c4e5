"""The per-string helpers memoised for the index stage give what they gave uncached, and a caller that changes
what it got back does not change what the next caller gets; the normaliser's worker entry point is the
pipeline's."""
from harvester.raw import RawRecord
from normaliser import authority, romanise, text
from normaliser.batch import normalise_batch, normalise_one
from unioncat import pipeline


def test_name_forms_gives_each_caller_its_own_list():
    first = romanise.name_forms("Zhao, Liewen")
    first.append("changed by a caller")
    assert romanise.name_forms("Zhao, Liewen") == first[:-1]
    assert romanise.name_forms("趙烈文") == romanise.name_forms("趙烈文") != []


def test_memoised_helpers_match_their_uncached_selves():
    for value in ["红楼梦", "紅樓夢 : 第一卷", "Lu, Xun, 1881-1936.", "", None, "plain ascii"]:
        assert text.pinyin(value) == text.pinyin.__wrapped__(value)
        assert text.pinyin_sort_text(value) == text.pinyin_sort_text.__wrapped__(value)
    for name in ["Lu, Xun, 1881-1936.", "周树人", "Smith, John"]:
        assert authority.heading_key(name) == authority.heading_key.__wrapped__(name)


def test_worker_batch_keeps_reasons_and_the_pipeline_uses_it():
    bad = RawRecord("m", "1", b"not a record", "iso2709", "marc21")
    [(data, reason)] = normalise_batch([bad], {})
    assert data is None and reason
    assert normalise_one(bad, ()) == (None, reason)
    assert pipeline.normalise_one is normalise_one


def test_normaliser_memos_match_their_uncached_selves_and_stay_bounded():
    from normaliser import identifiers
    from normaliser.memo import memoised
    for value in ["London :", "  Smith, J. ", "[Beijing] :", "", None, "北京 :"]:
        assert text.clean(value) == (text.strip_isbd(text.normalize_space(value)) if value else "")
    for value in ["0-306-40615-2 (pbk.)", "978 0 306 40615 7 : £9.99", "12345", "", None]:
        assert identifiers.split_isbn(value) == (identifiers._split_isbn.__wrapped__(value) if value else (None, ""))
    from normaliser import manifestation
    for value in ["Reprinted 2014", "3rd printing.", "Includes index.", "第3次印刷", ""]:
        assert manifestation._says_printing(value) == manifestation._says_printing.__wrapped__(value)
    for pair in [("2 audio discs", ""), ("300 p.", "Large print ed."), ("1 microfiche", ""), ("xiii, 236 p.", "")]:
        assert manifestation._carrier_words(pair) == manifestation.carrier_in_text(*pair)
    calls = []
    upper = memoised(2)(lambda s: calls.append(s) or s.upper())
    assert [upper(s) for s in "abab"] == ["A", "B", "A", "B"] and calls == ["a", "b"]
    upper("c")                      # full: emptied, then "c" kept
    upper("a")
    assert calls == ["a", "b", "c", "a"]


def test_browse_values_match_their_uncached_selves():
    from index import browse
    for value in ["Lu, Xun, 1881-1936.", "  曹雪芹 ", "Ruskin,\x1fJohn", "\x1e", "", "China -- History -- 1949-"]:
        assert browse._heading_value(value) == browse._heading_value.__wrapped__(value)
        assert browse._heading_value(value) == browse._heading_value(value)
