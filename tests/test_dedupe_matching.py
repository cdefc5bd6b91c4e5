"""Fuzzy dedupe: features, vetoes, constrained clustering, incremental work, explain, overrides,
internal duplicates, and the targets on a realistic variant set built from real LoC records."""
from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dedupe.cluster import cluster
from dedupe.features import blocking_keys, edition_number, page_count, part_volume, record_features, surname, work_key
from dedupe.merge import merge_records
from dedupe.score import INTERNAL, MATCH, VETO, compare
from marc_fixtures import iso2709, make_record
from normaliser.model import Contributor, Holding, Record
from unioncat.cli import main


def rec(source="a", local_id="1", **kw) -> Record:
    kw.setdefault("title", "Personal rights and the domestic relations")
    kw.setdefault("year", 1899)
    kw.setdefault("contributors", [Contributor("Chadman, Charles E.", primary=True)])
    return Record(source=source, local_id=local_id, **kw)


def verdict(a: Record, b: Record):
    return compare(record_features(a), record_features(b))


# -- features ------------------------------------------------------------------------------

@pytest.mark.parametrize("statement, number", [
    ("2nd ed.", "2"), ("Second edition", "2"), ("3. Aufl.", "3"), ("第2版", "2"), ("第三版", "3"),
    ("Rev. ed.", "rev"), ("", ""), ("1st ed.", "1"),
])
def test_edition_numbers(statement, number):
    assert edition_number(statement) == number


@pytest.mark.parametrize("extent, pages", [
    ("xii, 345 p. : ill. ; 24 cm", 345), ("345 pages", 345), ("viii, 1024 pp.", 1024), ("334页", 334),
    ("1 online resource", None), ("", None),
])
def test_page_counts(extent, pages):
    assert page_count(extent) == pages


def test_volumes_from_part_or_title():
    assert part_volume(rec(part="v. 2")) == "2"
    assert part_volume(rec(part="Part three")) == "3"
    assert part_volume(rec(title="Collected papers, vol. IV")) == "4"
    assert part_volume(rec(title="中国历史地图集", part="第二册")) == "2"
    assert part_volume(rec()) == ""


def test_surnames_in_any_order_and_script():
    assert surname("Mackay, D. Scott") == surname("D. Scott Mackay") == "mackay"
    assert surname("B?hm, Christian") == "bhm"          # a lost letter leaves the rest comparable
    assert surname("廖修广") == surname("Liao, Xiuguang") == "liao"


def test_blocking_keys_and_signature():
    keys = blocking_keys(record_features(rec(isbns=["9780306406157"], edition="2nd ed.", part="v. 1")))
    assert "isbn:9780306406157" in keys and any(k.startswith("title:") for k in keys)
    assert "author:chadman|1899" in keys
    assert {"sig:fmt:book", "sig:year:1899", "sig:ed:2", "sig:vol:1"} <= set(keys)


def test_han_title_meets_its_romanisation():
    from normaliser.model import ParallelField
    marc21 = rec(title="Zhongguo li shi di tu ji", contributors=[Contributor("Tan, Qixiang", primary=True)],
                 parallel=[ParallelField("245", "中國歷史地圖集 / 譚其驤主編")], languages=["chi"], year=1996)
    cnmarc = rec("b", title="中国历史地图集", contributors=[Contributor("谭其骧", primary=True)], year=1996)
    v = verdict(marc21, cnmarc)
    assert v.decision == MATCH and v.features["title"] == 100 and v.features["authors"] == 1.0
    assert work_key(marc21) == work_key(cnmarc)


# -- vetoes and rules -----------------------------------------------------------------------

@pytest.mark.parametrize("change, veto", [
    (dict(format="ebook"), "format"),
    (dict(year=1905), "year"),
    (dict(edition="2nd ed."), "edition"),
    (dict(part="v. 2"), "volume"),
    (dict(extent="400 p."), "pages"),
])
def test_vetoes_beat_everything_else(change, veto):
    base = rec(isbns=["9787020002207"], extent="xi, 186 p.", edition="")
    other = rec("b", **{**dict(isbns=["9787020002207"], extent="186 pages"), **change})
    v = verdict(base, other)
    assert v.decision == VETO and veto in v.features["vetoes"]
    assert verdict(base, rec("b", isbns=["9787020002207"], extent="186 pages")).decision == MATCH


def test_a_volume_never_matches_the_whole_set():
    assert verdict(rec(), rec("b", part="v. 1")).decision == VETO


def test_isbn_forms_subtitle_and_author_order():
    a = rec(isbns=["9780306406157"], subtitle="a treatise", contributors=[
        Contributor("Chadman, Charles E.", primary=True), Contributor("Smith, John")])
    b = rec("b", isbns=["9780306406157"], contributors=[Contributor("John Smith", primary=True),
                                                         Contributor("C. E. Chadman")])
    v = verdict(a, b)
    assert v.decision == MATCH and v.rule == "identifier" and v.features["authors"] == 1.0
    c = rec("c", subtitle="a treatise", contributors=[Contributor("Smith, J."), Contributor("Chadman, C.")])
    assert verdict(a, c).rule == "title-author-year"


def test_a_wrong_isbn_in_another_book_does_not_merge():
    a = rec(isbns=["9780306406157"])
    b = rec("b", title="Ivanhoe", contributors=[Contributor("Scott, Walter", primary=True)], year=1899,
            isbns=["9780306406157"])
    assert verdict(a, b).decision == "no"


def test_generic_titles_need_everything_else_to_agree():
    report = dict(title="Annual report", contributors=[], year=2001)
    assert verdict(rec(**report), rec("b", **report)).rule == "generic-title-exact"
    assert verdict(rec(**report, publisher="Nanjing Library"),
                   rec("b", **report, publisher="Suzhou Museum")).decision == "no"


def test_same_member_pairs_are_internal_duplicates():
    assert verdict(rec("a", "1"), rec("a", "2")).decision == INTERNAL


# -- constrained clustering -----------------------------------------------------------------

def _keys(*records: Record) -> dict:
    return {r.key: blocking_keys(record_features(r)) for r in records}


def test_no_chain_across_a_veto():
    """v.1 ≈ the set record ≈ v.2 would chain two volumes together; the compatibility check refuses."""
    v1, v2, plain = rec("a", part="v. 1"), rec("b", part="v. 2"), rec("c")
    keys = _keys(v1, v2, plain)
    edges = [(v1.key, plain.key, 0.9, "test"), (plain.key, v2.key, 0.8, "test")]
    groups, rejected = cluster(keys, edges)
    assert len(groups) == 3 and {r[3] for r in rejected} == {"vol"}
    # years are not single-valued (a printing a year later is the same book): the pair's year veto stops it
    y1, y2, y0 = rec("a", year=1990), rec("b", year=1992), rec("c", year=None)
    assert verdict(y1, y2).rule == "year"
    groups, rejected = cluster(_keys(y1, y2, y0), [(y1.key, y0.key, 0.9, "t"), (y0.key, y2.key, 0.8, "t")],
                               vetoed=[(y1.key, y2.key)])
    assert [y1.key, y0.key] in groups and [y2.key] in groups and rejected[0][3] == "never-merge"


def test_vetoed_pairs_and_identifier_conflicts_stop_chains():
    a, b, c = rec("a", isbns=["9780306406157"]), rec("b"), rec("c", isbns=["9787020002207"])
    groups, rejected = cluster(_keys(a, b, c), [(a.key, b.key, 0.9, "t"), (b.key, c.key, 0.8, "t")])
    assert len(groups) == 2 and rejected[0][3] == "isbn-conflict"
    d = rec("d")
    groups, _ = cluster(_keys(a, b, d), [(a.key, b.key, 0.9, "t"), (b.key, d.key, 0.8, "t")], vetoed=[(a.key, d.key)])
    assert [a.key, b.key] in groups and [d.key] in groups


def test_one_member_never_twice_in_a_cluster():
    a1, a2, b = rec("a", "1"), rec("a", "2"), rec("b", "1")
    groups, rejected = cluster(_keys(a1, a2, b), [(a1.key, b.key, 0.9, "t"), (a2.key, b.key, 0.95, "t")])
    assert [a2.key, b.key] in groups and [a1.key] in groups and rejected[0][3] == "same-member"


def test_overrides_always_and_never():
    a, b, c = rec("a"), rec("b", title="Something else"), rec("c")
    keys = _keys(a, b, c)
    groups, _ = cluster(keys, [(a.key, c.key, 0.9, "t")], always=[(a.key, b.key)])
    assert groups == [[a.key, b.key, c.key]]
    groups, rejected = cluster(keys, [(a.key, c.key, 0.9, "t")], never=[(a.key, c.key)], always=[(a.key, b.key)])
    assert [a.key, b.key] in groups and [c.key] in groups and rejected[0][3] == "never-merge"
    # a never-merge beats an always-merge
    groups, _ = cluster(keys, [], never=[(a.key, b.key)], always=[(a.key, b.key)])
    assert len(groups) == 3


@pytest.mark.parametrize("seed", range(3))
def test_clustering_ignores_input_order(seed):
    rng = random.Random(seed)
    records = [rec(s, str(i), year=1899 + rng.randrange(2), part=rng.choice(["", "v. 1"])) for i, s in
               enumerate("abcdefgh")]
    keys = _keys(*records)
    edges = [(x.key, y.key, round(rng.random(), 3), "t") for x, y in itertools.combinations(records, 2)]
    first, _ = cluster(keys, edges)
    rng.shuffle(edges)
    again, _ = cluster(dict(sorted(keys.items(), key=lambda _: rng.random())), edges)
    assert first == again


# -- merged record ------------------------------------------------------------------------------

def test_merge_base_by_quality_and_every_holding_kept():
    caps = rec("a", title="PERSONAL RIGHTS AND THE DOMESTIC RELATIONS", extent="186 p.", subjects=["Law"],
               notes=["n1", "n2", "n3"], holdings=[Holding("a", "1", call_number="KF505")])
    good = rec("b", extent="xi, 186 p.", subjects=["Persons (Law)"], holdings=[Holding("b", "1"), Holding("b", "1", barcode="2")])
    thin = rec("c", contributors=[])
    merged = merge_records([caps, thin, good])
    assert merged.title == good.title
    assert [(h.source, h.barcode) for h in merged.holdings] == [("a", ""), ("b", ""), ("b", "2"), ("c", "")]


# -- the pipeline: incremental, explain, overrides, internal duplicates -------------------------

BOOKS = [
    # member, 001, title, author, isbn, year
    ("lib-a", "A1", "Personal rights and the domestic relations", "Chadman, Charles E.", "9780306406157", "1899"),
    ("lib-b", "B1", "PERSONAL RIGHTS AND THE DOMESTIC RELATIONS /", "Chadman, C. E.", None, "1899"),
    ("lib-c", "C1", "Personal rights & the domestic relations", "Chadman, Charles", "0306406152", "1899"),
    ("lib-a", "A2", "Dream of the red chamber", "Cao, Xueqin", "9787020002207", "1982"),
    ("lib-a", "A3", "Dream of the red chamber.", "Cao, Xueqin", None, "1982"),   # lib-a's own duplicate
    ("lib-b", "B2", "Dream of the red chamber", "Cao, Xueqin", "9787020002207", "1982"),
    ("lib-c", "C2", "Hong lou meng", "Cao, Xueqin", None, "1982"),
]
_rng = random.Random(7)
_WORDS = ("river mountain history letters garden city war peace theory practice music law trade sea "
          "empire science poetry village memory bridge").split()


def _word(n: int) -> str:
    return "".join(_rng.choice("bcdfghklmnprstvz") + _rng.choice("aeiou") for _ in range(n)).capitalize()


BOOKS += [("lib-b", f"B{n}", f"{_word(3)} {' '.join(_rng.sample(_WORDS, 3))}", f"{_word(4)}, Ann", None, "2001")
          for n in range(10, 110)]


def _dump(folder: Path, books) -> None:
    by_member = defaultdict(list)
    for member, cn, title, author, isbn, year in books:
        by_member[member].append(make_record(cn, title=title, author=author, isbn=isbn, year=year))
    for member in ("lib-a", "lib-b", "lib-c"):
        (folder / f"{member}.mrc").write_bytes(b"".join(iso2709(r) for r in by_member[member]))


@pytest.fixture
def consortium(tmp_path):
    _dump(tmp_path, BOOKS)
    sources = {"consortium": {"name": "Test"}, "sources": [
        {"id": m, "name": m, "region": "R", "protocol": "file", "path": f"{m}.mrc"} for m in ("lib-a", "lib-b", "lib-c")]}
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources), encoding="utf-8")
    return tmp_path


def cli(tmp_path, *args, code=0):
    result = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "var"),
                                       *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def catalogue(tmp_path):
    from unioncat.pipeline import Catalogue
    from unioncat.settings import load_settings

    return Catalogue(load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "var"))


def cluster_of(tmp_path, source, local_id):
    cat = catalogue(tmp_path)
    try:
        return cat.members.cluster_of(source, local_id)
    finally:
        cat.close()


def test_incremental_change_scores_only_its_blocks(consortium):
    from unioncat import pipeline

    cat = catalogue(consortium)
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        first = pipeline.build(cat).dedupe
        assert first.records_changed == len(BOOKS)
        chadman = cat.members.cluster_of("lib-a", "A1")
        assert cat.members.cluster_of("lib-b", "B1") == cat.members.cluster_of("lib-c", "C1") == chadman
        cluster = cat.clusters.get(chadman)
        assert cluster.work_key.startswith("personal rights") and len(cluster.record.holdings) == 3
        # lib-b corrects one filler record: only its blocks are scored again
        books = [b if b[1] != "B10" else (*b[:2], b[2] + " revised", *b[3:]) for b in BOOKS]
        _dump(consortium, books)
        pipeline.harvest(cat, pipeline.select_sources(cat))
        again = pipeline.build(cat).dedupe
        assert again.records_changed == 1
        assert again.pairs_compared < first.pairs_compared / 20, (again.pairs_compared, first.pairs_compared)
        assert cat.members.cluster_of("lib-a", "A1") == chadman
        # lib-c withdraws its copy: the entry keeps its id and two holdings, the copy's evidence is gone
        _dump(consortium, [b for b in books if b[1] != "C1"])
        pipeline.harvest(cat, pipeline.select_sources(cat), full=True)
        pipeline.build(cat)
        assert cat.members.cluster_of("lib-c", "C1") is None
        assert {h.source for h in cat.clusters.get(chadman).record.holdings} == {"lib-a", "lib-b"}
        from dedupe.evidence import EvidenceStore
        evidence = EvidenceStore(cat.engine)
        assert evidence.pairs_touching([("lib-c", "C1")]) == [] and evidence.features([("lib-c", "C1")]) == {}
    finally:
        cat.close()


def test_explain_overrides_and_full_rebuild(consortium):
    cli(consortium, "run")
    chadman = cluster_of(consortium, "lib-a", "A1")
    data = json.loads(cli(consortium, "dedupe", "explain", chadman, "--json").stdout)
    assert data["cluster"] == chadman and len(data["members"]) == 3
    rules = {(tuple(p["a"]), tuple(p["b"])): p["rule"] for p in data["joined_by"]}
    assert rules[(("lib-a", "A1"), ("lib-c", "C1"))] == "identifier"
    assert rules[(("lib-a", "A1"), ("lib-b", "B1"))] == "title-author-year"
    assert all(0 < p["score"] <= 1 and "title" in p["features"] for p in data["joined_by"])
    text = cli(consortium, "dedupe", "explain", chadman).stdout
    assert "rule identifier" in text and "lib-b:B1" in text

    # a librarian splits lib-c's copy off and joins the romanised Hong lou meng to the Dream
    cli(consortium, "dedupe", "never-merge", "lib-a:A1", "lib-c:C1", "--note", "different printing")
    cli(consortium, "dedupe", "always-merge", "lib-b:B2", "lib-c:C2")
    listed = json.loads(cli(consortium, "dedupe", "overrides", "--json").stdout)
    assert [(o["kind"], o["a"], o["b"], o["note"]) for o in listed] == [
        ("never", "lib-a:A1", "lib-c:C1", "different printing"), ("always", "lib-b:B2", "lib-c:C2", "")]

    def check():
        assert cluster_of(consortium, "lib-c", "C1") != cluster_of(consortium, "lib-a", "A1")
        assert cluster_of(consortium, "lib-a", "A1") == cluster_of(consortium, "lib-b", "B1") == chadman
        assert cluster_of(consortium, "lib-c", "C2") == cluster_of(consortium, "lib-b", "B2")

    check()
    explained = json.loads(cli(consortium, "dedupe", "explain", chadman, "--json").stdout)
    assert explained["overrides"][0]["kind"] == "never"
    assert any(p["why_apart"] for p in explained["kept_apart"])
    # a full rebuild scores every record again and still applies the overrides
    cli(consortium, "build", "--full")
    check()
    cli(consortium, "dedupe", "remove-override", "lib-a:A1", "lib-c:C1")
    assert cluster_of(consortium, "lib-c", "C1") == chadman
    cli(consortium, "dedupe", "remove-override", "lib-a:A1", "lib-c:C1", code=1)


def test_override_errors_are_clear(consortium):
    cli(consortium, "run")
    assert "expected SOURCE:LOCAL_ID" in cli(consortium, "dedupe", "never-merge", "A1", "lib-c:C1", code=2).output
    assert "no such record: lib-c:NOPE" in cli(consortium, "dedupe", "always-merge", "lib-a:A1", "lib-c:NOPE",
                                                code=2).output
    assert "no cluster ucnothing" in cli(consortium, "dedupe", "explain", "ucnothing", code=1).output


def test_internal_duplicates_report(consortium):
    cli(consortium, "run")
    assert cluster_of(consortium, "lib-a", "A2") != cluster_of(consortium, "lib-a", "A3")
    report = json.loads(cli(consortium, "dedupe", "internal-duplicates", "--json").stdout)
    assert [(p["a"], p["b"]) for p in report["lib-a"]] == [("A2", "A3")]
    assert report["lib-a"][0]["title"] == "dream of the red chamber"
    assert json.loads(cli(consortium, "dedupe", "internal-duplicates", "--source", "lib-b", "--json").stdout) == {}
    text = cli(consortium, "dedupe", "internal-duplicates").stdout
    assert "lib-a: 1 pair(s)" in text and "A2\tA3" in text
    assert "unknown source" in cli(consortium, "dedupe", "internal-duplicates", "--source", "x", code=2).output


# -- the realistic variant set (real LoC records) ---------------------------------------------

@pytest.fixture(scope="module")
def variant_scores(tmp_path_factory):
    from dedup_variants import built_variants
    from dedupe.evaluate import evaluate
    from dedupe.explain import accepted_pair_rules

    with built_variants(tmp_path_factory.mktemp("variants")) as (vs, cat, _):
        predicted = {k: cid for k, (_, cid) in cat.members.load().items()}
        result = evaluate(vs.gold, predicted, pair_rules=accepted_pair_rules(cat.engine))
    return vs, predicted, result


def test_variant_set_targets(variant_scores):
    vs, _, result = variant_scores
    s = result.scores
    assert len(vs.gold) > 600 and sum(1 for k in vs.gold if k[0] == "lib-cn") >= 30
    assert s.precision >= 0.995 and s.recall >= 0.97, result.as_dict()
    assert result.by_rule["identifier"].pairs_predicted > 0 and result.by_rule["title-author-year"].pairs_predicted > 0


def test_variant_set_merges_no_hard_negative(variant_scores):
    vs, predicted, _ = variant_scores
    assert set(vs.negatives.values()) == {"edition", "volume", "ebook", "reprint"}
    by_cluster = defaultdict(list)
    for k in vs.gold:
        by_cluster[predicted[k]].append(k)
    merged = [(n, other) for n in vs.negatives for other in by_cluster[predicted[n]] if other != n]
    assert merged == []


def test_variant_set_joins_cnmarc_and_marc21(variant_scores):
    vs, predicted, _ = variant_scores
    joined = [k for k in vs.gold if k[0] == "lib-cn"
              and any(predicted[o] == predicted[k] for o in vs.gold if o[0] != "lib-cn" and vs.gold[o] == vs.gold[k])]
    assert len(joined) == sum(1 for k in vs.gold if k[0] == "lib-cn")


def test_incremental_clusters_equal_a_full_reclustering(consortium):
    """Re-clustering only what a change can reach gives the clusters a full pass gives."""
    from dedupe.evidence import EvidenceStore
    from dedupe_reference import stored_clusters
    from unioncat import pipeline

    def assert_consistent(cat):
        stored = cat.members.load()
        groups = stored_clusters({k: keys for k, (keys, _) in stored.items()}, EvidenceStore(cat.engine))
        by_cluster = defaultdict(set)
        for k, (_, cid) in stored.items():
            by_cluster[cid].add(k)
        assert sorted(map(sorted, by_cluster.values())) == sorted(groups)

    rng = random.Random(3)
    books = list(BOOKS)
    cat = catalogue(consortium)
    try:
        for step in range(4):
            _dump(consortium, books)
            pipeline.harvest(cat, pipeline.select_sources(cat), full=True)
            report = pipeline.build(cat).dedupe
            assert_consistent(cat)
            if step:
                assert report.records_reclustered < len(books) / 2
            # next step: a linking ISBN appears, a copy is withdrawn, a new copy arrives
            books = [b for b in books if b[1] != rng.choice(["A1", "B1", "C1", "B2"])]
            books.append(("lib-c", f"C9{step}", "Dream of the red chamber", "Cao, Xueqin", "9787020002207", "1982"))
            books = [(m, cn, t, a, "9787020002207" if cn == "C2" else i, y) for m, cn, t, a, i, y in books]
    finally:
        cat.close()
