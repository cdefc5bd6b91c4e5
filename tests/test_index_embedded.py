"""Embedded (tantivy) specifics; the shared search contract is in test_backend_contract.py."""
import dataclasses

import pytest

from catalogue_fixtures import LIBRARIES, cluster

from index.backend import FACETS, SearchQuery
from index.documents import to_document
from index.embedded import EmbeddedIndex


def ids(results):
    return [h.id for h in results.hits]


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


def test_suggestions_remembered_only_until_the_next_commit(tmp_path):
    writer = EmbeddedIndex(tmp_path, heap_size=15_000_000)
    reader = EmbeddedIndex(tmp_path)
    writer.add([to_document(cluster("a", "Macbeth"), LIBRARIES)])
    writer.commit()
    assert [s["text"] for s in reader.suggest("mac")] == ["Macbeth"]
    reader.suggest("mac")[0]["text"] = "changed by a caller"  # a caller's copy, not the remembered list
    assert [s["text"] for s in reader.suggest("mac")] == ["Macbeth"]
    writer.add([to_document(cluster("b", "Macbeth and the witches", holdings=[("pku", "1"), ("thu", "2")]),
                            LIBRARIES)])
    writer.commit()
    assert [s["text"] for s in reader.suggest("mac")] == ["Macbeth and the witches", "Macbeth"]
    writer.close()


def test_works_counted_in_the_facet_pass_as_without_facets():
    """Above EXACT_UP_TO records the works are counted by the facet aggregation: the same "about N" as the
    separate count a search without facets makes."""
    ix = EmbeddedIndex(None, heap_size=15_000_000)
    docs = []
    for i in range(1300):
        c = cluster(f"r{i}", f"Common title {i // 2}")
        docs.append(to_document(dataclasses.replace(c, work_key=f"work-{i // 2}"), LIBRARIES))
    ix.add(docs)
    ix.commit()
    with_facets = ix.search(SearchQuery("common", group_works=True))
    without = ix.search(SearchQuery("common", group_works=True, facets=()))
    assert with_facets.total_is_estimate and without.total_is_estimate
    assert with_facets.total == without.total and abs(with_facets.total - 650) <= 20
    assert with_facets.facets["library"] == [("pku", 1300)] and with_facets.records == 1300
    ix.close()


def test_short_prefixes_looked_up_as_terms_suggest_what_the_key_prefixes_do(monkeypatch):
    """A prefix up to ``START_MAX`` characters is one term of ``suggest_start``; the same suggestions as the
    keys' prefix expansion, which longer prefixes still use (Han, pinyin, trailing space, article)."""
    from catalogue_fixtures import Contributor, ParallelField
    from index import suggest
    assert suggest.starts({"t": ["hong lou meng", "honglou"], "a": ["红楼梦"]}) == ["ho", "hon", "hong", "红", "红楼",
                                                                                  "红楼梦"]
    ix = EmbeddedIndex(None)
    ix.add(to_document(c, LIBRARIES) for c in [
        cluster("s-hlm", "Hong lou meng", holdings=[("pku", "1"), ("thu", "2")], parallel=[ParallelField("245", "紅樓夢", "$1")],
                contributors=[Contributor("Cao, Xueqin", primary=True)], subjects=["Chinese fiction"]),
        cluster("s-hist", "The history of China", subjects=["China -- History"]),
        cluster("s-hog", "Hogarth's progress", contributors=[Contributor("Hone, William", primary=True)])])
    ix.commit()
    typed = ["红", "红楼", "ho", "hon", "hong", "hong ", "hong l", "honglou", "hi", "his", "hist", "histo", "ch", "chi",
             "china", "ca", "cao x", "th", "the h", "hog"]
    as_terms = {t: ix.suggest(t) for t in typed}
    monkeypatch.setattr(suggest, "START_MAX", 0)
    ix._suggest_cache.clear()
    assert {t: ix.suggest(t) for t in typed} == as_terms
    assert as_terms["ho"] and as_terms["红"][0]["id"] == "s-hlm" and as_terms["th"][0]["id"] == "s-hist"


def test_title_sorted_works_page_fetched_once_when_the_facet_pass_counted_records(monkeypatch):
    """In title order a work's editions sort together: a grouped page's first fetch is sized by the records per work
    the facet pass counted (one pass over the matches), or grows by the editions per work seen; the same page."""
    from index import embedded_works
    ix = EmbeddedIndex(None, heap_size=15_000_000)
    ix.add(to_document(dataclasses.replace(cluster(f"t{w:02d}-{e}", f"Title {w:02d}"), work_key=f"work-{w}"),
                       LIBRARIES) for w in range(30) for e in range(4))
    ix.commit()
    fetches: list[int] = []
    real = embedded_works.page

    def counting(searcher, schema, query, q, ranked, *rest):
        return real(searcher, schema, query, q, lambda which, limit, offset=0: (fetches.append(limit),
                                                                               ranked(which, limit, offset))[1], *rest)
    monkeypatch.setattr(embedded_works, "page", counting)
    pages = {}
    for facets in (None, ()):
        fetches.clear()
        r = ix.search(SearchQuery("", sort="title", group_works=True, facets=facets))
        pages[facets] = ([(h.id, [e["id"] for e in h.editions]) for h in r.hits], r.total, list(fetches))
    # then every one of the 120 records: up to EXACT_UP_TO the works are counted exactly
    assert pages[None][2] == [100, 120] and pages[()][2] == [60, 100, 120]
    assert pages[None][:2] == pages[()][:2] and pages[None][1] == 30 and len(pages[None][0]) == 20
    assert pages[None][0][0] == ("t00-0", ["t00-1", "t00-2", "t00-3"])
    ix.close()


def test_close_after_a_commit_lets_the_merges_finish(tmp_path):
    """The eighth committed segment of a level makes tantivy's merge policy merge them; closing a clean writer
    waits for that merge instead of rolling it back (a rollback kills it: eight segments stayed)."""
    ix = EmbeddedIndex(tmp_path)
    for i in range(8):
        ix.add([to_document(cluster(f"m{i}", f"Merged title {i}"), LIBRARIES)])
        ix.commit()
    ix.close()
    reopened = EmbeddedIndex(tmp_path)
    assert reopened.stats()["segments"] == 1 and reopened.count() == 8


def _faceted_index() -> EmbeddedIndex:
    ix = EmbeddedIndex(None, heap_size=15_000_000)
    ix.add(to_document(dataclasses.replace(cluster(f"f{i}", f"Faceted title {i % 7}", holdings=[("pku", str(i))],
                                                   subjects=[f"Subject {i % 9}", f"Topic {i % 4}"]),
                                           work_key=f"work-{i % 40}"), LIBRARIES) for i in range(120))
    ix.commit()
    return ix


def test_facets_counted_on_a_worker_thread_as_in_the_search_thread(monkeypatch):
    """The facet pass runs on a worker thread while the page is fetched: the same counts, works and page as
    counting in the search's own thread, and a cached count is not counted again."""
    import threading
    from index import embedded_facets
    monkeypatch.setattr(embedded_facets, "idle_core", lambda: True)
    ix = _faceted_index()
    threads: list[str] = []
    real = embedded_facets.count

    def counting(*args):
        threads.append(threading.current_thread().name)
        return real(*args)
    monkeypatch.setattr(embedded_facets, "count", counting)
    asked = [SearchQuery("faceted", group_works=True), SearchQuery("", sort="title", group_works=True),
             SearchQuery("title", group_works=False, limit=5)]
    beside = [ix.search(q) for q in asked]
    assert len(threads) == 3  # on a worker, or taken back by the search thread when the page was done first
    assert [r.facets for r in beside] == [ix.search(q).facets for q in asked] and len(threads) == 3  # cached

    def in_this_thread(work, done):
        value = work()
        done(value)
        return lambda: value
    monkeypatch.setattr(embedded_facets, "pending", in_this_thread)
    ix._facet_cache.clear()
    ix._answers.clear()
    serial = [ix.search(q) for q in asked]
    assert threads[3:] == [threading.current_thread().name] * 3
    for a, b in zip(beside, serial):
        assert (a.facets, a.total, a.records, a.total_is_estimate) == (b.facets, b.total, b.records, b.total_is_estimate)
        assert [(h.id, [e["id"] for e in h.editions]) for h in a.hits] == [(h.id, [e["id"] for e in h.editions])
                                                                           for h in b.hits]
    assert beside[0].facets["library"] == [("pku", 120)] and beside[0].records == 120
    assert beside[0].facets["subject"][:2] == [("Topic 0", 30), ("Topic 1", 30)]
    assert list(beside[0].facets) == list(FACETS)
    ix.close()


def test_a_failing_facet_pass_fails_the_search_and_a_forked_child_gets_its_own_workers(monkeypatch):
    """An engine error on the worker thread is the search's :class:`SearchError`; a pool whose threads belong to
    another process (a fork after the first search) is replaced, not waited on forever."""
    from concurrent.futures import ThreadPoolExecutor
    from index import embedded_facets
    from index.backend import SearchError
    ix = _faceted_index()

    def broken(*args):
        raise ValueError("aggregation failed")
    with monkeypatch.context() as m:
        m.setattr(embedded_facets, "count", broken)
        with pytest.raises(SearchError, match="aggregation failed"):
            ix.search(SearchQuery("faceted", group_works=True))
    dead = ThreadPoolExecutor(1)
    dead.shutdown()
    monkeypatch.setattr(embedded_facets, "_pool", (-1, dead))
    monkeypatch.setattr(embedded_facets, "idle_core", lambda: True)
    assert ix.search(SearchQuery("faceted", group_works=True)).facets["library"] == [("pku", 120)]
    ix.close()


def test_a_relevance_page_fetches_before_the_facet_pass_is_done(monkeypatch):
    """In score order the first fetch does not wait for the facet pass's counts (they only size a sorted page's
    fetch); in a field's order it does."""
    from index import embedded_facets, embedded_works
    monkeypatch.setattr(embedded_facets, "idle_core", lambda: True)
    ix = _faceted_index()
    order: list[str] = []
    real = embedded_works.page

    def watching(searcher, schema, query, q, ranked, counted, *rest):
        return real(searcher, schema, query, q,
                    lambda which, limit, offset=0: (order.append("fetch"), ranked(which, limit, offset))[1],
                    lambda: (order.append("counts"), counted())[1], *rest)
    monkeypatch.setattr(embedded_works, "page", watching)
    ix.search(SearchQuery("faceted", group_works=True))
    assert order[0] == "fetch"
    order.clear()
    ix.search(SearchQuery("", sort="title", group_works=True))
    assert order[0] == "counts"
    ix.close()


def test_pending_work_runs_on_a_worker_or_is_taken_back_when_none_has_started(monkeypatch):
    """``pending`` hands work to a worker thread; work still queued when its result is wanted (every worker
    busy) runs in the caller's thread instead of waiting, and so does all work when no core is idle, when it is
    first wanted; either way its result is handed on once."""
    import threading
    import time
    from index import embedded_facets
    monkeypatch.setattr(embedded_facets, "CORES", 1)
    monkeypatch.setattr(embedded_facets, "_pool", None)
    monkeypatch.setattr(embedded_facets, "idle_core", lambda: True)
    done: list[str] = []
    on_worker = embedded_facets.pending(lambda: threading.current_thread().name, done.append)
    time.sleep(0.2)  # the worker has long started (and finished) it
    assert on_worker() == on_worker() and done == [on_worker()] and on_worker().startswith("unioncat-facets")
    release = threading.Event()
    busy = embedded_facets.pending(release.wait, lambda _: None)
    queued = embedded_facets.pending(lambda: threading.current_thread().name, done.append)
    assert queued() == threading.current_thread().name and done[1:] == [queued()]
    release.set()
    assert busy() is True
    monkeypatch.setattr(embedded_facets, "idle_core", lambda: False)  # no core to spare: done when first wanted
    inline = embedded_facets.pending(lambda: threading.current_thread().name, done.append)
    assert len(done) == 2 and inline() == threading.current_thread().name and done[2:] == [inline()]


@pytest.mark.parametrize("idle", [True, False])
def test_a_search_that_finds_nothing_counts_no_facet(monkeypatch, idle):
    """A page that finds no record has every facet asked empty, as a facet pass over no match counts them, and
    (without an idle core, where the pass waits until its counts are wanted) it runs none."""
    from index import embedded_facets
    from index.embedded import _all_of
    monkeypatch.setattr(embedded_facets, "idle_core", lambda: idle)
    ix = _faceted_index()
    passes: list[tuple[str, ...]] = []
    real = embedded_facets.count

    def counting(searcher, query, q, names):
        passes.append(names)
        return real(searcher, query, q, names)
    monkeypatch.setattr(embedded_facets, "count", counting)
    for q in [SearchQuery("zzzz", group_works=True), SearchQuery("zzzz", group_works=False),
              SearchQuery("zzzz", facets=("library", "year"), sort="title", group_works=True)]:
        found = ix.search(q)
        names = q.facets or FACETS
        nothing = real(ix._searcher(), _all_of(*ix._conditions(q)), q, tuple(names))[0]
        assert found.total == 0 and found.facets == nothing == {name: [] for name in names}
    # a relevance page needs no count; a sorted one sizes its fetch by the pass's counts, so it has run.  With
    # an idle core the first two pages' passes run in the background and may end after it: not ``passes[-1]``
    assert ("library", "year") in passes and (idle or passes == [("library", "year")])
    ix.close()


def test_records_of_works_found_by_term_queries_as_by_a_term_set():
    """``embedded_works._of_works`` narrows a query to some works with one term query a work, scored 1.0
    together: the same records in the same order with the same scores as the term set it replaces (which
    reads the whole work-hash column)."""
    import tantivy
    from tantivy import Occur, Query

    from index import embedded_works
    from index.works import HASH_FIELD, work_hash
    ix = EmbeddedIndex(None, heap_size=15_000_000)
    docs = [to_document(dataclasses.replace(cluster(f"r{i}", f"Common title {i % 7} {'extra ' * (i % 3)}"),
                                            work_key=f"work-{i % 40}"), LIBRARIES) for i in range(200)]
    ix.add(docs)
    ix.commit()
    searcher, schema = ix._searcher(), ix.schema
    query = Query.term_query(schema, "title", "common")
    works = {work_hash(d) for d in docs[:12]}
    term_set = Query.boolean_query([(Occur.Must, query), (Occur.Must, Query.term_set_query(schema, HASH_FIELD,
                                                                                             sorted(works)))])

    def ranked(q: tantivy.Query) -> list:
        return [(score, a.segment_ord, a.doc) for score, a in searcher.search(q, 300).hits]
    assert ranked(embedded_works._of_works(schema, query, works)) == ranked(term_set)
    assert len(ranked(term_set)) == 5 * 12
    ix.close()


def test_answers_given_again_until_the_index_changes(tmp_path, monkeypatch):
    """A search asked again is answered from memory — the same answer, a copy a caller may change — until a
    commit (from any process) reloads the index; another page, order or facet list is another answer."""
    from index import embedded_answers
    writer = EmbeddedIndex(tmp_path, heap_size=15_000_000)
    reader = EmbeddedIndex(tmp_path)
    writer.add(to_document(dataclasses.replace(cluster(f"m{i}", f"Macbeth {i % 5}"), work_key=f"w{i % 5}"), LIBRARIES)
               for i in range(30))
    writer.commit()
    q = SearchQuery("macbeth", limit=3, group_works=True)
    first = reader.search(q)
    passes: list[SearchQuery] = []
    monkeypatch.setattr(reader, "_search_once", lambda q: passes.append(q))  # any pass now fails the search
    again = reader.search(dataclasses.replace(q))
    assert (ids(again), again.facets, again.total, again.records) == (ids(first), first.facets, first.total, first.records)
    assert [[e["id"] for e in h.editions] for h in again.hits] == [[e["id"] for e in h.editions] for h in first.hits]
    again.hits[0].doc["title"], again.hits[0].editions[:] = "changed by a caller", []
    assert reader.search(q).hits[0].doc["title"] == first.hits[0].doc["title"] and reader.search(q).hits[0].editions
    assert not passes
    monkeypatch.undo()
    assert ids(reader.search(dataclasses.replace(q, offset=3))) != ids(first)
    writer.add([to_document(dataclasses.replace(cluster("new", "Macbeth", holdings=[("pku", "1"), ("thu", "2")]),
                                                work_key="w-new"), LIBRARIES)])
    writer.commit()
    assert reader.search(q).total == first.total + 1 and not reader._answers._answers.get(
        embedded_answers.key(q, reader._generation - 1))
    writer.close()


def test_answers_held_within_their_byte_budget():
    """The cache holds at most its budget of bytes (answers pickled), the least recently asked dropped first;
    an answer bigger than the whole budget is not kept."""
    import pickle
    from index.backend import Hit, SearchResults
    from index.embedded_answers import Answers

    def results(n: int) -> SearchResults:
        return SearchResults(total=n, hits=[Hit(id=str(i), score=1.0, doc={"title": f"{i}" + "x" * 1000}) for i in range(n)],
                             facets={}, took_ms=1.0)
    answers = Answers(size=len(pickle.dumps(results(2), pickle.HIGHEST_PROTOCOL)) * 3)
    for k in "abc":
        answers.put((k,), results(2))
    assert answers.get(("a",)).total == 2  # now the most recently asked
    answers.put(("d",), results(2))
    assert answers.get(("b",)) is None and [answers.get((k,)).total for k in "acd"] == [2, 2, 2]
    answers.put(("e",), results(7))
    assert answers.get(("e",)) is None and answers.get(("d",)) is not None


def test_the_answer_key_covers_every_field_of_the_query():
    """Two queries that differ in any one field never share a remembered answer (the key reads the fields
    generically, so a field added later is covered too)."""
    import dataclasses

    from index.backend import SearchQuery
    from index.embedded_answers import key

    changed = {"text": "x", "filters": {"region": ["Nanjing"]}, "offset": 20, "limit": 10, "sort": "title",
               "fields": {"title": "x"}, "facets": ("region",), "facet_size": 3, "any_of": {"library": ["a"]},
               "fuzzy": ("x",), "fuzzy_one": ("x",), "group_works": True}
    assert set(changed) == {f.name for f in dataclasses.fields(SearchQuery)}
    base = key(SearchQuery(), 0)
    assert all(key(SearchQuery(**{name: value}), 0) != base for name, value in changed.items())
    assert key(SearchQuery(filters={"a": ["1"], "b": ["2"]}), 0) == key(SearchQuery(filters={"b": ["2"], "a": ["1"]}), 0)
    assert key(SearchQuery(), 1) != base
