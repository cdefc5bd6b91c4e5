"""The holdings-link and authority stores on SQLite and PostgreSQL: either order of arrival, deletions, orphans,
entities by identifier."""
from __future__ import annotations

from normaliser.authorities import AuthorityStore
from normaliser.links import LinkStore
from normaliser.model import Holding, Record

DATABASES = ("sqlite", "postgresql")


def bib(source: str, local_id: str, control: str) -> Record:
    return Record(source, local_id, title="A journal", control_number=control)


def mfhd(source: str, local_id: str, of: str) -> Record:
    return Record(source, local_id, kind="holdings", holdings_of=of, holdings=[Holding(source, of, holdings_id=local_id)])


def test_links_in_either_order_deletions_and_orphans(db):
    links = LinkStore(db)
    # the holdings record first: nothing to re-merge yet, and it is an orphan
    assert links.update([(("a", "h1"), mfhd("a", "h1", "100"))]) == set()
    assert links.orphans() == [("a", "h1", "100")]
    # its bib arrives under another local id (an OAI identifier); same 001 in another member does not count
    assert links.update([(("b", "x"), bib("b", "x", "100"))]) == set()
    links.update([(("a", "oai:1"), bib("a", "oai:1", "100"))])
    assert links.orphans() == []
    assert links.holdings_of([bib("a", "oai:1", "100"), bib("b", "x", "100")]) == {("a", "oai:1"): [("a", "h1")]}
    # a second holdings record, then it moves to another bib: both bibs are reported for a new merge
    links.update([(("a", "oai:2"), bib("a", "oai:2", "200"))])
    assert links.update([(("a", "h2"), mfhd("a", "h2", "100"))]) == {("a", "oai:1")}
    assert links.update([(("a", "h2"), mfhd("a", "h2", "200"))]) == {("a", "oai:1"), ("a", "oai:2")}
    # deleting a holdings record re-merges its bib; deleting a bib leaves its holdings as orphans
    assert links.update([(("a", "h1"), None)]) == {("a", "oai:1")}
    links.update([(("a", "oai:2"), None)])
    assert links.orphans("a") == [("a", "h2", "200")] and links.orphans("b") == []


def test_authorities_by_identifier_and_form(db):
    store = AuthorityStore(db)
    lc = Record("lc", "n1", kind="authority", heading="Ouyang, Hui", heading_type="person", lccns=["n80094057"],
                see_from=["Ou-yang, Hui", "歐陽輝"])
    local = Record("lib", "7", kind="authority", heading="Ouyang, Hui", heading_type="person",
                   lccns=["n80094057"], see_from=["欧阳辉"], dates="1947-")
    assert store.update([(lc.key, lc), (local.key, local)]) == 2
    (entity,) = store.entities("歐陽輝")
    assert entity["entity"] == "lccn:n80094057" and entity["dates"] == "1947-"
    assert set(entity["variants"]) == {"Ou-yang, Hui", "歐陽輝", "欧阳辉"} and len(entity["records"]) == 2
    assert set(store.variants(["Ouyang, Hui."])["ouyang hui"]) == {"Ouyang, Hui", "Ou-yang, Hui", "歐陽輝", "欧阳辉"}
    assert store.variants(["Ou-yang, Hui"]) == {}   # a see-from is not a heading: no expansion from it
    assert store.update([(lc.key, None)]) == 1
    (entity,) = store.entities("Ouyang, Hui")
    assert entity["variants"] == ["欧阳辉"]
