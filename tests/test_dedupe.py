"""Dedupe through the real matcher: identifiers, never across formats or volumes, stable ids, every holding kept.

``match`` runs the same steps as a build (features → blocking → scoring with
vetoes → constrained clustering), in memory.
"""
from __future__ import annotations

import itertools
import random

import pytest

from dedupe.blocking import Found, MemoryBlocks, find_pairs
from dedupe.cluster import cluster
from dedupe.features import blocking_keys, record_features
from dedupe.ids import assign_ids
from dedupe.merge import merge_records
from dedupe.score import MATCH, VETO
from harvester.raw import RawRecord
from marc_fixtures import make_record
from normaliser import normalise
from normaliser.model import Classification, Contributor, Holding, Record


def rec(source, local_id, **kw) -> Record:
    kw.setdefault("title", "Personal rights and the domestic relations")
    kw.setdefault("year", 1899)
    kw.setdefault("contributors", [Contributor("Chadman, Charles E.", primary=True)])
    return Record(source=source, local_id=local_id, **kw)


def match(*records: Record, max_block: int = 500) -> tuple[list[list[tuple[str, str]]], Found]:
    """The clusters (sorted member keys) a build makes of ``records``, and what blocking found."""
    features = {r.key: record_features(r) for r in records}
    keys = {k: blocking_keys(f) for k, f in features.items()}
    found = find_pairs(set(features), MemoryBlocks(keys, features), max_block=max_block)
    edges = [(p.a, p.b, p.score, p.rule) for p in found.pairs if p.decision == MATCH]
    vetoed = [(p.a, p.b) for p in found.pairs if p.decision == VETO]
    groups, _rejected = cluster(keys, edges, vetoed=vetoed)
    return groups, found


def test_isbn_joins_and_never_across_formats():
    a = rec("a", "1", isbns=["9780306406157"])
    b = rec("b", "2", isbns=["9780306406157"], title="Personal rights and the domestic relations : a treatise")
    e = rec("c", "3", isbns=["9780306406157"], format="ebook")
    groups, _ = match(a, b, e)
    assert groups == [[("a", "1"), ("b", "2")], [("c", "3")]]  # the e-book stays apart


def test_isbn_10_and_13_of_one_book_join():
    """Members write the same ISBN in either form (and with hyphens); the normalised records are one edition."""
    records = [normalise(RawRecord(source=source, local_id="1", format="marc21",
                                   payload=make_record("1", title=title, isbn=isbn).as_marc()))
               for source, isbn, title in (("a", "0-306-40615-2", "Data structures"),
                                           ("b", "9780306406157", "DATA STRUCTURES."),
                                           ("c", "978-7-02-000220-7", "Data structures"))]
    assert match(*records)[0] == [[("a", "1"), ("b", "1")], [("c", "1")]]


def test_title_author_year_ignores_case_and_punctuation():
    a = rec("a", "1", title="Personal rights and the domestic relations /")
    b = rec("b", "1", title="PERSONAL RIGHTS AND THE DOMESTIC RELATIONS.")
    c = rec("c", "1", year=1900)
    groups, _ = match(a, b, c)
    assert [("a", "1"), ("b", "1")] in groups and [("c", "1")] in groups


def test_an_issn_alone_does_not_join_different_titles():
    journal = rec("a", "1", format="serial", title="Canadian journal of history", issns=["0008-4107"],
                  contributors=[])
    supplement = rec("b", "1", format="serial", title="Annual bibliography of Canadian history", issns=["0008-4107"],
                     contributors=[])
    groups, _ = match(journal, supplement)
    assert groups == [[("a", "1")], [("b", "1")]]


def test_part_numbers_keep_volumes_apart():
    v1 = rec("a", "1", part="v. 1")
    v2 = rec("b", "2", part="v. 2")
    assert match(v1, v2)[0] == [[("a", "1")], [("b", "2")]]


def test_a_huge_block_is_refused_and_reported():
    records = [rec("s" + str(i), str(i), title=f"Book number {i} of many", isbns=["9780000000002"], contributors=[])
               for i in range(12)]
    groups, found = match(*records, max_block=10)
    assert found.refused["isbn:9780000000002"] == 12
    assert all(len(g) == 1 for g in groups)


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


def test_merge_unites_every_members_lists_once_each_in_rank_order():
    """Strings and classifications each once, the best-ranked member's first, repeats inside one member too."""
    best = rec("a", "1", extent="186 p.", subjects=["Law", "Persons (Law)", "Law"], series=["Home study"],
               classifications=[Classification("lcc", "KF505"), Classification("lcc", "KF505")],
               languages=["eng"], urls=["http://a.example/1"])
    other = rec("b", "2", subjects=["Domestic relations", "Law"], languages=["eng", "fre"],
                classifications=[Classification("ddc", "346.01"), Classification("lcc", "KF505")],
                oclc_numbers=["12345", "12345"], urls=["http://b.example/2", "http://a.example/1"])
    for members in ([best, other], [other, best]):
        merged = merge_records(members)
        assert merged.subjects == ["Law", "Persons (Law)", "Domestic relations"]
        assert merged.languages == ["eng", "fre"] and merged.oclc_numbers == ["12345"]
        assert merged.series == ["Home study"] and merged.urls == ["http://a.example/1", "http://b.example/2"]
        assert merged.classifications == [Classification("lcc", "KF505"), Classification("ddc", "346.01")]
        assert best.subjects == ["Law", "Persons (Law)", "Law"]     # the members are not changed


def test_a_records_completeness_counts_lists_up_to_five_and_each_other_value_twice():
    assert rec("a", "1", title="", contributors=[], year=None).completeness() == 2   # format "book"
    assert rec("a", "1", title="T", contributors=[], year=2001, subjects=list("abcdefg"),
               isbns=["9780306406157"]).completeness() == 2 + 2 + 2 + 5 + 1


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
def test_clusters_ignore_record_order(seed):
    rng = random.Random(seed)
    records = [rec(f"m{i}", str(i), year=1899 + rng.randrange(2), part=rng.choice(["", "v. 1"]),
                   isbns=rng.choice([[], ["9780306406157"]])) for i in range(12)]
    shuffled = records[:]
    rng.shuffle(shuffled)
    assert match(*records)[0] == match(*shuffled)[0]


def test_different_oclc_numbers_keep_same_title_editions_apart():
    """Two 1900 'Ivanhoe's from different publishers share title, author and year but not OCLC numbers."""
    a = rec("a", "1", title="Ivanhoe : a romance", oclc_numbers=["1307313"])
    b = rec("b", "1", title="Ivanhoe : a romance", oclc_numbers=["1933701"])
    a2 = rec("c", "1", title="IVANHOE : A ROMANCE", oclc_numbers=["1307313"])
    bare = rec("d", "1", title="Ivanhoe : a romance")
    groups, _ = match(a, b, a2, bare)
    together = next(g for g in groups if ("a", "1") in g)
    assert ("c", "1") in together and ("b", "1") not in together
    # with only one manifestation about, the record without an OCLC number joins it
    assert match(a, a2, bare)[0] == [[("a", "1"), ("c", "1"), ("d", "1")]]


def test_an_oversized_block_split_into_title_windows():
    """With a window, a common surname in one year still finds the copies of a book, a window at a time."""
    words = ["".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=9)) for i in range(60)]
    others = [rec(f"s{i}", str(i), title=" ".join(words[3 * i:3 * i + 3])) for i in range(20)]
    copies = [rec("x", "1", title="Personal rights and the domestic relations"),
              rec("y", "1", title="Personal rights and the domestic relations /")]
    records = others + copies
    features = {r.key: record_features(r) for r in records}
    keys = {k: [x for x in blocking_keys(f) if x.startswith(("author:", "sig:"))] for k, f in features.items()}
    refused = find_pairs(set(features), MemoryBlocks(keys, features), max_block=10)
    split = find_pairs(set(features), MemoryBlocks(keys, features), max_block=10, window=3)
    assert refused.refused == split.split == {"author:chadman|1899": 22} and not refused.pairs
    assert [(p.a, p.b, p.decision) for p in split.pairs] == [(("x", "1"), ("y", "1"), MATCH)]
    # each record with the next three in title order, no more; the pre-filter settles the unlike titles
    assert split.compared + split.prefiltered == 22 * 3 - 6 and split.compared < 22 * 3 - 6


def _plain_clusters(record_keys, edges, vetoed):
    """The rules of ``cluster`` read plainly, record by record: pairs surest first (then by key), two groups
    joined only when every record of one is compatible with every record of the other — no member twice,
    no veto between them, one format, edition and volume, OCLC numbers and LCCNs shared record by record
    where both have some, ISBNs shared cluster-wide."""
    group = {k: frozenset([k]) for k in record_keys}
    apart = {frozenset(p) for p in vetoed}

    def values(records, prefix):
        return set().union(*({k[len(prefix):] for k in record_keys[r] if k.startswith(prefix)} for r in records))

    def fits(g, h):
        if any(frozenset((a, b)) in apart for a in g for b in h) or {a[0] for a in g} & {b[0] for b in h}:
            return False
        for kind in ("fmt", "ed", "vol"):
            x, y = values(g, f"sig:{kind}:"), values(h, f"sig:{kind}:")
            if x != y and (x and y or kind == "vol"):
                return False
        x, y = values(g, "isbn:"), values(h, "isbn:")
        return not (x and y and not x & y) and not any(
            (x := values([a], f"{kind}:")) and (y := values([b], f"{kind}:")) and not x & y
            for kind in ("oclc", "lccn") for a in g for b in h)

    for a, b, _, _ in sorted(edges, key=lambda e: (-e[2], e[0], e[1])):
        if group[a] != group[b] and fits(group[a], group[b]):
            for k in (joined := group[a] | group[b]):
                group[k] = joined
    return sorted(sorted(g) for g in set(group.values()))


@pytest.mark.parametrize("seed", range(6))
def test_clustering_decides_what_the_rules_read_record_by_record_decide(seed):
    """Copies share their keys (one list, as a batch of member rows decodes them) and the clustering compares
    them once; records of one key list, as clusters of them, must still join and stay apart as the rules say."""
    rng = random.Random(seed)
    for _ in range(400):
        pool = [[f"sig:{kind}:{rng.randint(1, 2)}" for kind in ("fmt", "ed", "vol") if rng.random() < 0.4]
                + [f"{kind}:{rng.randint(1, 3)}" for kind in ("isbn", "isbn", "oclc", "lccn") if rng.random() < 0.5]
                for _ in range(rng.randint(1, 5))]
        records = {(f"m{rng.randint(0, 6)}", str(rng.randint(0, 20))) for _ in range(rng.randint(2, 16))}
        keys = {r: rng.choice(pool) for r in sorted(records)}
        pairs = [tuple(rng.sample(sorted(records), 2)) for _ in range(rng.randint(0, 40))] if len(records) > 1 else []
        edges = [(a, b, rng.choice([1.0, 0.9, 0.75]), "rule") for a, b in pairs]
        vetoed = [tuple(rng.sample(sorted(records), 2)) for _ in range(rng.randint(0, 3))] if len(records) > 1 else []
        assert cluster(keys, edges, vetoed=vetoed)[0] == _plain_clusters(keys, edges, vetoed)
