"""Dedupe, first version: exact keys, never across formats, stable ids, every holding kept."""
from __future__ import annotations

import itertools
import random

import pytest

from dedupe.cluster import assign_ids, group_records
from dedupe.keys import match_keys
from dedupe.merge import merge_records
from normaliser.model import Contributor, Holding, Record


def rec(source, local_id, **kw) -> Record:
    kw.setdefault("title", "Personal rights and the domestic relations")
    kw.setdefault("year", 1899)
    kw.setdefault("contributors", [Contributor("Chadman, Charles E.", primary=True)])
    return Record(source=source, local_id=local_id, **kw)


def test_isbn_key_and_never_across_formats():
    a = rec("a", "1", isbns=["9780306406157"])
    b = rec("b", "2", isbns=["9780306406157"], title="Something else entirely", year=2001)
    e = rec("c", "3", isbns=["9780306406157"], format="ebook")
    keys = {r.key: match_keys(r) for r in (a, b, e)}
    groups = group_records(keys).groups
    assert sorted(map(len, groups)) == [1, 2]
    assert [("c", "3")] in groups  # the e-book stays apart


def test_title_author_year_key_ignores_case_and_punctuation():
    a = rec("a", "1", title="Personal rights and the domestic relations /")
    b = rec("b", "1", title="PERSONAL RIGHTS AND THE DOMESTIC RELATIONS.")
    c = rec("c", "1", year=1900)
    keys = {r.key: match_keys(r) for r in (a, b, c)}
    groups = group_records(keys).groups
    assert [("a", "1"), ("b", "1")] in groups and [("c", "1")] in groups


def test_no_year_no_title_key_and_issn_needs_title():
    bare = rec("a", "1", year=None)
    assert match_keys(bare) == []
    serial = rec("a", "2", format="serial", issns=["0317-8471"])
    assert any(k.startswith("issn:serial:0317-8471:") for k in match_keys(serial))


def test_part_numbers_keep_volumes_apart():
    v1 = rec("a", "1", part="v. 1")
    v2 = rec("b", "2", part="v. 2")
    assert group_records({r.key: match_keys(r) for r in (v1, v2)}).groups == [[("a", "1")], [("b", "2")]]


def test_a_huge_block_is_refused_and_reported():
    keys = {("s", str(i)): ["isbn:book:9780000000002"] for i in range(12)}
    grouping = group_records(keys, max_block=10)
    assert grouping.refused_keys == {"isbn:book:9780000000002": 12}
    assert all(len(g) == 1 for g in grouping.groups)


def test_merge_keeps_every_holding_and_the_fullest_description():
    thin = rec("a", "1", holdings=[Holding("a", "1", call_number="KF505 .C43")])
    full = rec("b", "9", isbns=["9780306406157"], publisher="Home Study Pub. Co.", extent="xi, 186 p.",
               subjects=["Persons (Law)"], holdings=[])
    merged = merge_records([thin, full], {"a": 0, "b": 1})
    assert merged.publisher == "Home Study Pub. Co." and merged.isbns == ["9780306406157"]
    assert [(h.source, h.local_id, h.call_number) for h in merged.holdings] == \
        [("a", "1", "KF505 .C43"), ("b", "9", "")]  # a member without item fields still holds it


def test_merge_ignores_member_order():
    members = [rec(s, str(i), isbns=[f"978030640615{7}"], subjects=[f"s{i}"]) for i, s in enumerate("abcd")]
    results = {repr(merge_records(list(p)).to_dict()) for p in itertools.permutations(members)}
    assert len(results) == 1


def ids_for(groups, previous_assignment=None, created=None):
    prev = previous_assignment or {}
    prev_members = {}
    for k, cid in prev.items():
        prev_members.setdefault(cid, set()).add(k)
    return assign_ids(groups, prev, prev_members, created or {})


def test_ids_are_stable_and_merges_keep_the_oldest():
    first = ids_for([[("a", "1")], [("b", "1")]])
    (id_a,) = [c for c, m in first.clusters.items() if m == [("a", "1")]]
    (id_b,) = [c for c, m in first.clusters.items() if m == [("b", "1")]]
    assert id_a != id_b and first.changed == {id_a, id_b}
    previous = {("a", "1"): id_a, ("b", "1"): id_b}
    again = ids_for([[("a", "1")], [("b", "1")]], previous, {id_a: 1, id_b: 2})
    assert again.changed == set() and set(again.clusters) == {id_a, id_b}
    # b is older: the merged cluster keeps b's id, a's id redirects to it
    merged = ids_for([[("a", "1"), ("b", "1")]], previous, {id_a: 5, id_b: 2})
    assert list(merged.clusters) == [id_b] and merged.redirects == {id_a: id_b}


def test_split_keeps_the_id_on_the_larger_part_and_deletion_retires_it():
    members = [("a", "1"), ("b", "1"), ("c", "1")]
    previous = {m: "ucX" for m in members}
    split = ids_for([[("a", "1"), ("b", "1")], [("c", "1")]], previous, {"ucX": 1})
    assert split.clusters["ucX"] == [("a", "1"), ("b", "1")]
    assert len(split.clusters) == 2 and not split.redirects
    gone = ids_for([], previous, {"ucX": 1})
    assert gone.deleted == ["ucX"]


def test_ids_from_scratch_are_deterministic():
    rng = random.Random(4)
    groups = [[("s", str(i))] for i in range(50)]
    one = ids_for(groups)
    rng.shuffle(groups)
    two = ids_for(groups)
    assert {tuple(m): c for c, m in one.clusters.items()} == {tuple(m): c for c, m in two.clusters.items()}


@pytest.mark.parametrize("seed", range(5))
def test_grouping_is_transitive_and_order_independent(seed):
    rng = random.Random(seed)
    keys = {("s", str(i)): [f"k{rng.randrange(30)}"] for i in range(40)}
    shuffled = dict(sorted(keys.items(), key=lambda _: rng.random()))
    assert group_records(keys).groups == group_records(shuffled).groups


def test_title_key_is_vetoed_between_different_oclc_numbers():
    """Two 1900 'Ivanhoe's from different publishers share title, author and year but not OCLC numbers."""
    a = rec("a", "1", title="Ivanhoe : a romance", oclc_numbers=["1307313"])
    b = rec("b", "1", title="Ivanhoe : a romance", oclc_numbers=["1933701"])
    a2 = rec("c", "1", title="IVANHOE : A ROMANCE", oclc_numbers=["1307313"])
    bare = rec("d", "1", title="Ivanhoe : a romance")
    groups = group_records({r.key: match_keys(r) for r in (a, b, a2, bare)}).groups
    assert [("a", "1"), ("c", "1")] in groups
    assert [("b", "1")] in groups and [("d", "1")] in groups  # ambiguous: the bare record stays alone
    # with only one manifestation in the block, the record without OCLC number joins it
    groups = group_records({r.key: match_keys(r) for r in (a, a2, bare)}).groups
    assert groups == [[("a", "1"), ("c", "1"), ("d", "1")]]
