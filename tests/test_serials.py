"""Serial holdings summaries (866–868, 853/863 pairs), year coverage, and holdings per library in the merge,
merged MARC and e-resource access."""
from __future__ import annotations

from pymarc import Field, Indicators, Record as MarcRecord, Subfield

from dedupe.merge import merge_records
from dedupe.model import Cluster
from harvester.raw import RawRecord
from marc_fixtures import iso2709
from normaliser import normalise
from normaliser.fields import group_fields
from normaliser.model import Holding, Record
from normaliser.serials import ONGOING, coverage_of, covers, summary_and_coverage
from publish.marcout import merged_marc


def df(tag: str, *pairs: str, ind: str = "  ") -> Field:
    return Field(tag, Indicators(ind[0], ind[1]),
                 [Subfield(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)])


def summary(*fields: Field) -> tuple[str, list[list[int]]]:
    marc = MarcRecord()
    for f in fields:
        marc.add_field(f)
    return summary_and_coverage(group_fields(marc))


def test_pairs_become_ranges_with_gaps_listed_as_lacks():
    text, years = summary(
        df("853", "8", "1", "a", "v.", "i", "(year)"),
        df("863", "8", "1.1", "a", "1-11", "i", "1990-2000", "w", "g"),
        df("863", "8", "1.2", "a", "13-25", "i", "2002-2014"),
    )
    assert text == "v.1 (1990) – v.11 (2000); v.13 (2002) – v.25 (2014); lacks v.12"
    assert years == [[1990, 2000], [2002, 2014]]


def test_single_issues_in_any_order_are_compressed_and_parenthesised_captions_hidden():
    text, years = summary(
        df("853", "8", "1", "a", "(yr/yr)"),
        *[df("863", "8", f"1.{n}", "a", f"{y}/{y + 1}") for n, y in enumerate((2009, 2008, 2007, 2005, 2004))],
    )
    assert text == "2004/2005 – 2005/2006; 2007/2008 – 2009/2010"
    assert years == [[2004, 2006], [2007, 2010]]


def test_levels_chronology_months_and_supplements():
    text, _ = summary(
        df("853", "8", "1", "a", "v.", "b", "no.", "i", "(year)", "j", "(month)"),
        df("863", "8", "1.1", "a", "3", "b", "1-12", "i", "1975", "j", "01-12"),
        df("854", "8", "2", "a", "suppl."),
        df("864", "8", "2.1", "a", "1"),
    )
    assert text == "v.3:no.1 (1975:Jan.) – v.3:no.12 (1975:Dec.); Suppl.: suppl.1"


def test_textual_summary_wins_and_its_notes_are_shown_but_never_counted_as_held():
    text, years = summary(
        df("853", "8", "1", "a", "v."),
        df("863", "8", "1.1", "a", "1-3"),
        df("866", "8", "0", "a", "v.125 (2000)-", "z", "Missing v.125, no.7 (April 15, 2003)", ind=" 0"),
        df("868", "8", "0", "a", "v.1-50 (1900-1950)", ind=" 0"),
    )
    assert text == "v.125 (2000)- (Missing v.125, no.7 (April 15, 2003)); Indexes: v.1-50 (1900-1950)"
    assert years == [[2000, ONGOING]]
    assert covers(years, 2024) and not covers(years, 1999)


def test_coverage_reads_runs_and_open_ranges():
    assert coverage_of(["no.2-no.13,no.18-no.33,no.42 (1967-1968,1971-1974)"]) == [[1967, 1968], [1971, 1974]]
    assert coverage_of(["v.4(2007)-"]) == [[2007, ONGOING]]
    assert coverage_of(["v. 2", "Suppl.: 1995"]) == []
    assert covers([], 1990)  # nothing known: a monograph's copy may lend any year


def mfhd(control: str, bib: str, *extra: Field, leader6: str = "y") -> bytes:
    marc = MarcRecord(force_utf8=True)
    marc.leader = marc.leader[:6] + leader6 + marc.leader[7:]
    for f in (Field("001", data=control), Field("004", data=bib), *extra):
        marc.add_field(f)
    return iso2709(marc)


def test_mfhd_normalises_to_a_holdings_record():
    rec = normalise(RawRecord("lib-a", "h1", mfhd("h1", "b9",
                                                  df("852", "b", "MAIN", "c", "Periodicals", "h", "Z671", "i", ".L7",
                                                     "z", "Current issues at the desk"),
                                                  df("866", "a", "v.1 (1990)-", ind=" 0"),
                                                  df("856", "u", "https://proxy.a.example.edu/login?url=x"))))
    assert (rec.kind, rec.holdings_of, rec.title) == ("holdings", "b9", "")
    (h,) = rec.holdings
    assert (h.library, h.location, h.call_number, h.note) == ("MAIN", "Periodicals", "Z671 .L7",
                                                              "Current issues at the desk")
    assert (h.holdings_id, h.local_id, h.summary, h.coverage) == ("h1", "b9", "v.1 (1990)-", [[1990, ONGOING]])
    assert h.urls == ["https://proxy.a.example.edu/login?url=x"]
    assert Record.from_dict(rec.to_dict()) == rec
    bare = normalise(RawRecord("lib-a", "h2", mfhd("h2", "b9", leader6="x")))
    assert bare.holdings == [Holding("lib-a", "b9", holdings_id="h2")]
    assert any("without 852" in w for w in bare.warnings)


def test_merge_attaches_mfhd_and_keeps_each_librarys_links_its_own():
    a = Record("lib-a", "A1", title="Journal", control_number="b9", urls=["https://proxy.a.example.edu/j"])
    b = Record("lib-b", "B1", title="Journal", urls=["https://proxy.b.example.edu/j"],
               holdings=[Holding("lib-b", "B1", call_number="P1")])
    held = normalise(RawRecord("lib-a", "h1", mfhd("h1", "b9", df("852", "b", "MAIN"),
                                                   df("866", "a", "v.1-3 (1990-1992)", ind=" 0"))))
    merged = merge_records([b, a], attached={("lib-a", "A1"): [held.holdings]})
    by_source = {h.source: h for h in merged.holdings}
    assert by_source["lib-a"].local_id == "A1" and by_source["lib-a"].summary == "v.1-3 (1990-1992)"
    assert by_source["lib-a"].urls == ["https://proxy.a.example.edu/j"]
    assert by_source["lib-b"].urls == ["https://proxy.b.example.edu/j"] and by_source["lib-b"].call_number == "P1"
    assert merge_records([a, b], attached={("lib-a", "A1"): [held.holdings]}).holdings == merged.holdings

    marc = merged_marc(Cluster("c1", merged, members=[a.key, b.key]))
    assert [f.get_subfields("a") for f in marc.get_fields("866")] == [["v.1-3 (1990-1992)"]]
    assert marc.get_fields("866")[0].get_subfields("8") == ["A1"]
    assert {f.get_subfields("a")[0] for f in marc.get_fields("852")} == {"lib-a", "lib-b"}
