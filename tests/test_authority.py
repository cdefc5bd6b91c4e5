"""Authority records as a source kind: read, stored by entity, and used to find an author by any form.

The authority side is real: the LC/NACO name records of shared/corpus/
authority/folio-stripes-testing/100_MARC_authority_records.mrc ("Ouyang, Hui"
with the Wade-Giles "Ou-yang, Hui" and simplified and traditional Han 400s;
"Zhao, Liewen, 1832-1893" with Wade-Giles and Han forms of his courtesy
names).  The bibliographic side is made here, citing those headings as
catalogued.  No public UNIMARC/CNMARC authority record exists (see the
corpus's SOURCES.md), so the UNIMARC ones are built in code.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pymarc import Field, Indicators, Record as MarcRecord, Subfield

from corpus import corpus_dir
from harvester.raw import RawRecord
from marc_fixtures import iso2709, make_record
from normaliser import normalise
from normaliser.errors import RecordError
from unioncat.cli import main

LC_FILE = "folio-stripes-testing/100_MARC_authority_records.mrc"


def df(tag: str, *pairs: str, ind: str = "  ") -> Field:
    return Field(tag, Indicators(ind[0], ind[1]), [Subfield(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)])


def unimarc_authority(control: str, heading: Field, *fields: Field) -> MarcRecord:
    """A UNIMARC/CNMARC authority record (leader/06 x), as a Chinese national centre would send it."""
    marc = MarcRecord(force_utf8=True)
    marc.leader = "00000nx  a2200000   450 "
    for f in (Field("001", data=control), heading, *fields):
        marc.add_field(f)
    return marc


def lu_xun() -> MarcRecord:
    return unimarc_authority(
        "CAL n2001001",
        df("200", "a", "鲁迅", "f", "1881-1936", "A", "Lu Xun", ind=" 0"),
        df("400", "a", "周树人", "A", "Zhou Shuren", ind=" 0"),
        df("400", "a", "周樹人", ind=" 0"),
        df("400", "a", "Lu, Hsün", ind=" 1"),
        df("700", "a", "Lu, Xun", "f", "1881-1936", ind=" 1"),
        df("801", "a", "CN", "b", "CALIS"),
    )


def test_unimarc_authority_built_in_code_is_read_with_pinyin_as_see_from():
    rec = normalise(RawRecord("nlc", "a1", iso2709(lu_xun()), syntax="iso2709", format="cnmarc"))
    assert (rec.kind, rec.heading, rec.heading_type, rec.dates) == ("authority", "鲁迅 1881-1936", "person",
                                                                     "1881-1936")
    assert rec.see_from == ["周树人", "周樹人", "Lu, Hsün", "Lu Xun", "Zhou Shuren"]
    assert rec.linked_headings == ["Lu, Xun 1881-1936"]
    assert "calis:CAL n2001001" in rec.other_ids


def test_authority_without_heading_is_quarantined_with_its_reason():
    marc = MarcRecord(force_utf8=True)
    marc.leader = marc.leader[:6] + "z" + marc.leader[7:]
    marc.add_field(Field("001", data="n1"), df("400", "a", "Somebody"))
    with pytest.raises(RecordError, match=r"authority record \(leader/06 .z.\) without a heading"):
        normalise(RawRecord("lc", "n1", iso2709(marc), format="marc21"))


def cli(tmp_path: Path, *args: str):
    result = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "var"),
                                       *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def book(control: str, title: str, author: str, year: str) -> MarcRecord:
    return make_record(control, title=title, author=author, year=year)


@pytest.fixture
def catalogue(tmp_path):
    """The LC/NACO file as the national centre's authority source; two members with books citing its headings."""
    shutil.copy(corpus_dir("authority") / LC_FILE, tmp_path / "lc-authorities.mrc")
    (tmp_path / "lib-a.mrc").write_bytes(b"".join(iso2709(r) for r in [
        book("a1", "Zhongguo xian dai shi ge yan jiu", "Ouyang, Hui", "1998"),
        book("a2", "Neng jing ju shi ri ji", "Zhao, Liewen, 1832-1893", "1964"),
        book("a3", "A book by someone else", "Wang, Li", "2001"),
    ]))
    (tmp_path / "lib-b.mrc").write_bytes(b"".join(iso2709(r) for r in [
        book("b1", "Wen xue lun ji", "Ouyang, Hui", "2003"),
        book("b2", "Na han", "鲁迅", "1923"),
        book("b3", "Xuan ji", "Mao, Zedong", "1991"),    # no authority record names him
    ]))
    (tmp_path / "nlc-authorities.mrc").write_bytes(iso2709(lu_xun()) + iso2709(unimarc_authority(
        "CAL n1", df("200", "a", "Wang, Li", "f", "1950-", ind=" 1"), df("400", "a", "Wang, L.", ind=" 1"),
        df("801", "a", "CN", "b", "CALIS"))) + iso2709(unimarc_authority(
            "CAL n2", df("200", "a", "Wang, Lingli", "f", "1970-", ind=" 1"), df("400", "a", "Wang, L.", ind=" 1"),
            df("801", "a", "CN", "b", "CALIS"))))
    sources = [
        {"id": "lc", "name": "LC/NACO", "region": "national", "protocol": "file", "path": "lc-authorities.mrc",
         "format": "marc21"},
        {"id": "nlc", "name": "CALIS authorities", "region": "national", "protocol": "file",
         "path": "nlc-authorities.mrc", "format": "cnmarc"},
        {"id": "lib-a", "name": "Library A", "region": "Nanjing", "protocol": "file", "path": "lib-a.mrc",
         "format": "marc21"},
        {"id": "lib-b", "name": "Library B", "region": "Suzhou", "protocol": "file", "path": "lib-b.mrc",
         "format": "marc21"},
    ]
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"consortium": {"name": "Test"}, "sources": sources},
                                                          allow_unicode=True), encoding="utf-8")
    cli(tmp_path, "harvest")
    cli(tmp_path, "build")
    return tmp_path


def titles(tmp_path: Path, *words: str) -> set[str]:
    hits = json.loads(cli(tmp_path, "search", "--json", "--limit", "50", *words).stdout)["hits"]
    return {h["title"] for h in hits}


@pytest.mark.corpus
def test_wade_giles_and_han_see_froms_find_the_books_of_the_heading(catalogue):
    ouyang = {"Zhongguo xian dai shi ge yan jiu", "Wen xue lun ji"}
    assert titles(catalogue, "Ou-yang Hui") == ouyang
    assert titles(catalogue, "欧阳辉") == ouyang        # simplified Han 400
    assert titles(catalogue, "歐陽輝") == ouyang        # traditional Han 400
    assert titles(catalogue, "Chao Lieh-wen") == {"Neng jing ju shi ri ji"}
    assert titles(catalogue, "趙烈文") == {"Neng jing ju shi ri ji"}
    # UNIMARC authority built in code: Wade-Giles and the traditional form of his birth name find 鲁迅
    assert titles(catalogue, "Lu Hsün") == {"Na han"}
    assert titles(catalogue, "周樹人") == {"Na han"}
    # authority records are not catalogue entries
    assert titles(catalogue, "Ouyang") == ouyang


@pytest.mark.corpus
def test_author_page_lists_variants_and_a_shared_variant_lists_both_people(catalogue):
    from unioncat.pipeline import Catalogue
    from unioncat.present import make_app
    from unioncat.settings import load_settings

    cat = Catalogue(load_settings(env={}, sources_path=catalogue / "sources.yaml", data_dir=catalogue / "var"))
    try:
        client = make_app(cat).test_client()
        data = client.get("/author.json?name=Ou-yang, Hui").get_json()
        (entity,) = data["entities"]
        assert entity["heading"] == "Ouyang, Hui" and entity["entity"] == "lccn:n80094057"
        assert {"Ou-yang, Hui", "欧阳辉", "歐陽輝"} <= set(entity["variants"])
        assert entity["works_total"] == 2
        assert {(l["source"], l["count"]) for l in entity["libraries"]} == {("lib-a", 1), ("lib-b", 1)}
        html = client.get("/author?name=Ouyang, Hui").text
        assert "Ou-yang, Hui" in html and "歐陽輝" in html and "Wen xue lun ji" in html

        shared = client.get("/author.json?name=Wang, L.").get_json()
        assert sorted(e["heading"] for e in shared["entities"]) == ["Wang, Li 1950-", "Wang, Lingli 1970-"]
        assert "2 different people" in client.get("/author?name=Wang, L.").text
        # the record page links its authors to their page
        (hit,) = json.loads(cli(catalogue, "search", "--json", "Wen xue lun ji").stdout)["hits"]
        page = client.get(f"/record/{hit['id']}").text
        assert "/author?name=Ouyang" in page, page[page.find("<dl"):][:1500]
        assert client.get("/author.json").status_code == 400
        # authority records go out as their source's own records: OAI-PMH (set members:<id>) and exports
        oai = client.get("/oai?verb=ListRecords&metadataPrefix=marcxml&set=members:lc").text
        assert "Ouyang, Hui" in oai and "Ou-yang, Hui" in oai and "<error" not in oai
    finally:
        cat.close()
    report = json.loads(cli(catalogue, "quality", "--json", "nlc").stdout)["nlc"]
    assert report["authority_records"] == 3 and report["quarantined"] == 0
    assert report["authority_problems"] == ["shared see-from 'Wang, L.': calis:CAL n1, calis:CAL n2"]
    assert "shared see-from 'Wang, L.'" in cli(catalogue, "quality", "nlc").stdout


def test_names_across_scripts_without_authority_records():
    """Pinyin ↔ Wade-Giles and Han readings for search, from the record alone; never a dedupe key."""
    from index.names import add_variants
    from normaliser.model import Contributor, ParallelField, Record
    from normaliser.romanise import name_forms

    assert name_forms("Zhao, Liewen, 1832-1893") == ["Chao, Lieh-wen, 1832-1893"]
    assert "Zhao, Liewen" in name_forms("Chao, Lieh-wen") and name_forms("Ou-yang, Hui") == ["Ouyang, Hui"]
    assert name_forms("Lu, Xun") == ["Lu, Hsün"] and "Lu, Xun" in name_forms("Lu, Hsün")
    assert name_forms("Chadman, Charles E.") == [] and name_forms("Smith, John") == []
    assert "ou yang hui" in name_forms("歐陽輝")

    rec = Record("lib-a", "1", title="Ri ji", contributors=[Contributor("Zhao, Liewen", primary=True)],
                 parallel=[ParallelField("100", "趙烈文")])
    doc = {"all": "Ri ji Zhao, Liewen"}
    added = add_variants(doc, rec, {})
    assert "Chao, Lieh-wen" in added and "趙烈文" in added and "zhao lie wen" in added
    assert "Chao, Lieh-wen" in doc["all"]


@pytest.mark.corpus
def test_wade_giles_finds_a_pinyin_author_without_any_authority_record(catalogue):
    assert titles(catalogue, "Mao Tse-tung") == {"Xuan ji"}
    assert titles(catalogue, "Mao Zedong") == {"Xuan ji"}


def test_a_4xx_loop_between_two_authority_records_is_reported(tmp_path):
    from storage.db import make_engine, sqlite_url
    from normaliser.authorities import AuthorityStore
    from unioncat.schema import ensure_schema

    engine = make_engine(sqlite_url(tmp_path / "a.db"))
    ensure_schema(engine)
    a = normalise(RawRecord("nlc", "a", iso2709(unimarc_authority(
        "A", df("200", "a", "Zhang, San", ind=" 1"), df("400", "a", "Li, Si", ind=" 1"))), format="cnmarc"))
    b = normalise(RawRecord("nlc", "b", iso2709(unimarc_authority(
        "B", df("200", "a", "Li, Si", ind=" 1"), df("400", "a", "Zhang, San", ind=" 1"))), format="cnmarc"))
    store = AuthorityStore(engine)
    assert store.update([(a.key, a), (b.key, b)]) == 2
    assert store.problems() == {"nlc": ["4XX loop between nlc:a and nlc:b"]}
    engine.dispose()


@pytest.mark.corpus
def test_every_authority_record_of_the_corpus_is_read():
    """shared/corpus/authority (SOURCES.md): none is quarantined at normalise any more.  The SQL files are not
    MARC files; DUMP.mrc.gz is gzip, which the dump reader does not unpack (its 106 chunks fail at read)."""
    from collections import Counter
    from harvester.clients.dumps import read_path

    counts: Counter = Counter()
    folder = corpus_dir("authority")
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".md", ".sql", ".gz")):
        for item in read_path(path, "corpus", format="marc21"):
            if not isinstance(item, RawRecord):
                counts["quarantined_at_read"] += 1
                continue
            try:
                counts[normalise(item).kind] += 1
            except RecordError as exc:
                counts[f"quarantined: {exc}"] += 1
    assert counts == {"authority": 1392}


def test_heading_identifiers_from_0_and_1_in_every_form_catalogues_send():
    from normaliser.authority import identifier_of

    assert identifier_of("(DLC)n  80094057") == "lccn:n80094057"
    assert identifier_of("http://id.loc.gov/authorities/names/n80094057.html") == "lccn:n80094057"
    assert identifier_of("http://id.loc.gov/rwo/agents/n80094057") == "lccn:n80094057"
    assert identifier_of("(DE-588)118574787") == identifier_of("https://d-nb.info/gnd/118574787") == "gnd:118574787"
    assert identifier_of("http://viaf.org/viaf/95218067/") == "viaf:95218067"
    assert identifier_of("https://www.wikidata.org/entity/Q23114") == "wikidata:Q23114"
    assert identifier_of("(CALIS)CAL n2001001") == "calis:CAL n2001001"
    assert identifier_of("12345") is None and identifier_of("https://example.org/x") is None


def test_bibliographic_headings_carry_their_authority_identifiers():
    bib = make_record("b1", title="Ri ji", author=None, extra=[
        df("100", "a", "Ouyang, Hui,", "d", "1947-", "0", "(DLC)n 80094057",
           "1", "http://viaf.org/viaf/95218067", ind="1 "),
        df("700", "a", "Zhao, Liewen,", "0", "http://id.loc.gov/authorities/names/n83044424", ind="1 ")])
    rec = normalise(RawRecord("lib-a", "1", iso2709(bib), syntax="iso2709"))
    assert [(c.name, c.ids) for c in rec.contributors] == [
        ("Ouyang, Hui, 1947-", ["lccn:n80094057", "viaf:95218067"]), ("Zhao, Liewen", ["lccn:n83044424"])]
    from normaliser.model import Record
    assert Record.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec


def test_a_heading_links_by_identifier_and_a_shared_spelling_does_not_join_two_people(db):
    """Two people named "Wang, Li": a heading citing one's LCCN gets only that one's forms; a heading with no
    $0 falls back to the normalised heading (and then, honestly, gets both)."""
    from index.names import add_variants, ids_of, names_of
    from normaliser.authorities import AuthorityStore
    from normaliser.model import Contributor, Record

    chemist = Record("lc", "n1", kind="authority", heading="Wang, Li", lccns=["n2001000001"], see_from=["王力"])
    linguist = Record("lc", "n2", kind="authority", heading="Wang, Li", lccns=["n2001000002"],
                      see_from=["王利"], other_ids=["viaf:222"])
    store = AuthorityStore(db)
    store.update([(chemist.key, chemist), (linguist.key, linguist)])
    cited = Record("lib", "b1", title="Han yu shi gao",
                   contributors=[Contributor("Wang, Li", primary=True, ids=["viaf:222"])])
    plain = Record("lib", "b2", title="Chemistry", contributors=[Contributor("Wang, Li", primary=True)])
    unknown = Record("lib", "b3", title="Other", contributors=[Contributor("Wang, Li", ids=["lccn:n99"])])
    assert ids_of([cited, plain, unknown]) == ["lccn:n99", "viaf:222"]
    variants, identified = store.variants(names_of([cited, plain])), store.identified(ids_of([cited, plain]))
    assert identified == {"viaf:222": ["Wang, Li", "王利"]}
    assert add_variants({"all": ""}, cited, variants, identified) == ["王利"]
    assert sorted(add_variants({"all": ""}, plain, variants, identified)) == ["王利", "王力"]
    # an identifier the store does not know: the heading is all there is to go by
    assert sorted(add_variants({"all": ""}, unknown, variants, identified)) == ["王利", "王力"]
    # an authority record's identifiers are never taken for names
    assert store.entities("lccn:n2001000002") == []


def test_a_cnmarc_heading_cites_its_authority_record_by_3():
    marc = MarcRecord(force_utf8=True)
    marc.leader = "00000nam  2200000   450 "
    for f in (Field("001", data="012345"), df("100", "a", "20200101d2005    em y0chiy0110    ea"),
              df("200", "a", "呐喊", "f", "鲁迅著", ind="1 "),
              df("701", "3", "(CALIS)CAL n2001001", "a", "鲁迅", "f", "1881-1936", "4", "070", ind=" 0"),
              df("702", "3", "A0042", "a", "周作人", ind=" 0")):
        marc.add_field(f)
    rec = normalise(RawRecord("lib-cn", "1", iso2709(marc), syntax="iso2709", format="cnmarc"))
    assert [(c.name, c.ids) for c in rec.contributors] == [("鲁迅 1881-1936", ["calis:CAL n2001001"]),
                                                           ("周作人", [])]   # a bare number names no file


def marc21(leader6: str, control: str, *fields: Field) -> MarcRecord:
    """A MARC 21 record of another kind than bibliographic: holdings (leader/06 y) or authority (z)."""
    marc = MarcRecord(force_utf8=True)
    marc.leader = marc.leader[:6] + leader6 + marc.leader[7:]
    for f in (Field("001", data=control), *fields):
        marc.add_field(f)
    return marc


def test_bad_holdings_and_authority_input_is_reported_per_source_never_a_crash(tmp_path):
    """The issue's bad input, sent as members send it and built end to end: a holdings record whose 004 points
    nowhere, one with no 852, an authority record with no 1XX, and a 4XX loop between two authority records.
    Each is reported by `unioncat quality` under its own source; the build goes on, and the two people of the
    loop stay two entities."""
    (tmp_path / "lib-a.mrc").write_bytes(b"".join(iso2709(r) for r in [
        make_record("b1", title="Journal of things", author="Zhang, San"),
        marc21("y", "h1", Field("004", data="b1"), df("866", "a", "v.1 (1990)-", ind=" 0")),   # no 852
        marc21("y", "h2", Field("004", data="nowhere"), df("852", "b", "MAIN", "h", "QA1")),  # no such bib
    ]))
    (tmp_path / "lc.mrc").write_bytes(b"".join(iso2709(r) for r in [
        marc21("z", "n1", df("400", "a", "Somebody")),                                        # no 1XX
        marc21("z", "n2", df("100", "a", "Zhang, San", ind="1 "), df("400", "a", "Li, Si", ind="1 ")),
        marc21("z", "n3", df("100", "a", "Li, Si", ind="1 "), df("400", "a", "Zhang, San", ind="1 ")),
    ]))
    sources = [{"id": "lib-a", "name": "Library A", "region": "r", "protocol": "file", "path": "lib-a.mrc",
                "format": "marc21"},
               {"id": "lc", "name": "LC", "region": "national", "protocol": "file", "path": "lc.mrc",
                "format": "marc21"}]
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"consortium": {"name": "Test"}, "sources": sources}),
                                           encoding="utf-8")
    cli(tmp_path, "harvest")
    cli(tmp_path, "build")
    report = json.loads(cli(tmp_path, "quality", "--json").stdout)
    lib, lc = report["lib-a"], report["lc"]
    assert (lib["holdings_records"], lib["holdings_without_852"], lib["orphan_holdings"]) == (2, 1, 1)
    assert lib["orphan_examples"] == ["h2 → 004 nowhere"]
    assert lc["authority_records"] == 2 and lc["quarantined"] == 1
    assert [reason for reason in lc["quarantined_by_reason"] if "heading" in reason], lc["quarantined_by_reason"]
    assert len(lc["authority_problems"]) == 1 and lc["authority_problems"][0].startswith("4XX loop between")
    # the holdings record without 852 still gives its library's summary; the loop does not make one person
    from unioncat.pipeline import Catalogue
    from unioncat.present import make_app
    from unioncat.settings import load_settings

    cat = Catalogue(load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "var"))
    try:
        (entry,) = list(cat.clusters.iter_live())
        assert [(h.holdings_id, h.summary) for h in entry.record.holdings] == [("h1", "v.1 (1990)-")]
        people = make_app(cat).test_client().get("/author.json?name=Zhang, San").get_json()["entities"]
        assert sorted(e["heading"] for e in people) == ["Li, Si", "Zhang, San"]
    finally:
        cat.close()
