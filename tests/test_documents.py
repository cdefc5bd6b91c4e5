import json

from catalogue_fixtures import LIBRARIES, Classification, Cluster, Contributor, Holding, ParallelField, record

from index.documents import sort_key, to_document


def _cluster():
    rec = record(
        "红楼梦", subtitle="校注本", part="第一卷", source="pku", local_id="oai:pku:77", control_number="77",
        isbns=["9787020002207"], invalid_isbns=["7-02-000220-1"], issns=[], year=1982, format="book",
        languages=["chi", "chi"], subjects=["Chinese fiction", "Chinese fiction", ""], publisher="人民文学出版社",
        place="北京", edition="第3版", series=["中国古典文学读本丛书"], summary="A novel of the Qing dynasty.",
        contributors=[Contributor("高鹗", role="editor"), Contributor("曹雪芹", primary=True)],
        classifications=[Classification("clc", "I242.4")],
        parallel=[ParallelField("245", "Hong lou meng"), ParallelField("100", "Cao, Xueqin")],
        holdings=[Holding("pku", local_id="oai:pku:77", call_number="I242.4/1", location="Stacks", status="Available"),
                  Holding("pku", call_number="I242.4/1 c.2", location="Reserve"),
                  Holding("fdu", local_id="f9", call_number="I242/9")],
    )
    return Cluster(id="c1", record=rec, members=[("pku", "oai:pku:77"), ("thu", "t5"), ("fdu", "f9")],
                   match_keys=["isbn"])


def test_document_fields():
    doc = to_document(_cluster(), LIBRARIES)
    assert doc["id"] == "c1"
    assert doc["title"] == "红楼梦: 校注本. 第一卷"
    assert doc["title_alt"] == ["Hong lou meng"]
    assert doc["author"] == "曹雪芹"
    assert doc["authors"] == ["曹雪芹", "高鹗", "Cao, Xueqin"]
    assert doc["year"] == 1982 and doc["format"] == "book"
    assert doc["languages"] == ["chi"]
    assert doc["subjects"] == ["Chinese fiction"]
    assert doc["isbns"] == ["9787020002207", "702000220X"]
    assert doc["invalid_isbns"] == ["7020002201"]
    assert doc["publisher"] == "人民文学出版社" and doc["place"] == "北京" and doc["edition"] == "第3版"
    assert doc["classifications"] == [{"scheme": "clc", "value": "I242.4"}]
    for word in ("Hong lou meng", "A novel of the Qing dynasty.", "I242.4", "9787020002207", "中国古典文学读本丛书"):
        assert word in doc["all"]
    json.dumps(doc)  # plain data only


def test_holdings_every_member_named_from_sources():
    doc = to_document(_cluster(), LIBRARIES)
    assert [(h["source"], h["call_number"]) for h in doc["holdings"]] == [
        ("pku", "I242.4/1"), ("pku", "I242.4/1 c.2"), ("thu", ""), ("fdu", "I242/9")]
    first = doc["holdings"][0]
    assert first["library"] == "Peking University Library" and first["region"] == "Beijing"
    assert first["location"] == "Stacks" and first["local_id"] == "oai:pku:77"
    # a copy without its own id takes its member record's; a member without holdings fields still holds it
    assert doc["holdings"][1]["local_id"] == "oai:pku:77"
    assert doc["holdings"][2] == {"source": "thu", "library": "Tsinghua University Library", "region": "Beijing",
                                  "call_number": "", "location": "", "status": "", "local_id": "t5",
                                  "branch": "", "volume": ""}
    assert doc["libraries"] == ["pku", "thu", "fdu"]
    assert doc["regions"] == ["Beijing", "Shanghai"]
    assert doc["library_count"] == 3


def test_holdings_of_a_source_that_is_not_a_member_come_after_the_members_in_their_order():
    """A member's copies come in the order members joined, then copies of other sources (a merged-away
    member's holdings) in the order they are held; a member without copies still holds the item."""
    rec = record("x", source="pku", local_id="1", holdings=[
        Holding("zju", call_number="Z1"), Holding("fdu", call_number="F1"), Holding("zju", call_number="Z2"),
        Holding("pku", call_number="P1")])
    doc = to_document(Cluster(id="c4", record=rec, members=[("pku", "1"), ("thu", "t"), ("pku", "2")]), LIBRARIES)
    assert [(h["source"], h["call_number"], h["local_id"]) for h in doc["holdings"]] == [
        ("pku", "P1", "1"), ("thu", "", "t"), ("zju", "Z1", ""), ("zju", "Z2", ""), ("fdu", "F1", "")]


def test_unknown_library_and_empty_record():
    rec = record("", source="gone", local_id="x", format="")
    doc = to_document(Cluster(id="c2", record=rec, members=[("gone", "x")]), LIBRARIES)
    assert doc["holdings"][0]["library"] == "gone" and doc["holdings"][0]["region"] == ""
    assert doc["regions"] == [] and doc["library_count"] == 1
    assert doc["author"] == "" and doc["year"] is None and doc["format"] == "other" and doc["isbns"] == []


def test_isbn_outside_978_has_no_isbn10():
    rec = record("x", isbns=["9791032300824"])
    assert to_document(Cluster(id="c3", record=rec, members=[("pku", "1")]), LIBRARIES)["isbns"] == ["9791032300824"]


def test_sort_key():
    assert sort_key("[The] Éclair") == "the] eclair"
    assert sort_key("Zebra") > sort_key("apple")
