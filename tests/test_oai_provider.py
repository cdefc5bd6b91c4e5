"""The OAI-PMH 2.0 data provider at /oai: every verb and error against the official schema,
stateless tokens across a restart, persistent deletions, and real harvesters (ours and sickle)."""
from __future__ import annotations

from collections import Counter

import pytest
import yaml
from sickle import Sickle

from oai_schema import oai_schema, valid  # noqa: F401 - fixture
from peers.provider_fixtures import app_for, built_catalogue, cat  # noqa: F401 - fixture
from unioncat.pipeline import Catalogue, build, harvest, select_sources
from unioncat.settings import load_settings

NS = {"o": "http://www.openarchives.org/OAI/2.0/", "m": "http://www.loc.gov/MARC21/slim",
      "dc": "http://purl.org/dc/elements/1.1/"}


@pytest.fixture
def client(cat):
    return app_for(cat, OAI_PAGE_SIZE=4).test_client()


def get(client, schema, query: str, method: str = "get"):
    if method == "post":
        response = client.post("/oai", data=query, content_type="application/x-www-form-urlencoded")
    else:
        response = client.get("/oai?" + query)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    return valid(schema, response.data)


def error_code(root) -> str | None:
    err = root.find("o:error", NS)
    return None if err is None else err.get("code")


def walk(client, schema, verb: str, query: str, restart=None):
    """Every item of a list, following tokens; ``restart()`` gives a new client before page 2."""
    root = get(client, schema, f"verb={verb}&{query}")
    items, tokens = [], []
    while True:
        container = root.find(f"o:{verb}", NS)
        items += container.findall("o:record" if verb == "ListRecords" else "o:header", NS)
        token = container.find("o:resumptionToken", NS)
        if token is None:
            return items, tokens
        tokens.append(token)
        if not token.text:
            return items, tokens
        if restart is not None:
            client, restart = restart(), None
        root = get(client, schema, f"verb={verb}&resumptionToken={token.text}")


def test_identify_sets_and_formats(client, oai_schema):
    ident = get(client, oai_schema, "verb=Identify").find("o:Identify", NS)
    assert ident.findtext("o:deletedRecord", namespaces=NS) == "persistent"
    assert ident.findtext("o:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    assert ident.findtext("o:repositoryName", namespaces=NS) == "Provider Test Consortium"
    specs = [s.text for s in get(client, oai_schema, "verb=ListSets").iterfind(".//o:setSpec", NS)]
    assert specs == ["merged", "members", "library:lib-a", "library:lib-b", "library:cn", "region:Nanjing",
                     "region:Su-zhou", "group:west", "members:lib-a", "members:lib-b", "members:cn"]
    prefixes = [p.text for p in get(client, oai_schema, "verb=ListMetadataFormats").iterfind(".//o:metadataPrefix", NS)]
    assert prefixes == ["oai_dc", "marcxml", "unimarc"]
    # per item: a MARC 21 member has no unimarc, a CNMARC member no marcxml
    assert [p.text for p in get(client, oai_schema, "verb=ListMetadataFormats&identifier=oai:unioncat:lib-a:A-01")
            .iterfind(".//o:metadataPrefix", NS)] == ["oai_dc", "marcxml"]
    assert [p.text for p in get(client, oai_schema, "verb=ListMetadataFormats&identifier=oai:unioncat:cn:CN0001")
            .iterfind(".//o:metadataPrefix", NS)] == ["oai_dc", "unimarc"]


@pytest.mark.parametrize("query, code", [
    ("", "badVerb"),
    ("verb=Frobnicate", "badVerb"),
    ("verb=Identify&verb=Identify", "badVerb"),
    ("verb=Identify&extra=1", "badArgument"),
    ("verb=ListRecords", "badArgument"),
    ("verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=marcxml", "badArgument"),
    ("verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01T00:00Z", "badArgument"),
    ("verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01&until=2030-01-01T00:00:00Z", "badArgument"),
    ("verb=ListRecords&metadataPrefix=oai_dc&resumptionToken=abc", "badArgument"),
    ("verb=ListRecords&resumptionToken=not-a-token", "badResumptionToken"),
    ("verb=ListIdentifiers&resumptionToken=eyJ2IjoxfQ.0000000000", "badResumptionToken"),
    ("verb=ListSets&resumptionToken=x", "badResumptionToken"),
    ("verb=ListRecords&metadataPrefix=mods", "cannotDisseminateFormat"),
    ("verb=GetRecord&identifier=oai:unioncat:lib-a:A-01&metadataPrefix=unimarc", "cannotDisseminateFormat"),
    ("verb=GetRecord&identifier=oai:elsewhere:1&metadataPrefix=oai_dc", "idDoesNotExist"),
    ("verb=GetRecord&identifier=oai:unioncat:nosuchcluster&metadataPrefix=oai_dc", "idDoesNotExist"),
    ("verb=ListMetadataFormats&identifier=oai:unioncat:lib-a:nope", "idDoesNotExist"),
    ("verb=ListRecords&metadataPrefix=oai_dc&from=2999-01-01", "noRecordsMatch"),
    ("verb=ListIdentifiers&metadataPrefix=oai_dc&until=2000-01-01T00:00:00Z", "noRecordsMatch"),
    ("verb=ListIdentifiers&metadataPrefix=oai_dc&set=library:nobody", "noRecordsMatch"),
])
def test_errors_are_the_specs_codes_and_validate(client, oai_schema, query, code):
    root = get(client, oai_schema, query)
    assert error_code(root) == code
    if code in ("badVerb", "badArgument"):
        assert not root.find("o:request", NS).attrib  # a request not understood is echoed without attributes


def test_post_is_answered_like_get(client, oai_schema):
    root = get(client, oai_schema, "verb=ListIdentifiers&metadataPrefix=oai_dc&set=library:cn", method="post")
    assert len(root.findall(".//o:header", NS)) == 2


def test_get_record_in_every_format(cat, client, oai_schema):
    cluster = next(c for c in cat.clusters.iter_live() if len(c.sources) == 3)
    ident = f"oai:unioncat:{cluster.id}"
    marc = get(client, oai_schema, f"verb=GetRecord&identifier={ident}&metadataPrefix=marcxml")
    record = marc.find(".//m:record", NS)
    assert record.findtext("m:controlfield[@tag='001']", namespaces=NS) == cluster.id
    held = sorted(s.text for s in record.iterfind("m:datafield[@tag='852']/m:subfield[@code='a']", NS))
    assert held == ["cn", "lib-a", "lib-b"]
    assert {s.text for s in record.iterfind("m:datafield[@tag='035']/m:subfield[@code='a']", NS)} >= \
        {f"({s}){l}" for s, l in cluster.members}
    dc = get(client, oai_schema, f"verb=GetRecord&identifier={ident}&metadataPrefix=oai_dc")
    assert dc.findtext(".//dc:title", namespaces=NS) == cluster.record.full_title
    header = dc.find(".//o:header", NS)
    assert {s.text for s in header.iterfind("o:setSpec", NS)} == {
        "merged", "library:cn", "library:lib-a", "library:lib-b", "region:Nanjing", "region:Su-zhou", "group:west"}
    # the CNMARC-based cluster is offered as UNIMARC: its base member's own record
    cn_cluster = next(c for c in cat.clusters.iter_live() if c.record.record_format == "cnmarc")
    uni = get(client, oai_schema, f"verb=GetRecord&identifier=oai:unioncat:{cn_cluster.id}&metadataPrefix=unimarc")
    assert uni.findtext(".//m:datafield[@tag='200']/m:subfield[@code='a']", namespaces=NS) == "水浒传"
    member = get(client, oai_schema, "verb=GetRecord&identifier=oai:unioncat:lib-b:B-09&metadataPrefix=marcxml")
    assert member.findtext(".//m:datafield[@tag='949']/m:subfield[@code='a']", namespaces=NS) == "QA09"


def test_lists_page_with_tokens_that_survive_a_restart(cat, client, oai_schema):
    members = cat.raw.count()
    clusters = cat.clusters.count()
    headers, tokens = walk(client, oai_schema, "ListIdentifiers", "metadataPrefix=oai_dc",
                           restart=lambda: app_for(cat, OAI_PAGE_SIZE=4).test_client())
    ids = [h.findtext("o:identifier", namespaces=NS) for h in headers]
    assert len(ids) == len(set(ids)) == clusters + members
    assert [int(t.get("cursor")) for t in tokens] == list(range(0, clusters + members, 4))
    assert {int(t.get("completeListSize")) for t in tokens} == {clusters + members}
    assert tokens[-1].text is None  # the last page's token is empty
    records, _ = walk(client, oai_schema, "ListRecords", "metadataPrefix=marcxml&set=group:west")
    assert len(records) == sum(1 for c in cat.clusters.iter_live() if {"lib-a", "lib-b"} & set(c.sources))
    unimarc, _ = walk(client, oai_schema, "ListRecords", "metadataPrefix=unimarc")
    assert {r.findtext("o:header/o:identifier", namespaces=NS) for r in unimarc} == {
        f"oai:unioncat:{c.id}" for c in cat.clusters.iter_live() if c.record.record_format == "cnmarc"} | {
        "oai:unioncat:cn:CN0001", "oai:unioncat:cn:CN0002"}


def test_from_and_until_at_second_granularity(cat, client, oai_schema):
    stamps = sorted(h.findtext("o:datestamp", namespaces=NS)
                    for h in walk(client, oai_schema, "ListIdentifiers", "metadataPrefix=oai_dc&set=merged")[0])
    first, last = stamps[0], stamps[-1]
    everything = walk(client, oai_schema, "ListIdentifiers", f"metadataPrefix=oai_dc&set=merged&from={first}"
                                                              f"&until={last}")[0]
    assert len(everything) == cat.clusters.count()
    day = first[:10]
    assert len(walk(client, oai_schema, "ListIdentifiers", f"metadataPrefix=oai_dc&set=merged&from={day}&until={day}")
               [0]) == cat.clusters.count()


def _second_catalogue(root, url: str) -> Catalogue:
    sources = {"consortium": {"name": "Downstream"}, "sources": [
        {"id": "union", "name": "Upstream union catalogue", "region": "Jiangsu", "protocol": "oai",
         "url": url, "metadata_prefix": "marcxml", "set": "merged", "format": "marc21", "holdings": "unioncat852"}]}
    (root / "sources.yaml").write_text(yaml.safe_dump(sources), encoding="utf-8")
    return Catalogue(load_settings(env={}, sources_path=root / "sources.yaml", data_dir=root / "var"))


def _holdings(cat: Catalogue, downstream: bool) -> Counter:
    out = Counter()
    for c in cat.clusters.iter_live():
        for h in c.record.holdings:
            out[(c.record.title, h.library if downstream else h.source, h.call_number, h.barcode)] += 1
    return out


def test_round_trip_our_harvester_and_sickle(cat, tmp_path, live_server):
    base = live_server(app_for(cat, OAI_PAGE_SIZE=3)) + "/oai"
    down = _second_catalogue(tmp_path, base)
    try:
        [report] = harvest(down, select_sources(down))
        assert report.status == "ok", report.error
        build(down)
        assert down.clusters.count() == cat.clusters.count()
        assert sorted(c.record.title for c in down.clusters.iter_live()) == \
            sorted(c.record.title for c in cat.clusters.iter_live())
        assert _holdings(down, True) == _holdings(cat, False)
    finally:
        down.close()
    sickle = Sickle(base, max_retries=1)
    ids = [h.identifier for h in sickle.ListIdentifiers(metadataPrefix="oai_dc")]
    assert len(ids) == len(set(ids)) == cat.clusters.count() + cat.raw.count()
    titles = {r.metadata["title"][0] for r in sickle.ListRecords(metadataPrefix="oai_dc", set="members:lib-b")}
    assert len(titles) == 5


def test_deletions_are_persistent_and_reach_the_downstream_catalogue(tmp_path, live_server, oai_schema):
    up = built_catalogue(tmp_path / "up")
    try:
        base = live_server(app_for(up, OAI_PAGE_SIZE=5)) + "/oai"
        down = _second_catalogue(tmp_path, base)
        harvest(down, select_sources(down))
        build(down)
        before = down.clusters.count()
        gone = next(c for c in up.clusters.iter_live() if c.record.title == "The analects")
        # Library B withdraws its only copy of The analects: the cluster is retired
        dump = tmp_path / "up" / "dumps" / "lib-b.mrc"
        from pymarc import MARCReader
        kept = [r for r in MARCReader(dump.read_bytes()) if r["001"].data != "B-10"]
        dump.write_bytes(b"".join(r.as_marc() for r in kept))
        harvest(up, select_sources(up, ["lib-b"]), full=True)
        build(up)
        assert up.clusters.get(gone.id) is None
        client = app_for(up).test_client()
        root = get(client, oai_schema, f"verb=GetRecord&identifier=oai:unioncat:{gone.id}&metadataPrefix=marcxml")
        header = root.find(".//o:header", NS)
        assert header.get("status") == "deleted" and root.find(".//o:metadata", NS) is None
        member = get(client, oai_schema, "verb=GetRecord&identifier=oai:unioncat:lib-b:B-10&metadataPrefix=oai_dc")
        assert member.find(".//o:header", NS).get("status") == "deleted"
        deleted = [h for h in walk(client, oai_schema, "ListIdentifiers", "metadataPrefix=marcxml&set=library:lib-b")[0]
                   if h.get("status") == "deleted"]
        assert [h.findtext("o:identifier", namespaces=NS) for h in deleted] == [f"oai:unioncat:{gone.id}"]
        # the downstream catalogue's next incremental harvest takes the deletion
        [report] = harvest(down, select_sources(down))
        assert report.counts.deleted == 1
        build(down)
        assert down.clusters.count() == before - 1
        assert "The analects" not in {c.record.title for c in down.clusters.iter_live()}
        down.close()
    finally:
        up.close()
