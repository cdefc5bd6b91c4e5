"""Decoding stored records (``normaliser.store.decode``) and holding the cyclic collector over a batch.

The dedupe decodes every member record twice a full pass, so ``decode`` skips
``Record.from_dict`` for JSON in field order; these tests pin that it gives the
same record (and the same JSON back) as ``from_dict``, for rows in any order.
"""
from __future__ import annotations

import gc
import json
from dataclasses import fields

from normaliser.model import Classification, Contributor, Holding, ParallelField, Record
from normaliser.store import RecordStore, decode, dumps, paused_gc, stored


def rich() -> Record:
    return Record("m1", "42", title="Wuthering heights", subtitle="a novel", year=1847, publisher="Smith",
                  contributors=[Contributor("Brontë, Emily", primary=True, ids=["lccn:n79056906"])],
                  classifications=[Classification("lcc", "PR4172 .W7")], isbns=["9780141439556"],
                  subjects=["Yorkshire (England) -- Fiction"], urls=["http://example.org/wh"],
                  parallel=[ParallelField("245", "呼啸山庄")],
                  holdings=[Holding("m1", "42", library="main", call_number="PR4172")])


def test_decode_gives_the_record_and_its_json_back():
    record = rich()
    data = stored(record).data
    decoded = decode(data)
    assert decoded == record == Record.from_dict(json.loads(data))
    assert type(decoded.contributors[0]) is Contributor and type(decoded.holdings[0]) is Holding
    assert dumps(decoded.to_dict()) == data
    # a decoded record is a record like any other: its lists are its own
    decoded.isbns.append("0141439556")
    assert record.isbns == ["9780141439556"]


def test_json_is_compact_and_rows_written_by_json_dumps_still_decode():
    """orjson writes the store's JSON without blanks; the rows ``json.dumps`` wrote before read the same."""
    record = rich()
    data = stored(record).data
    assert '", "' not in data and '": ' not in data and "呼啸山庄" in data
    assert json.loads(data) == record.to_dict()
    assert decode(json.dumps(record.to_dict(), ensure_ascii=False)) == record


def test_stored_json_is_the_json_of_to_dict():
    """``stored`` lets orjson write the dataclasses (it skips names with a leading ``_``: the model has none)."""
    record = rich()
    assert stored(record).data == dumps(record.to_dict())
    holdings = Record("m1", "h1", kind="holdings", holdings_of="42", holdings=rich().holdings)
    assert stored(holdings).holdings == dumps(holdings.to_dict()["holdings"])
    for model in (Record, Contributor, Classification, ParallelField, Holding):
        assert not [f.name for f in fields(model) if f.name.startswith("_")]


def test_what_orjson_refuses_goes_through_json():
    """A lone surrogate (damaged input) or an integer past 64 bits: stored and read back all the same."""
    record = Record("m1", "1", title="broken \ud800 title", subjects=["x"], year=2**70)
    data = stored(record).data
    assert decode(data) == record
    assert json.loads(data) == record.to_dict()
    holdings = Record("m1", "h1", kind="holdings", holdings=[Holding("m1", "h1", library="\udc80")])
    assert json.loads(stored(holdings).holdings) == holdings.to_dict()["holdings"]


def test_rows_from_an_older_model_go_through_from_dict():
    record = rich()
    fields = record.to_dict()
    reordered = dict(reversed(list(fields.items())))
    missing = {k: v for k, v in fields.items() if k != "subjects"}        # a field the model gained since
    assert decode(json.dumps(reordered)) == record
    assert decode(json.dumps(missing)) == Record.from_dict(missing)
    assert decode(json.dumps(missing)).subjects == []
    assert list(decode(json.dumps(reordered)).to_dict()) == list(fields)   # attributes in field order again


def test_get_many_and_changed_since_decode_the_same_records(db):
    store = RecordStore(db)
    record, other = rich(), Record("m2", "7", title="Jane Eyre")
    store.put([(stored(record), "m1", "42", 1), (other, "m2", "7", 1)])
    assert store.get_many([("m1", "42"), ("m2", "7")]) == {("m1", "42"): record, ("m2", "7"): other}
    assert [r for *_, r in store.changed_since(0)] == [record, other]


def test_paused_gc_restores_the_collector_as_it_found_it():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()   # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()   # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_parts_from_an_older_model_go_through_their_init():
    """A contributor or holding whose stored dict lacks a field, or has its fields in another order, is made by
    its dataclass ``__init__`` (defaults filled); one in field order becomes the part as it is, equal either way."""
    fields_ = rich().to_dict()
    fields_["contributors"] = [{"name": "Brontë, Emily"}, dict(reversed(list(vars(Contributor("Bell, Acton")).items())))]
    fields_["holdings"] = [{"source": "m1", "call_number": "PR4172"}]
    decoded = decode(json.dumps(fields_))
    assert decoded.contributors == [Contributor("Brontë, Emily"), Contributor("Bell, Acton")]
    assert decoded.holdings == [Holding("m1", call_number="PR4172")] and decoded.holdings[0].urls == []
    assert [list(vars(c)) for c in decoded.contributors] == [[f.name for f in fields(Contributor)]] * 2
    assert dumps(decode(stored(decoded).data).to_dict()) == stored(decoded).data


def test_decoded_parts_are_their_own():
    """A part made without ``__init__`` holds its own lists, as one made by it does."""
    record = rich()
    decoded = decode(stored(record).data)
    decoded.contributors[0].ids.append("viaf:1")
    decoded.holdings[0].urls.append("http://example.org")
    assert record.contributors[0].ids == ["lccn:n79056906"] and record.holdings[0].urls == []
