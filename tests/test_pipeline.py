"""The whole pipeline on the embedded default, with a real OAI-PMH peer and file dumps.

harvest → raw store → normalise → dedupe → index → CLI and web, then the
incremental cases a data centre lives with: nothing changed, a record
changed, a holding withdrawn, a record that bridges two clusters, a broken
record, a dead member.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pymarc import Field, Indicators, Subfield

from marc_fixtures import iso2709, make_record, marcxml
from unioncat.cli import main
from demo.oai_member import OaiRecord, make_app, serve


def item(tag: str, **sub: str) -> Field:
    return Field(tag=tag, indicators=Indicators(" ", " "), subfields=[Subfield(k, v) for k, v in sub.items()])


BOOKS = {
    # base id: (title, author, isbn, year)
    "b1": ("Dream of the red chamber", "Cao, Xueqin", "9787020002207", "1982"),
    "b2": ("中国历史地图集", "谭其骧", "9787503118555", "1996"),
    "b3": ("Personal rights and the domestic relations", "Chadman, Charles E.", None, "1899"),
    "b4": ("Annual report", None, None, "2001"),
}


def dump(path: Path, records) -> None:
    path.write_bytes(b"".join(iso2709(r) for r in records))


@pytest.fixture
def consortium(tmp_path):
    """Two file members and one OAI-PMH member served by the oaipmh package on loopback."""
    (tmp_path / "dumps").mkdir()
    lib_a = [make_record(f"A-{k}", title=t, author=a, isbn=i, year=y,
                         extra=[item("852", b="MAIN", c="Stacks", h="PL2727", i=".S2", p=f"A{k}")])
             for k, (t, a, i, y) in BOOKS.items() if k != "b4"]
    lib_a.append(make_record("A-5", title="Only in library A"))
    dump(tmp_path / "dumps" / "lib-a.mrc", lib_a)
    with open(tmp_path / "dumps" / "lib-a.mrc", "ab") as fh:
        fh.write(b"00099nam  22000377a 4500001000800000\x1e\x1d")  # a record cut short
    # lib-c: the same b3 catalogued without ISBN and in capitals — only the title key can join it
    dump(tmp_path / "dumps" / "lib-c.mrc", [
        make_record("C-1", title="PERSONAL RIGHTS AND THE DOMESTIC RELATIONS /", author="Chadman, Charles E.",
                    year="1899", extra=[item("949", a="KF505 .C43", i="C0001", l="STACKS", m="MAIN")]),
        make_record("C-2", title="Annual report", author=None, year="2001"),
    ])
    oai = [OaiRecord(identifier=f"oai:lib-b:{n}", datestamp=datetime(2025, 3, 1, 8, n), sets=["books"],
                     marcxml=marcxml(make_record(str(n), title=t, author=a, isbn=i, year=y,
                                                 extra=[item("952", a="B-LIB", c="GEN", o=f"CALL {n}", p=f"B{n}")])))
           for n, (t, a, i, y) in enumerate(BOOKS.values(), start=1)]
    app = make_app(oai, repository_name="Library B", batch_size=2)
    url, stop = serve(app)
    sources = {
        "consortium": {"name": "Test Consortium", "ill_url": "https://ill.example.org/openurl",
                       "ask_url": "https://ask.example.org/?q={citation}", "login_url": "https://uas.example.org/login"},
        "sources": [
            {"id": "lib-a", "name": "Library A", "region": "Nanjing", "protocol": "file", "path": "dumps/lib-a.mrc",
             "holdings": "marc852", "opac_url": "https://opac.a.example.edu.cn/record/{local_id}"},
            {"id": "lib-b", "name": "Library B", "region": "Suzhou", "protocol": "oai", "url": url,
             "metadata_prefix": "marcxml", "set": "books", "ils": "koha", "base_url": "https://koha.b.example.edu.cn"},
            {"id": "lib-c", "name": "Library C", "region": "Wuxi", "protocol": "file", "path": "dumps/lib-c.mrc",
             "holdings": "generic949"},
        ],
    }
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")
    yield tmp_path, app
    stop()


def cli(tmp_path, *args, code=0):
    result = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "var"),
                                       *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def search(tmp_path, *words, **kw):
    out = cli(tmp_path, "search", "--json", "--limit", "50", *words).stdout
    return json.loads(out)


def test_end_to_end_and_incremental(consortium):
    tmp_path, app = consortium
    run = cli(tmp_path, "run")
    assert "[lib-b] ok: 4 added" in run.stderr and "[lib-a] ok: 4 added" in run.stderr
    assert "1 quarantined" in run.stderr  # the record cut short, kept with its reason
    assert "ledger snapshot of" in run.stderr  # cron's `run` keeps the contribution ledger's snapshot fresh

    # A title three libraries hold is one hit with three holdings, each library named
    hits = search(tmp_path, "personal rights domestic relations")
    assert hits["total"] == 1
    (hit,) = hits["hits"]
    assert {h["source"] for h in hit["holdings"]} == {"lib-a", "lib-b", "lib-c"}
    assert {h["library"] for h in hit["holdings"]} == {"Library A", "Library B", "Library C"}
    assert hit["library_count"] == 3
    assert {"library", "region", "format", "language", "year", "subject"} <= set(hits["facets"])
    by_source = {h["source"]: h for h in hit["holdings"]}
    assert by_source["lib-b"]["opac_url"] == "https://koha.b.example.edu.cn/cgi-bin/koha/opac-detail.pl?biblionumber=3"
    assert by_source["lib-a"]["call_number"] == "PL2727 .S2"

    # Chinese: a two-character word finds the atlas; an ISBN in ISBN-10 hyphenated form finds its record
    assert search(tmp_path, "中国")["total"] == 1
    assert search(tmp_path, "7-02-000220-X")["hits"][0]["title"].startswith("Dream of the red chamber")
    # A generic title held by two libraries, with no author and no identifiers, is one entry per year+title
    assert search(tmp_path, "annual report")["total"] == 1

    status = json.loads(cli(tmp_path, "status", "--json").stdout)
    assert status["totals"]["quarantined"] == 1
    assert status["totals"]["clusters"] == 5
    record_id = hit["id"]
    rec = json.loads(cli(tmp_path, "record", record_id).stdout)
    assert rec["library_count"] == 3
    marcxml_out = cli(tmp_path, "record", record_id, "--format", "marcxml").stdout
    assert marcxml_out.count("<record") == 3

    # Nothing changed: a second run changes nothing downstream
    again = cli(tmp_path, "run")
    assert "normalise: 0 records" in again.stderr and "0 clusters written" in again.stderr
    assert "ledger snapshot of" not in again.stderr  # minutes old: not computed again

    # Library C withdraws its copy: the entry stays, with two holdings; the id is stable
    dump(tmp_path / "dumps" / "lib-c.mrc", [make_record("C-2", title="Annual report", author=None, year="2001")])
    cli(tmp_path, "run")
    changed = search(tmp_path, "personal rights domestic relations")
    (hit2,) = changed["hits"]  # replaced in the index, not added beside the first build's document
    assert hit2["id"] == record_id
    assert {h["source"] for h in hit2["holdings"]} == {"lib-a", "lib-b"}


def test_a_rebuilt_index_holds_each_entry_once_and_a_walk_each_cluster_once(consortium):
    """A first build and a rebuild add without replacing (``fresh``): the walk they read must give each
    cluster once even when a cluster is rewritten while it runs (a later seq, past the walk's bound)."""
    from unioncat.catalogue import Catalogue
    from unioncat.settings import load_settings

    tmp_path, _ = consortium
    cli(tmp_path, "run")
    cli(tmp_path, "build", "--reindex")
    cat = Catalogue(load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "var"))
    try:
        assert cat.index.count() == cat.clusters.count() == 5
        assert search(tmp_path, "personal rights domestic relations")["total"] == 1
        with cat.engine.connect() as conn:
            upto = conn.exec_driver_sql("SELECT max(seq) FROM clusters").scalar_one()
        walked = []
        for seq, cluster_id, _ in cat.clusters.changed_since(0, batch=1, upto=upto):
            if not walked:  # the first cluster rewritten behind the walk: a new seq, past the bound
                with cat.engine.begin() as conn:
                    conn.exec_driver_sql("UPDATE clusters SET seq = ? WHERE id = ?", (upto + 1, cluster_id))
            walked.append(cluster_id)
        assert len(walked) == len(set(walked)) == 5
        assert [c for _, c, _ in cat.clusters.changed_since(upto)] == [walked[0]]  # the next walk's
    finally:
        cat.close()


def _killed_after(batches: int):
    """A progress callback that raises on the ``batches``-th "indexed" message (the stage's work so far done)."""
    seen = []

    def progress(message: str) -> None:
        if message.startswith("indexed"):
            seen.append(message)
            if len(seen) == batches:
                raise KeyboardInterrupt("killed")
    return progress


def test_an_index_stage_commits_every_so_often_and_a_killed_one_leaves_nothing_half_done(consortium):
    """A first build commits (and moves its checkpoint) every ``commit_every`` documents, not every batch; killed
    before a commit, its documents never reach a later commit in the same process (a first build's adds replace
    nothing, so the next run would add them twice); killed after one, it goes on from there."""
    from storage.db import get_value, set_value
    from unioncat import pipeline
    from unioncat.catalogue import INDEX_CHECKPOINT, Catalogue
    from unioncat.settings import load_settings

    tmp_path, _ = consortium
    cli(tmp_path, "run")
    cat = Catalogue(load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "var"))

    def forget_the_index() -> None:
        cat.index.clear()
        cat.index.commit()
        with cat.engine.begin() as conn:
            set_value(conn, INDEX_CHECKPOINT, 0)

    def checkpoint() -> int:
        with cat.engine.connect() as conn:
            return get_value(conn, INDEX_CHECKPOINT)
    try:
        total = cat.clusters.count()
        seqs = [seq for seq, _, _ in cat.clusters.changed_since(0)]
        assert total == len(seqs) == 5
        forget_the_index()
        with pytest.raises(KeyboardInterrupt):
            pipeline.index_stage(cat, progress=_killed_after(2), batch=1, commit_every=3)
        assert cat.index.count() == 0 and checkpoint() == 0
        assert pipeline.index_stage(cat, batch=1, commit_every=3).total == total    # not 7: the two were dropped

        forget_the_index()
        with pytest.raises(KeyboardInterrupt):
            pipeline.index_stage(cat, progress=_killed_after(4), batch=1, commit_every=3)
        assert cat.index.count() == 3 and checkpoint() == seqs[2]
        report = pipeline.index_stage(cat, batch=1, commit_every=3)
        assert (report.indexed, report.total) == (2, total)
        assert search(tmp_path, "personal rights domestic relations")["total"] == 1
    finally:
        cat.close()


def test_a_new_matcher_scores_every_record_again_once(consortium):
    """Features and keys stored by an older matcher are stale: the next build scores everything, ids kept."""
    from storage.db import set_value
    from unioncat.catalogue import MATCHER_KEY, Catalogue
    from unioncat.settings import load_settings

    tmp_path, _ = consortium
    cli(tmp_path, "run")
    before = search(tmp_path, "personal rights domestic relations")["hits"][0]["id"]
    cat = Catalogue(load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "var"))
    with cat.engine.begin() as conn:
        set_value(conn, MATCHER_KEY, 20200101)
    cat.close()
    upgraded = cli(tmp_path, "run")
    assert "the matcher changed since the last build (20200101" in upgraded.stderr
    assert search(tmp_path, "personal rights domestic relations")["hits"][0]["id"] == before
    again = cli(tmp_path, "run")
    assert "the matcher changed" not in again.stderr and "0 clusters written" in again.stderr


def test_a_dead_member_fails_loudly_and_the_others_still_harvest(consortium):
    tmp_path, _ = consortium
    data = yaml.safe_load((tmp_path / "sources.yaml").read_text())
    data["sources"].append({"id": "lib-dead", "name": "Dead", "region": "Wuxi", "protocol": "oai",
                            "url": "http://127.0.0.1:9/oai", "max_retries": 1, "retry_after_max": 0.1})
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    result = cli(tmp_path, "run", code=1)
    assert "FAILED lib-dead" in result.stderr and "127.0.0.1:9" in result.stderr
    assert search(tmp_path, "personal rights")["total"] == 1
    status = cli(tmp_path, "status", code=1).stdout
    assert "lib-dead" in status and "failed" in status


def test_clusters_merge_keep_the_oldest_id_and_redirect(consortium):
    """Two entries that share no key become one when a third record links them; permalinks survive."""
    tmp_path, _ = consortium
    x1 = make_record("A-X1", title="Romance of the three kingdoms", author="Luo, Guanzhong", isbn="9787020008735",
                     year="1990")
    x2 = make_record("C-X2", title="Sanguo yanyi", author="Luo, Guanzhong", year="1990")
    dump(tmp_path / "dumps" / "lib-a.mrc", [x1])
    dump(tmp_path / "dumps" / "lib-c.mrc", [x2])
    cli(tmp_path, "run")
    first = {h["title"]: h["id"] for h in search(tmp_path, "Luo")["hits"]}
    assert len(first) == 2
    # lib-c adds the ISBN to its record (two records of one member are its internal duplicate, never merged)
    x3 = make_record("C-X2", title="Sanguo yanyi", author="Luo, Guanzhong", isbn="9787020008735", year="1990")
    dump(tmp_path / "dumps" / "lib-c.mrc", [x3])
    cli(tmp_path, "run")
    hits = search(tmp_path, "Luo")["hits"]
    assert len(hits) == 1 and {h["source"] for h in hits[0]["holdings"]} == {"lib-a", "lib-c"}
    merged = hits[0]["id"]
    assert merged in first.values()
    (retired,) = set(first.values()) - {merged}

    from unioncat.pipeline import Catalogue
    from unioncat.present import make_app as web_app
    from unioncat.settings import load_settings

    cat = Catalogue(load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "var"))
    try:
        client = web_app(cat).test_client()
        response = client.get(f"/record/{retired}")
        assert response.status_code == 301 and response.headers["Location"].endswith(f"/record/{merged}")
        assert client.get(f"/record/{merged}").status_code == 200
        # the library takes the linking ISBN out again: the entry splits, the larger part keeps the id
        dump(tmp_path / "dumps" / "lib-c.mrc", [x2])
        cli(tmp_path, "run")
        assert len(search(tmp_path, "Luo")["hits"]) == 2
        assert client.get(f"/record/{merged}").status_code == 200
    finally:
        cat.close()


def test_parallel_normalise_matches_in_process(consortium):
    """Worker processes give exactly what the in-process path gives, and quarantine the same."""
    tmp_path, _ = consortium
    from unioncat import pipeline
    from unioncat.settings import load_settings

    outcomes = []
    for name, workers in (("one", 1), ("two", 2)):
        settings = load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / name)
        cat = pipeline.Catalogue(settings)
        try:
            pipeline.harvest(cat, pipeline.select_sources(cat))
            report = pipeline.normalise_stage(cat, batch=1, workers=workers)
            outcomes.append((report.normalised, report.quarantined,
                             sorted(json.dumps(r.to_dict(), sort_keys=True) for r in cat.records.iter_live())))
        finally:
            cat.close()
    assert outcomes[0] == outcomes[1] and outcomes[0][0] == 10


def test_sources_list_and_check(consortium):
    tmp_path, _ = consortium
    listed = cli(tmp_path, "sources", "list").stdout
    assert "Test Consortium: 3 member libraries in 3 regions" in listed and "lib-b" in listed
    assert {s["id"] for s in json.loads(cli(tmp_path, "sources", "list", "--json").stdout)} == {"lib-a", "lib-b", "lib-c"}
    checked = cli(tmp_path, "sources", "check").stdout
    assert checked.count("ok  ") == 3 and "Library B" in checked  # OAI Identify answered with the repository name
    (tmp_path / "dumps" / "lib-c.mrc").unlink()
    failed = cli(tmp_path, "sources", "check", code=1).stdout
    assert "FAIL lib-c" in failed


def test_invalid_sources_file_is_a_clear_cli_error(tmp_path):
    (tmp_path / "sources.yaml").write_text("consortium: {name: X}\nsources:\n  - {id: a, name: A, region: R, protocol: ftp}\n")
    result = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "var"),
                                       "sources", "list"])
    assert result.exit_code == 2
    assert "source 'a': key 'protocol': expected one of oai, file, z3950, sru; got 'ftp'" in result.output


def test_each_changing_run_keeps_a_quality_report(consortium):
    tmp_path, _ = consortium
    cli(tmp_path, "run")
    from normaliser.store import QualityStore
    from unioncat.pipeline import Catalogue
    from unioncat.settings import load_settings

    cat = Catalogue(load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "var"))
    try:
        history = QualityStore(cat.engine).history("lib-a")
        assert len(history) == 1 and history[0]["records"] == 4 and history[0]["quarantined"] == 1
        cli(tmp_path, "run")  # nothing changed: no new report, and the broken record is not quarantined twice
        assert len(QualityStore(cat.engine).history("lib-a")) == 1
        assert cat.raw.quarantined_by_source()["lib-a"] == 1
        assert json.loads(cli(tmp_path, "quality", "lib-a", "--json").stdout)["lib-a"]["records"] == 4
    finally:
        cat.close()
