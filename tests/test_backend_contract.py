"""The search contract (``index/backend.py``), run against every backend: embedded and Elasticsearch.

Both must give the same answers to the same ``SearchQuery``; cases that depend on one engine's
internals stay in ``test_index_embedded.py`` and ``test_index_elastic.py``.
"""
import pytest
from catalogue_fixtures import LIBRARIES, cluster, sample_clusters
from search_backends import KINDS

from index.backend import QueryError, SearchBackend, SearchQuery, year_range
from index.documents import to_document


def indexed(backend_factory, kind: str, clusters) -> SearchBackend:
    ix = backend_factory(kind)
    ix.add(to_document(c, LIBRARIES) for c in clusters)
    ix.commit()
    return ix


@pytest.fixture(scope="module", params=KINDS)
def built(request, backend_factory):
    return indexed(backend_factory, request.param, sample_clusters())


def ids(results):
    return [h.id for h in results.hits]


def test_implements_protocol(built):
    assert isinstance(built, SearchBackend)
    assert built.count() == 6


def test_english_words_all_must_match(built):
    assert ids(built.search(SearchQuery("history china"))) == ["c-en-china"]
    assert ids(built.search(SearchQuery("History"))) == ["c-en-china"]
    assert built.search(SearchQuery("history nonsenseword")).total == 0


def test_accents_folded_and_phrase(built):
    assert ids(built.search(SearchQuery("muller"))) == ["c-en-china"]
    assert ids(built.search(SearchQuery('"history of china"'))) == ["c-en-china"]
    assert built.search(SearchQuery('"china of history"')).total == 0


def test_two_character_chinese_word_finds_longer_title(built):
    assert ids(built.search(SearchQuery("中国"))) == ["c-zh-history"]
    assert ids(built.search(SearchQuery("历史"))) == ["c-zh-history"]
    assert ids(built.search(SearchQuery("中国历史"))) == ["c-zh-history"]
    assert built.search(SearchQuery("国中")).total == 0  # characters in order, not a bag


def test_traditional_finds_simplified_and_back(built):
    # folded at index and at query time: either script finds both records
    assert sorted(ids(built.search(SearchQuery("红楼梦")))) == ["c-hlm-s", "c-hlm-t"]
    assert sorted(ids(built.search(SearchQuery("紅樓夢")))) == ["c-hlm-s", "c-hlm-t"]
    assert sorted(ids(built.search(SearchQuery("樓夢")))) == ["c-hlm-s", "c-hlm-t"]
    assert sorted(ids(built.search(SearchQuery("曹雪芹")))) == ["c-hlm-s", "c-hlm-t"]
    assert ids(built.search(SearchQuery("中國歷史"))) == ["c-zh-history"]
    assert sorted(ids(built.search(SearchQuery("", fields={"title": "紅樓夢"})))) == ["c-hlm-s", "c-hlm-t"]


def test_pinyin_finds_han_titles(built):
    assert sorted(ids(built.search(SearchQuery("hong lou meng")))) == ["c-hlm-s", "c-hlm-t"]
    assert ids(built.search(SearchQuery('"zhong guo li shi"'))) == ["c-zh-history"]
    assert built.search(SearchQuery('"meng lou hong"')).total == 0


def test_full_width_latin_and_digits_find_half_width(built):
    assert ids(built.search(SearchQuery("ＨＩＳＴＯＲＹ　ｃｈｉｎａ"))) == ["c-en-china"]
    assert ids(built.search(SearchQuery("９７８－７－０２－０００２２０－７"))) == ["c-zh-history"]


@pytest.mark.parametrize("text", ["9787020002207", "978-7-02-000220-7", "7-02-000220-X", "702000220x",
                                  "ISBN 978 7 02 000220 7", "isbn:702000220X"])
def test_isbn_in_any_form(built, text):
    assert ids(built.search(SearchQuery(text))) == ["c-zh-history"]


def test_isbn_as_word_and_advanced_field(built):
    assert ids(built.search(SearchQuery("history 0-306-40615-2"))) == ["c-en-china"]
    assert ids(built.search(SearchQuery(fields={"isbn": "0306406152"}))) == ["c-en-china"]
    assert built.search(SearchQuery(fields={"isbn": "12345"})).total == 0


def test_issn(built):
    assert ids(built.search(SearchQuery("0021-9118"))) == ["c-en-serial"]


def test_advanced_fields_are_anded(built):
    assert ids(built.search(SearchQuery(fields={"title": "history", "author": "smith"}))) == ["c-en-china"]
    assert built.search(SearchQuery(fields={"title": "smith"})).total == 0
    assert ids(built.search(SearchQuery(fields={"publisher": "plenum"}))) == ["c-en-china"]
    assert ids(built.search(SearchQuery(fields={"subject": "maps"}))) == ["c-en-map"]
    assert ids(built.search(SearchQuery("asia", fields={"subject": "history"}))) == []


def test_exclusion(built):
    assert ids(built.search(SearchQuery("曹雪芹 -1982"))) == ["c-hlm-s"]
    assert built.search(SearchQuery("曹雪芹 -\"红楼\"")).total == 0     # both scripts excluded alike
    assert built.search(SearchQuery("-history")).total == 5


def test_facet_counts(built):
    facets = built.search(SearchQuery()).facets
    assert dict(facets["library"]) == {"pku": 4, "thu": 3, "fdu": 3}
    assert dict(facets["region"]) == {"Beijing": 4, "Shanghai": 3}
    assert dict(facets["language"]) == {"chi": 3, "eng": 3}
    assert dict(facets["format"]) == {"book": 4, "map": 1, "serial": 1}
    assert dict(facets["year"])["1998"] == 1 and len(facets["year"]) == 5
    assert ("China", 1) in facets["subject"]  # main headings: "China -- History" counts under "China"
    assert facets["library"][0] == ("pku", 4)  # most first


def test_filters_narrow_and_facets_follow(built):
    res = built.search(SearchQuery(filters={"library": ["fdu"]}))
    assert sorted(ids(res)) == ["c-en-map", "c-hlm-t", "c-zh-history"]
    assert dict(res.facets["language"]) == {"chi": 2, "eng": 1}
    both = built.search(SearchQuery(filters={"library": ["fdu", "pku"]}))
    assert ids(both) == ["c-zh-history"]
    assert ids(built.search(SearchQuery(filters={"region": ["Shanghai"], "format": ["map"]}))) == ["c-en-map"]
    assert ids(built.search(SearchQuery(filters={"subject": ["Chinese fiction"]}))) == ["c-hlm-s"]
    assert built.search(SearchQuery(filters={"library": ["nowhere"]})).total == 0


def test_year_filters_and_ranges(built):
    assert ids(built.search(SearchQuery(filters={"year": ["1998"]}))) == ["c-zh-history"]
    assert sorted(ids(built.search(SearchQuery(filters={"year": ["1980-2000"]})))) == ["c-hlm-t", "c-zh-history"]
    assert sorted(ids(built.search(SearchQuery(filters={"year": ["2001-"]})))) == ["c-en-china", "c-hlm-s"]
    assert ids(built.search(SearchQuery(filters={"year": ["-1980"]}))) == ["c-en-map"]
    assert built.search(SearchQuery(filters={"year": ["not a year"]})).total == 0
    assert year_range("2000-1990") == (1990, 2000) and year_range("x") is None


def test_sorting(built):
    assert ids(built.search(SearchQuery(sort="year"))) == [
        "c-en-map", "c-hlm-t", "c-zh-history", "c-hlm-s", "c-en-china", "c-en-serial"]
    assert ids(built.search(SearchQuery(sort="-year"))) == [
        "c-en-china", "c-hlm-s", "c-zh-history", "c-hlm-t", "c-en-map", "c-en-serial"]
    titles = [h.doc["title"] for h in built.search(SearchQuery(sort="title", filters={"language": ["eng"]})).hits]
    assert titles == ["Atlas of Asia", "Journal of Asian Studies", "The history of China: an introduction"]
    with pytest.raises(QueryError):
        built.search(SearchQuery(sort="random"))


def test_paging(built):
    seen = []
    for offset in (0, 2, 4):
        res = built.search(SearchQuery(sort="year", offset=offset, limit=2))
        assert res.total == 6 and len(res.hits) == 2
        seen += ids(res)
    assert len(set(seen)) == 6
    assert built.search(SearchQuery(offset=6, limit=2)).hits == []


def test_count_only_and_huge_window(built):
    res = built.search(SearchQuery(limit=0))
    assert res.total == 6 and res.hits == [] and res.facets["library"]
    assert built.search(SearchQuery(offset=10**9, limit=10**9)).total == 6


def test_get_returns_document(built):
    doc = built.get("c-en-china")
    assert doc["title"] == "The history of China: an introduction"
    assert [h["source"] for h in doc["holdings"]] == ["thu", "pku"]
    assert built.get("missing") is None


@pytest.mark.parametrize("text", ['"foo:(', "AND OR", "title:", "((", ")", "[1 TO", "*", "?", "-", "--", '"',
                                  "NOT", "a:b:c", "\\", "~2", "^3", "{}", "<script>", "foo AND (bar OR", "中国:(",
                                  "\x00", " " * 10, "-\"\"", "title:中国 OR author:\"曹"])
def test_hostile_queries_never_raise(built, text):
    res = built.search(SearchQuery(text))
    assert res.total >= 0
    built.search(SearchQuery(fields={"title": text, "author": text, "isbn": text}))


def test_writes_visible_only_after_commit(fresh_backend):
    ix = fresh_backend
    ix.add([to_document(cluster("a", "First title"), LIBRARIES)])
    assert ix.count() == 0 and ix.search(SearchQuery("first")).total == 0  # nothing before commit
    ix.commit()
    assert ix.count() == 1
    assert ids(ix.search(SearchQuery("first"))) == ["a"]
    # replacing a document by id
    ix.add([to_document(cluster("a", "Second title"), LIBRARIES)])
    ix.add([to_document(cluster("b", "Another second"), LIBRARIES)])
    assert ix.get("a")["title"] == "First title"
    ix.commit()
    assert ix.count() == 2
    assert ix.search(SearchQuery("first")).total == 0
    assert ix.get("a")["title"] == "Second title"
    # deletion, also of ids that were never there
    ix.delete(["a", "never-indexed"])
    assert ix.count() == 2
    ix.commit()
    assert ids(ix.search(SearchQuery("second"))) == ["b"]
    assert ix.search(SearchQuery()).facets["library"] == [("pku", 1)]
    # clear swaps in at commit
    ix.clear()
    assert ix.count() == 1
    ix.add([to_document(cluster("c", "Third"), LIBRARIES)])
    assert ids(ix.search(SearchQuery())) == ["b"]
    ix.commit()
    assert ids(ix.search(SearchQuery())) == ["c"]
    ix.clear()
    ix.commit()
    assert ix.count() == 0 and ix.search(SearchQuery("third")).total == 0


def test_empty_backend_answers(fresh_backend):
    res = fresh_backend.search(SearchQuery("anything"))
    assert res.total == 0 and res.hits == []
    assert fresh_backend.count() == 0 and fresh_backend.get("x") is None


def test_facets_follow_changes(fresh_backend):
    """Paging and re-sorting keep the facet counts (the embedded backend caches them per commit); a commit refreshes them."""
    from dedupe.model import Cluster
    from normaliser.model import Holding, Record

    def doc(i, source):
        rec = Record(source=source, local_id=str(i), title=f"Book {i}", year=2000 + i,
                     subjects=["China -- History -- 1949-", "Law"], holdings=[Holding(source, str(i))])
        return to_document(Cluster(id=f"c{i}", record=rec, members=[(source, str(i))]),
                           {"a": ("A", "North"), "b": ("B", "South")})

    ix = fresh_backend
    ix.add([doc(1, "a"), doc(2, "b")])
    ix.commit()
    first = ix.search(SearchQuery(text="book"))
    assert dict(first.facets["region"]) == {"North": 1, "South": 1}
    assert dict(first.facets["subject"]) == {"China": 2, "Law": 2}  # main headings only
    assert ix.search(SearchQuery(text="book", offset=1, limit=1, sort="year")).facets == first.facets
    ix.add([doc(3, "b")])
    ix.commit()
    assert dict(ix.search(SearchQuery(text="book")).facets["region"]) == {"North": 1, "South": 2}
    ix.delete(["c3"])
    ix.add([doc(2, "a")])  # same number of documents, different counts
    ix.commit()
    assert dict(ix.search(SearchQuery(text="book")).facets["region"]) == {"North": 2}


def test_region_counts_records_not_copies(fresh_backend):
    """A record held by two Beijing libraries counts once under Beijing."""
    ix = fresh_backend
    ix.add([to_document(cluster("x", "Shared", holdings=[("pku", "A"), ("thu", "B"), ("pku", "C")]), LIBRARIES),
            to_document(cluster("y", "Alone", holdings=[("fdu", "D")]), LIBRARIES)])
    ix.commit()
    facets = ix.search(SearchQuery()).facets
    assert dict(facets["region"]) == {"Beijing": 1, "Shanghai": 1}
    assert dict(facets["library"]) == {"pku": 1, "thu": 1, "fdu": 1}
    assert ids(ix.search(SearchQuery(filters={"region": ["Beijing"], "library": ["thu"]}))) == ["x"]


def test_selected_facets_and_size(built):
    res = built.search(SearchQuery(facets=("format",), facet_size=2))
    assert list(res.facets) == ["format"] and res.facets["format"][0] == ("book", 4) and len(res.facets["format"]) == 2
    assert built.search(SearchQuery(facets=())).facets == {}


# -- forgiving search (issue 16): the same answers from both backends ---------------------------------------

def forgiving_clusters():
    from catalogue_fixtures import Contributor
    return [
        cluster("f-poems", "Poems", year=1990, languages=["eng"], contributors=[Contributor("Dickinson, Emily")]),
        cluster("f-color", "Color in the garden", year=2001, languages=["eng"]),
        cluster("f-macbeth", "Macbeth", year=1960, languages=["eng"],
                contributors=[Contributor("Shakespeare, William", primary=True)]),
        cluster("f-macbeth-study", "Macbeth and its critics: a study", year=1980, languages=["eng"],
                holdings=[("pku", "PR1"), ("thu", "PR2"), ("fdu", "PR3")]),
        cluster("f-organisation", "Organisation theory", year=2003, languages=["eng"]),
        cluster("f-lieder", "Die schönsten Lieder", year=1999, languages=["ger"]),
        cluster("f-hlm", "红楼梦", year=1982, languages=["chi"], contributors=[Contributor("曹雪芹", primary=True)]),
        cluster("f-xian", "西安", year=2011, languages=["chi"]),
        cluster("f-zglsh", "中国历史", year=2012, languages=["chi"]),
        cluster("f-mao", "毛泽东选集", year=1991, languages=["chi"]),
    ]


@pytest.fixture(scope="module", params=KINDS)
def forgiving(request, backend_factory):
    return indexed(backend_factory, request.param, forgiving_clusters())


@pytest.mark.parametrize("text, expected", [("poem", "f-poems"), ("poems", "f-poems"), ("gardens", "f-color"),
                                            ("organization", "f-organisation"), ("colour", "f-color"),
                                            ("colours garden", "f-color"), ("organised", "f-organisation"),
                                            ("lied", "f-lieder")])
def test_stems_and_spelling_variants(forgiving, text, expected):
    assert ids(forgiving.search(SearchQuery(text))) == [expected]


def test_original_form_ranks_above_stem(fresh_backend):
    fresh_backend.add([to_document(cluster("x-stem", "Running water"), LIBRARIES),
                       to_document(cluster("x-exact", "Runs of luck"), LIBRARIES)])
    fresh_backend.commit()
    assert ids(fresh_backend.search(SearchQuery("runs"))) == ["x-exact", "x-stem"]


def test_quoted_and_excluded_words_are_not_stemmed(forgiving):
    assert forgiving.search(SearchQuery('"poem"')).total == 0
    assert forgiving.search(SearchQuery("dickinson -poem")).total == 1


@pytest.mark.parametrize("text", ["hongloumeng", "HongLouMeng", "hong lou meng", "hóng lóu mèng", "hong2lou2meng4",
                                  "HONGLOUMENG"])
def test_pinyin_as_typed(forgiving, text):
    assert ids(forgiving.search(SearchQuery(text))) == ["f-hlm"]


def test_pinyin_run_together_segments(forgiving):
    assert ids(forgiving.search(SearchQuery("zhongguolishi"))) == ["f-zglsh"]
    assert ids(forgiving.search(SearchQuery("xian"))) == ["f-xian"]          # 西安 is "xi an"
    assert ids(forgiving.search(SearchQuery("maozedong xuanji"))) == ["f-mao"]
    assert forgiving.search(SearchQuery("loumenghong")).total == 0           # syllables in order


@pytest.mark.parametrize("typed, suggestion", [("macbth", "macbeth"), ("mcabeth", "macbeth"),
                                               ("shakespaere macbeth", "shakespeare macbeth"),
                                               ("orgnisation theory", "organisation theory"),
                                               ("dikinson", "dickinson")])
def test_typo_pass_finds_and_suggests(forgiving, typed, suggestion):
    res = forgiving.search(SearchQuery(typed))
    assert res.total >= 1 and res.corrected and res.suggestion == suggestion
    assert res.hits[0].id == forgiving.search(SearchQuery(suggestion)).hits[0].id


def test_typo_pass_only_when_nothing_found(forgiving):
    found = forgiving.search(SearchQuery("macbeth"))
    assert found.suggestion == "" and not found.corrected
    nothing = forgiving.search(SearchQuery("qqqqqqqq"))
    assert nothing.total == 0 and nothing.suggestion == ""
    assert forgiving.search(SearchQuery('"macbth"')).total == 0    # a quoted phrase means exactly that


def test_typo_suggests_pinyin_and_names_from_the_catalogue(forgiving):
    res = forgiving.search(SearchQuery("hong lou mang"))
    assert res.suggestion == "hong lou meng" and ids(res) == ["f-hlm"]


def test_exact_title_first_and_holdings_boost(forgiving):
    assert ids(forgiving.search(SearchQuery("macbeth"))) == ["f-macbeth", "f-macbeth-study"]
    # same words, no exact title: the record held by three libraries ranks first
    assert ids(forgiving.search(SearchQuery("macbeth", filters={"year": ["1970-"]})))[0] == "f-macbeth-study"


def test_suggest_titles_authors_subjects_han_and_pinyin(fresh_backend):
    from catalogue_fixtures import Contributor, ParallelField
    ix = fresh_backend
    ix.add(to_document(c, LIBRARIES) for c in [
        cluster("s-hlm", "Hong lou meng", holdings=[("pku", "1"), ("thu", "2"), ("fdu", "3")],
                contributors=[Contributor("Cao, Xueqin", primary=True)], subjects=["Chinese fiction -- Qing dynasty"],
                parallel=[ParallelField("245", "紅樓夢 / 曹雪芹", "$1")]),
        cluster("s-hist", "The history of China", holdings=[("pku", "1"), ("thu", "2")],
                contributors=[Contributor("Hsü, Immanuel", primary=True)], subjects=["China -- History"]),
        cluster("s-histo", "Histology for beginners", holdings=[("pku", "1")]),
    ])
    ix.commit()
    texts = lambda typed: [(s["kind"], s["text"]) for s in ix.suggest(typed)]  # noqa: E731
    for typed in ("红楼", "紅樓", "hong lou", "honglou", "HONG L", "Hóng lóu"):
        assert texts(typed)[0] == ("title", "紅樓夢"), typed
    assert ix.suggest("红楼")[0]["id"] == "s-hlm"
    # most-held first
    assert texts("histo") == [("title", "The history of China"), ("title", "Histology for beginners")]
    assert texts("history of ch") == [("title", "The history of China")]     # leading article skipped
    assert ("author", "Cao, Xueqin") in texts("cao")
    assert ("author", "Hsü, Immanuel") in texts("hsu i")
    assert ("subject", "Chinese fiction") in texts("chinese fic")
    assert texts("h") == [] and texts("") == [] and texts("zzzz") == []
    assert len(ix.suggest("h", limit=1)) == 0 and len(ix.suggest("hi", limit=1)) == 1


def test_works_grouped_in_the_engine_page_by_page(fresh_backend):
    """Editions of one work are one hit (the best-ranked), the others inside it in rank order; pages and the
    total count works; a record without a work key is a work of its own."""
    from dedupe.model import Cluster
    ix = fresh_backend
    made = []
    for n, (work, year, fmt) in enumerate([("w:ruskin", 1900, "book"), ("w:ruskin", 2015, "ebook"),
                                           ("w:ruskin", 1960, "book"), ("w:smith", 1990, "book"),
                                           ("", 1995, "book"), ("w:smith", 2001, "ebook"), ("", 1980, "book")]):
        c = cluster(f"g{n}", f"Painters book {n}", year=year, format=fmt)
        made.append(Cluster(id=c.id, record=c.record, members=c.members, work_key=work))
    ix.add(to_document(c, LIBRARIES) for c in made)
    ix.commit()
    grouped = ix.search(SearchQuery("painters", sort="year", group_works=True, limit=3))
    assert (grouped.total, grouped.records, grouped.total_is_estimate) == (4, 7, False)
    assert ids(grouped) == ["g0", "g6", "g3"]         # each work where its oldest edition files
    assert [[e["id"] for e in h.editions] for h in grouped.hits] == [["g2", "g1"], [], ["g5"]]
    rest = ix.search(SearchQuery("painters", sort="year", group_works=True, offset=3, limit=3))
    assert ids(rest) == ["g4"] and rest.total == 4 and not rest.hits[0].editions
    newest = ix.search(SearchQuery("painters", sort="-year", group_works=True, limit=10))
    assert ids(newest) == ["g1", "g5", "g4", "g6"] and [e["id"] for e in newest.hits[0].editions] == ["g2", "g0"]
    ungrouped = ix.search(SearchQuery("painters", sort="year", limit=10))
    assert ungrouped.total == 7 and ungrouped.records is None and not ungrouped.hits[0].editions
    # a browse (filters, no text): the same works, editions and counts; asked twice (Elasticsearch answers the
    # second's counts from its request cache)
    for _ in range(2):
        browse = ix.search(SearchQuery("", filters={"format": ["book"]}, sort="year", group_works=True, limit=3,
                                       facets=("format",)))
        assert (browse.total, browse.records, browse.facets) == (4, 5, {"format": [("book", 5)]})
        assert ids(browse) == ["g0", "g6", "g3"] and [[e["id"] for e in h.editions] for h in browse.hits] == [
            ["g2"], [], []]


def test_works_of_a_large_result_are_about_and_keep_their_editions(fresh_backend, monkeypatch):
    """Above ``EXACT_UP_TO`` records the count of works is HyperLogLog's ("about") and a page's editions come
    from a query of their own (they may rank beyond the hits in hand)."""
    from dedupe.model import Cluster
    from index import embedded_works, works
    monkeypatch.setattr(works, "EXACT_UP_TO", 2)
    monkeypatch.setattr(embedded_works, "EXACT_UP_TO", 2)
    ix = fresh_backend
    made = []
    for n, (work, year) in enumerate([("w:a", 1900), ("w:b", 1910), ("w:a", 1920), ("w:b", 1930), ("w:a", 1940)]):
        c = cluster(f"l{n}", f"Drawing book {n}", year=year)
        made.append(Cluster(id=c.id, record=c.record, members=c.members, work_key=work))
    ix.add(to_document(c, LIBRARIES) for c in made)
    ix.commit()
    first = ix.search(SearchQuery("drawing", sort="year", group_works=True, limit=1))
    assert first.total_is_estimate and first.records == 5 and 1 <= first.total <= 5
    assert ids(first) == ["l0"] and [e["id"] for e in first.hits[0].editions] == ["l2", "l4"]


def test_a_real_word_is_tried_as_a_typo_for_another_one_edit_away(fresh_backend):
    """Every word found alone, nothing together: each is tried at one edit (``shot`` → ``short``), never two
    (``ration`` is two edits from ``station``: a reader who typed it meant it)."""
    fresh_backend.add([to_document(cluster(i, title), LIBRARIES) for i, title in
                       [("t-short", "Short horn cattle"), ("t-shot", "Shot glass"), ("t-ration", "Ration books"),
                        ("t-station", "Station master")]])
    fresh_backend.commit()
    res = fresh_backend.search(SearchQuery("shot horn cattle"))
    assert res.corrected and res.suggestion == "short horn cattle" and ids(res) == ["t-short"]
    nothing = fresh_backend.search(SearchQuery("ration master"))
    assert nothing.total == 0 and nothing.suggestion == ""


def test_filters_that_find_nothing_correct_no_word(fresh_backend):
    """Every word found alone and the text finding records without the filters: the zero is the filters'
    doing, so no word is "corrected" into one that passes them (``shot`` → ``short`` would find 1990's
    record); a text that finds nothing even unfiltered is still corrected within the filters."""
    fresh_backend.add([to_document(cluster(i, title, year=year), LIBRARIES) for i, title, year in
                       [("t-short", "Short horn cattle", 1990), ("t-shot", "Shot glass", 2010)]])
    fresh_backend.commit()
    for q in (SearchQuery("shot", filters={"year": ["1980-1995"]}), SearchQuery("shot", any_of={"year": ["1980-1995"]}),
              SearchQuery("shot glass", filters={"year": ["1980-1995"]})):
        res = fresh_backend.search(q)
        assert res.total == 0 and res.suggestion == "" and not res.corrected, q
    res = fresh_backend.search(SearchQuery("shot horn", filters={"year": ["1980-1995"]}))
    assert res.corrected and res.suggestion == "short horn" and ids(res) == ["t-short"]
