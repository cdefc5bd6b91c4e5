import pytest
from catalogue_fixtures import LIBRARIES, cluster, sample_clusters

from index.backend import QueryError, SearchBackend, SearchQuery, year_range
from index.documents import to_document
from index.embedded import EmbeddedIndex


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("index")
    ix = EmbeddedIndex(path, heap_size=15_000_000)
    ix.add(to_document(c, LIBRARIES) for c in sample_clusters())
    ix.commit()
    yield ix
    ix.close()


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


def test_writes_visible_after_commit_in_other_instance(tmp_path):
    writer = EmbeddedIndex(tmp_path, heap_size=15_000_000)
    reader = EmbeddedIndex(tmp_path)
    writer.add([to_document(cluster("a", "First title"), LIBRARIES)])
    assert reader.count() == 0 and writer.count() == 0  # nothing before commit
    writer.commit()
    assert reader.count() == 1
    assert ids(reader.search(SearchQuery("first"))) == ["a"]
    # replacing a document by id
    writer.add([to_document(cluster("a", "Second title"), LIBRARIES)])
    writer.add([to_document(cluster("b", "Another second"), LIBRARIES)])
    writer.commit()
    assert reader.count() == 2
    assert reader.search(SearchQuery("first")).total == 0
    assert reader.get("a")["title"] == "Second title"
    # deletion
    writer.delete(["a"])
    writer.commit()
    assert ids(reader.search(SearchQuery("second"))) == ["b"]
    assert reader.search(SearchQuery()).facets["library"] == [("pku", 1)]
    # clear swaps in at commit
    writer.clear()
    assert reader.count() == 1
    writer.commit()
    assert reader.count() == 0
    stats = writer.stats()
    assert stats["documents"] == 0 and stats["size_bytes"] > 0
    writer.close()
    reopened = EmbeddedIndex(tmp_path)
    reopened.add([to_document(cluster("c", "Third"), LIBRARIES)])  # the lock was released by close()
    reopened.commit()
    assert reader.count() == 1
    reopened.close()


def test_close_drops_uncommitted(tmp_path):
    ix = EmbeddedIndex(tmp_path, heap_size=15_000_000)
    ix.add([to_document(cluster("a", "Lost"), LIBRARIES)])
    ix.close()
    assert EmbeddedIndex(tmp_path).count() == 0


def test_in_memory_index():
    ix = EmbeddedIndex(None, heap_size=15_000_000)
    ix.add([to_document(cluster("a", "Memory"), LIBRARIES)])
    ix.commit()
    assert ids(ix.search(SearchQuery("memory"))) == ["a"]
    ix.close()


def test_reader_sees_commits_from_another_process(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    reader = EmbeddedIndex(tmp_path)
    assert reader.count() == 0
    script = (
        "import sys\n"
        "from catalogue_fixtures import LIBRARIES, cluster\n"
        "from index.documents import to_document\n"
        "from index.embedded import EmbeddedIndex\n"
        "ix = EmbeddedIndex(sys.argv[1], heap_size=15_000_000)\n"
        "ix.add([to_document(cluster('p1', '跨进程 commit'), LIBRARIES)])\n"
        "ix.commit()\n"
        "ix.close()\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {"PYTHONPATH": f"{root}{':'}{root / 'tests'}", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env, timeout=60)
    assert [h.id for h in reader.search(SearchQuery("进程")).hits] == ["p1"]


def test_facet_counts_are_cached_per_commit_and_follow_changes(tmp_path):
    """Paging and re-sorting reuse facet counts; a commit makes them fresh."""
    from dedupe.model import Cluster
    from index.documents import to_document
    from index.embedded import EmbeddedIndex
    from normaliser.model import Holding, Record

    def doc(i, region_source):
        rec = Record(source=region_source, local_id=str(i), title=f"Book {i}", year=2000 + i,
                     subjects=["China -- History -- 1949-", "Law"], holdings=[Holding(region_source, str(i))])
        return to_document(Cluster(id=f"c{i}", record=rec, members=[(region_source, str(i))]),
                           {"a": ("A", "North"), "b": ("B", "South")})

    ix = EmbeddedIndex(tmp_path / "ix")
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
    ix.close()
