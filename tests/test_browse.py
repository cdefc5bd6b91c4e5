"""Browse lists (``SearchBackend.browse``, :mod:`index.browse`) on both backends: authors A–Z, subjects, shelf list.

Each case runs on the embedded index and on Elasticsearch and must give the
same page; the shelf order cases pin how CLC and LCC class numbers file.
"""
from __future__ import annotations

import pytest
from catalogue_fixtures import LIBRARIES, cluster
from search_backends import KINDS

from index.browse import BrowseError, heading_key, shelf_key, shelf_start
from index.documents import to_document
from normaliser.model import Classification, Contributor


def catalogue():
    def book(cid, title, author, subjects=(), classes=(), libraries=("pku",)):
        return cluster(cid, title, holdings=[(s, f"X/{cid}") for s in libraries], languages=["eng"],
                       contributors=[Contributor(author, primary=True)] if author else [],
                       subjects=list(subjects), classifications=[Classification(s, v) for s, v in classes])
    return [
        book("b1", "Modern painters", "Ruskin, John, 1819-1900", ["Art -- History", "Painting"],
             [("lcc", "N7445 .R8"), ("clc", "J205.61")], ("pku", "thu")),
        book("b2", "Unto this last", "Ruskin, John, 1819-1900", ["Economics"], [("lcc", "HB161 .R9")]),
        book("b3", "The history of China", "Smith, John", ["China -- History"], [("lcc", "DS735 .S6"), ("clc", "K20")]),
        book("b4", "Ancient China", "Smith, Adam", ["China -- History"], [("lcc", "DS79 .S5"), ("clc", "K22")]),
        book("b5", "红楼梦", "曹雪芹, 1715?-1763", ["Chinese fiction"], [("clc", "I242.4")]),
        book("b6", "红楼梦研究", "俞平伯", ["Chinese fiction -- History and criticism"], [("clc", "I207.411")]),
        book("b7", "中国文学史", "Ba, Jin", ["Chinese literature -- History"], [("clc", "I209.2")]),
        book("b8", "Zen and the art", "Pirsig, Robert M.", ["Motorcycling"], [("lcc", "CT275 .P648")]),
        book("b9", "Economics", "Samuelson, Paul A.", ["Economics"], [("lcc", "HB171 .S23"), ("clc", "F0")]),
        book("b10", "Poems", "Émile, Zola", ["Poetry"], [("clc", "I565.24")]),
    ]


@pytest.fixture(scope="module", params=KINDS)
def built(request, backend_factory):
    ix = backend_factory(request.param)
    ix.add(to_document(c, LIBRARIES) for c in catalogue())
    ix.commit()
    return ix


def headings(entries):
    return [e.heading for e in entries]


def test_authors_a_to_z_with_han_filed_by_pinyin(built):
    page = built.browse("author")
    # 曹雪芹 files as "cao xue qin", 俞平伯 as "yu ping bo"; Émile as "emile"; dates stay in the heading
    assert headings(page.entries) == ["Ba, Jin", "曹雪芹, 1715?-1763", "Émile, Zola", "Pirsig, Robert M.",
                                      "Ruskin, John, 1819-1900", "Samuelson, Paul A.", "Smith, Adam",
                                      "Smith, John", "俞平伯"]
    assert [e.count for e in page.entries][4] == 2 and not page.more_after and not page.more_before


def test_author_list_from_a_start_with_neighbours_and_paging(built):
    page = built.browse("author", "smi", size=2, neighbours=2)
    assert headings(page.before) == ["Ruskin, John, 1819-1900", "Samuelson, Paul A."]
    assert headings(page.entries) == ["Smith, Adam", "Smith, John"] and page.more_after and page.more_before
    following = built.browse("author", page.entries[-1].key, size=5)
    assert headings(following.entries) == ["俞平伯"] and not following.more_after
    previous = built.browse("author", page.entries[0].key, size=3, backwards=True)
    assert headings(previous.entries) == ["Pirsig, Robert M.", "Ruskin, John, 1819-1900", "Samuelson, Paul A."]
    assert previous.more_before and previous.more_after
    assert headings(built.browse("author", "曹", size=1).entries) == ["曹雪芹, 1715?-1763"]
    assert built.browse("author", "zzz").entries == []


def test_subjects_with_counts(built):
    page = built.browse("subject", "china", size=3)
    assert [(e.heading, e.count) for e in page.entries] == [
        ("China -- History", 2), ("Chinese fiction", 1), ("Chinese fiction -- History and criticism", 1)]


def test_clc_shelf_list_files_digit_by_digit(built):
    page = built.browse("shelf", "I2", scheme="clc")
    assert [(e.heading, e.id) for e in page.entries] == [
        ("I207.411", "b6"), ("I209.2", "b7"), ("I242.4", "b5"), ("I565.24", "b10"), ("J205.61", "b1"),
        ("K20", "b3"), ("K22", "b4")]
    assert page.entries[0].doc["title"] == "红楼梦研究" and page.entries[0].count == 1
    assert headings(built.browse("shelf", "", scheme="clc", size=1).entries) == ["F0"]


def test_lcc_shelf_list_files_class_numbers_as_numbers_and_stays_in_its_scheme(built):
    page = built.browse("shelf", "DS", scheme="lcc", size=3, neighbours=5)
    assert headings(page.before) == ["CT275 .P648"]  # nothing of CLC's before it
    assert headings(page.entries) == ["DS79 .S5", "DS735 .S6", "HB161 .R9"]
    assert headings(built.browse("shelf", "HB171", scheme="lcc").entries) == ["HB171 .S23", "N7445 .R8"]


def test_the_shelf_around_a_record(built):
    doc = built.get("b3")
    page = built.browse("shelf", shelf_start("lcc", "DS735 .S6", doc), scheme="lcc", size=2, neighbours=1)
    assert [e.id for e in page.before] == ["b4"] and [e.id for e in page.entries] == ["b3", "b2"]


def test_unknown_lists_are_clear_errors(built):
    with pytest.raises(BrowseError, match="expected one of author, subject, shelf"):
        built.browse("publisher")
    with pytest.raises(BrowseError, match="expected one of clc, lcc"):
        built.browse("shelf", "I2", scheme="ddc")


def test_deleted_records_leave_the_lists(backend_factory):
    for kind in KINDS:
        ix = backend_factory(kind)
        ix.add(to_document(c, LIBRARIES) for c in catalogue())
        ix.commit()
        ix.delete(["b8"])
        ix.commit()
        assert "Pirsig, Robert M." not in headings(ix.browse("author").entries), kind


@pytest.mark.parametrize("scheme, ordered", [
    ("clc", ["I2", "I207.22", "I21", "I247", "I247.5", "I247.5/123", "I25", "TP3", "TP311.1"]),
    ("lcc", ["D1", "DA20", "DS79", "DS735", "DS735 .S6", "DS735 .S62", "E11"])])
def test_shelf_keys_order_class_numbers_as_shelves_do(scheme, ordered):
    assert sorted(ordered, key=lambda v: shelf_key(scheme, v) + "\x1f") == ordered


def test_heading_keys_ignore_case_accents_and_script():
    assert heading_key("Émile") == heading_key("emile") and heading_key("曹雪芹").startswith("cao xue qin")


def test_embedded_walk_reads_the_term_dictionary_bucket_by_bucket(tmp_path):
    """Letter jumps, pages across buckets, both directions, deleted records gone: as sorting every heading."""
    from index.embedded import EmbeddedIndex
    from index.embedded_terms import bucket
    names = [f"{a}{b}{c}son, Ann" for a in "BMS" for b in "aeiou" for c in "klmnr"]   # 75 headings, 15 buckets
    ix = EmbeddedIndex(tmp_path / "ix")
    ix.add(to_document(c, LIBRARIES) for c in [cluster(f"n{i}", f"Book {i}", languages=["eng"],
                                                        contributors=[Contributor(n, primary=True)])
                                               for i, n in enumerate(names)])
    ix.commit()
    ix.delete(["n0"])  # "Bakson, Ann" leaves the list once committed
    ix.commit()
    keys = sorted(f"{heading_key(n)}\x1f{n}" for n in names[1:])
    assert bucket("lcc\x1eDS 00735\x1fhistory") == "lcc\x1eDS 0" and bucket("smithson") == "smit"
    for start in ("m", "mek", "s", "zz", None):
        after = [k for k in keys if start is None or k >= start]
        before = [k for k in reversed(keys) if start is not None and k < start]
        assert [v for v, _ in ix._walk("browse_author", start, 12, False)] == after[:12]
        assert [v for v, _ in ix._walk("browse_author", start, 12, True)] == (before[:12] if start else keys[::-1][:12])
    assert headings(ix.browse("author", "b", size=3).entries) == ["Balson, Ann", "Bamson, Ann", "Banson, Ann"]
    ix.close()
