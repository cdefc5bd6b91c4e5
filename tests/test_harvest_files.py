"""Reading member dumps (ISO 2709, MARCXML) and harvesting them into the raw store."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree
from pymarc import Field, Record

from harvester.clients import dumps as files
from consortium.config import Source
from harvester.clients.dumps import DumpError, StreamBroken, read_path
from harvester.harvest import harvest_source
from harvester.raw import QuarantinedItem, RawRecord
from harvester.stores.records import Changes
from marc_fixtures import MARC_NS, collection, iso2709, make_record, marcxml

DATABASES = ("sqlite", "postgresql")  # the store tests run on both (see conftest.py)


def split(items) -> tuple[list[RawRecord], list[QuarantinedItem]]:
    items = list(items)
    return [i for i in items if isinstance(i, RawRecord)], [i for i in items if isinstance(i, QuarantinedItem)]


def file_source(path: Path, **kw) -> Source:
    return Source(id="dump", name="Dump library", region="East", protocol="file", path=path, **kw)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- ISO 2709 ---------------------------------------------------------------------
def test_iso2709_records_keep_their_exact_bytes_and_001(tmp_path):
    recs = [make_record(f"b{i}", title=f"Title {i}") for i in range(3)]
    path = write(tmp_path / "dump.mrc", b"".join(iso2709(r) for r in recs))

    good, bad = split(read_path(path, "lib"))

    assert not bad
    assert [r.local_id for r in good] == ["b0", "b1", "b2"]
    assert [r.payload for r in good] == [iso2709(r) for r in recs]
    assert {(r.syntax, r.format, r.source) for r in good} == {("iso2709", "marc21", "lib")}


def test_records_without_001_get_file_and_position(tmp_path):
    path = write(tmp_path / "sub" / "x.dat", iso2709(make_record("a")) + iso2709(make_record(None)))
    good, _ = split(read_path(tmp_path, "lib"))
    assert [r.local_id for r in good] == ["a", "sub/x.dat#2"]


def test_broken_leader_is_quarantined_and_the_rest_read(tmp_path):
    broken = b"abcde" + iso2709(make_record("2"))[5:]
    path = write(tmp_path / "d.mrc", iso2709(make_record("1")) + broken + iso2709(make_record("3")))

    good, bad = split(read_path(path, "lib"))

    assert [r.local_id for r in good] == ["1", "3"]
    assert len(bad) == 1 and not isinstance(bad[0], StreamBroken)
    assert "bad leader: record length 'abcde' is not a number" in bad[0].reason
    assert bad[0].local_id == "d.mrc#2" and bad[0].payload == broken


def test_wrong_leader_length_is_not_trusted(tmp_path):
    # UTF-8 exports often count characters, not bytes: the terminator decides.
    data = iso2709(make_record("1", title="Über Ünïcode"))
    wrong = b"00010" + data[5:]
    path = write(tmp_path / "d.mrc", wrong + iso2709(make_record("2")))
    good, bad = split(read_path(path, "lib"))
    assert [r.local_id for r in good] == ["1", "2"] and good[0].payload == wrong and not bad


def test_truncated_last_record_means_an_incomplete_dump(tmp_path):
    whole = iso2709(make_record("2"))
    path = write(tmp_path / "d.mrc", iso2709(make_record("1")) + whole[: len(whole) // 2])
    good, bad = split(read_path(path, "lib"))
    assert [r.local_id for r in good] == ["1"]
    assert len(bad) == 1 and isinstance(bad[0], StreamBroken) and "truncated" in bad[0].reason


def test_last_record_missing_only_its_terminator_is_kept(tmp_path):
    last = iso2709(make_record("2"))
    path = write(tmp_path / "d.mrc", iso2709(make_record("1")) + last[:-1])
    good, bad = split(read_path(path, "lib"))
    assert [r.local_id for r in good] == ["1", "2"] and good[1].payload == last and not bad


def test_directory_pointing_past_the_end_is_quarantined(tmp_path):
    data = bytearray(iso2709(make_record("1")))
    cut = data[:60] + data[-1:]  # keeps the leader and part of the directory, then the terminator
    cut[12:17] = b"00025"
    path = write(tmp_path / "d.mrc", bytes(cut) + iso2709(make_record("2")))
    good, bad = split(read_path(path, "lib"))
    assert [r.local_id for r in good] == ["2"] and len(bad) == 1


def test_trailing_junk_and_blank_lines(tmp_path):
    path = write(tmp_path / "d.mrc", iso2709(make_record("1")) + b"\r\n" + iso2709(make_record("2"))
                 + b"\n#junk#")
    good, bad = split(read_path(path, "lib"))
    assert [r.local_id for r in good] == ["1", "2"]
    assert len(bad) == 1 and "trailing junk" in bad[0].reason and not isinstance(bad[0], StreamBroken)
    newline_only = write(tmp_path / "e.mrc", iso2709(make_record("3")) + b"\n")
    assert split(read_path(newline_only, "lib"))[1] == []


def test_invalid_utf8_is_stored_raw_for_the_normaliser(tmp_path, store):
    data = iso2709(make_record("u1", title="Title ok"))
    assert data[9:10] == b"a"  # declares UTF-8
    bad_bytes = data.replace(b"Title ok", b"Title \xff\xfe")
    write(tmp_path / "d.mrc", bad_bytes)
    report = harvest_source(file_source(tmp_path / "d.mrc"), store)
    assert report.status == "ok" and report.counts.added == 1
    assert store.get("dump", "u1").record.payload == bad_bytes


def test_001_in_any_character_set(tmp_path):
    rec = Record(force_utf8=False)
    rec.add_field(Field(tag="001", data="x"))
    rec.add_field(Field(tag="245", indicators=[" ", " "], subfields=[]))
    data = rec.as_marc()
    latin = data.replace(b"x\x1e", b"\xe9\x1e", 1)  # a Latin-1 é in 001
    good, _ = split(read_path(write(tmp_path / "l.mrc", latin), "lib"))
    assert good[0].local_id == "é"
    gb = rec.as_marc().replace(b"x\x1e", "书".encode("gb2312") + b"\x1e", 1)
    gb = b"%05d" % len(gb) + gb[5:]
    gb = gb[:24] + b"001" + b"%04d" % 3 + gb[31:]  # fix the 001 length in the directory
    good, _ = split(read_path(write(tmp_path / "g.mrc", gb), "lib", encoding="gb2312"))
    assert good[0].local_id == "书"


def test_records_across_read_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_BLOCK", 7)
    recs = [make_record(str(i)) for i in range(5)]
    path = write(tmp_path / "d.mrc", b"".join(iso2709(r) for r in recs))
    good, bad = split(read_path(path, "lib"))
    assert [r.payload for r in good] == [iso2709(r) for r in recs] and not bad


# -- MARCXML -----------------------------------------------------------------------------
def test_marcxml_collection_with_and_without_namespace(tmp_path):
    recs = [make_record("x1", title="One"), make_record(None, title="Two")]
    for name, ns in (("ns.xml", True), ("plain.xml", False)):
        good, bad = split(read_path(write(tmp_path / name, collection(recs, namespace=ns)), "lib"))
        assert not bad
        assert [r.local_id for r in good] == ["x1", f"{name}#2"]
        assert {r.syntax for r in good} == {"marcxml"}
        root = etree.fromstring(good[0].payload)
        assert etree.QName(root).localname == "record"
        assert etree.QName(root).namespace == (MARC_NS if ns else None)
        prefix = f"{{{MARC_NS}}}" if ns else ""
        assert root.findtext(f"{prefix}datafield/{prefix}subfield") in ("Author, Ann", "One")


def test_single_record_and_rootless_files(tmp_path):
    one = write(tmp_path / "one.xml", b'<?xml version="1.0" encoding="UTF-8"?>\n' + marcxml(make_record("s1")))
    assert [r.local_id for r in split(read_path(one, "lib"))[0]] == ["s1"]
    rootless = write(tmp_path / "many.marcxml", marcxml(make_record("r1")) + b"\n" + marcxml(make_record("r2")))
    good, bad = split(read_path(rootless, "lib"))
    assert [r.local_id for r in good] == ["r1", "r2"] and not bad
    assert good[1].payload == etree.tostring(etree.fromstring(marcxml(make_record("r2"))))


def test_marc_records_inside_an_oai_response_file(tmp_path):
    body = (b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords><record><header>'
            b"<identifier>oai:x:1</identifier></header><metadata>" + marcxml(make_record("o1"))
            + b"</metadata></record></ListRecords></OAI-PMH>")
    good, _ = split(read_path(write(tmp_path / "page.xml", body), "lib"))
    assert [r.local_id for r in good] == ["o1"]


def test_broken_xml_is_quarantined_with_the_parser_message(tmp_path):
    data = collection([make_record("k1"), make_record("k2")]).replace(b"</collection>", b"<record><leader>")
    good, bad = split(read_path(write(tmp_path / "b.xml", data), "lib"))
    assert [r.local_id for r in good] == ["k1", "k2"]
    assert len(bad) == 1 and isinstance(bad[0], StreamBroken)
    assert "not well-formed XML" in bad[0].reason and "line" in bad[0].reason and "b.xml" in bad[0].reason


def test_folder_is_read_recursively_in_order_with_patterns(tmp_path):
    write(tmp_path / "b" / "2.mrc", iso2709(make_record("b2")))
    write(tmp_path / "a.xml", collection([make_record("a1")]))
    write(tmp_path / "b" / "1.iso", iso2709(make_record("b1")))
    write(tmp_path / "notes.txt", b"not a dump")
    assert [r.local_id for r in read_path(tmp_path, "lib")] == ["a1", "b1", "b2"]
    assert [r.local_id for r in read_path(tmp_path, "lib", pattern="*.mrc, *.iso")] == ["b1", "b2"]


def test_missing_empty_and_unmatched_paths_are_clear_errors(tmp_path):
    with pytest.raises(DumpError, match="no such file"):
        list(read_path(tmp_path / "nope.mrc", "lib"))
    with pytest.raises(DumpError, match="empty file"):
        list(read_path(write(tmp_path / "empty.mrc", b""), "lib"))
    folder = tmp_path / "folder"
    folder.mkdir()
    write(folder / "readme.txt", b"x")
    with pytest.raises(DumpError, match="no files matching"):
        list(read_path(folder, "lib"))


# -- harvesting files ------------------------------------------------------------------------
def test_file_harvest_is_incremental_by_content_hash_and_deletes_what_left(tmp_path, store):
    path = tmp_path / "dump.mrc"
    write(path, b"".join(iso2709(make_record(str(i), title=f"T{i}")) for i in range(1, 6)))
    source = file_source(path, format="marc21")
    first = harvest_source(source, store)
    assert first.status == "ok" and first.counts.added == 5

    again = harvest_source(source, store)
    assert (again.counts.unchanged, again.counts.added, again.counts.updated) == (5, 0, 0)

    write(path, b"".join(iso2709(make_record(str(i), title="changed" if i == 2 else f"T{i}")) for i in (1, 2, 3)))
    third = harvest_source(source, store)
    assert (third.counts.updated, third.counts.unchanged, third.counts.deleted) == (1, 2, 2)
    assert store.local_ids("dump") == ["1", "2", "3"] and store.get("dump", "5").record.deleted
    assert [r["status"] for r in store.runs("dump")] == ["ok", "ok", "ok"]


class Calls:
    """Counts the calls of a real function and passes them on (what a rerun reads, measured)."""

    def __init__(self, monkeypatch, module, name: str):
        self.n, real = 0, getattr(module, name)

        def counted(*args, **kw):
            self.n += 1
            return real(*args, **kw)
        monkeypatch.setattr(module, name, counted)


def test_an_unchanged_dump_is_skipped_without_a_read_and_a_touched_one_hashed_once(tmp_path, store, monkeypatch):
    from harvester.protocols import files as protocol
    path = write(tmp_path / "dump.mrc", b"".join(iso2709(make_record(str(i), title=f"T{i}")) for i in range(1, 1201)))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns - 5 * 10**9))  # not written just now
    source = file_source(path)
    assert harvest_source(source, store).counts.added == 1200
    parsed, hashed = Calls(monkeypatch, protocol, "read_path"), Calls(monkeypatch, protocol, "content_digest")
    reread = Calls(monkeypatch, files, "_read_iso2709")

    again = harvest_source(source, store)  # not touched: no read at all
    assert (again.status, again.counts.unchanged, again.counts.added) == ("ok", 1200, 0)
    assert (parsed.n, hashed.n, reread.n) == (0, 0, 0)

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # copied again, same bytes: one hash
    touched = harvest_source(source, store)
    assert (touched.counts.unchanged, parsed.n, hashed.n, reread.n) == (1200, 0, 1, 0)
    assert harvest_source(source, store).counts.unchanged == 1200 and hashed.n == 1  # the new mtime was kept

    assert harvest_source(source, store, full=True).counts.unchanged == 1200 and reread.n == 1  # --full reads
    write(path, path.read_bytes() + iso2709(make_record("new", title="New")))
    changed = harvest_source(source, store)
    assert (changed.counts.added, changed.counts.unchanged, reread.n) == (1, 1200, 2)
    assert store.count("dump") == 1201 and [r["status"] for r in store.runs("dump")] == ["ok"] * 6


def test_a_dump_written_twice_in_one_clock_tick_is_not_taken_for_the_same(tmp_path, store):
    path = write(tmp_path / "dump.mrc", iso2709(make_record("1", title="AAAA")))
    stat = path.stat()
    assert harvest_source(file_source(path), store).counts.added == 1
    write(path, iso2709(make_record("1", title="BBBB")))  # same size; same mtime as far as the stat can tell
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert harvest_source(file_source(path), store).counts.updated == 1


def test_incomplete_dump_does_not_delete(tmp_path, store):
    path = tmp_path / "dump.mrc"
    records = [iso2709(make_record(str(i))) for i in range(1, 5)]
    write(path, b"".join(records))
    harvest_source(file_source(path), store)
    write(path, records[0] + records[1][:40])  # a transfer cut short
    report = harvest_source(file_source(path), store)
    assert report.status == "ok" and report.counts.quarantined == 1 and report.counts.deleted == 0
    assert store.count("dump") == 4


def test_duplicate_001_is_quarantined(tmp_path, store):
    write(tmp_path / "d.mrc", iso2709(make_record("1", title="first")) + iso2709(make_record("1", title="second")))
    report = harvest_source(file_source(tmp_path / "d.mrc"), store)
    assert report.counts.added == 1 and report.counts.quarantined == 1
    assert b"first" in store.get("dump", "1").record.payload
    assert "duplicate" in store.quarantined("dump")[0]["reason"]


def test_an_id_no_database_can_key_is_quarantined_not_fatal(tmp_path, store):
    long_id = "x" * 300
    write(tmp_path / "d.mrc", iso2709(make_record(long_id, title="long")) + iso2709(make_record("2", title="ok")))
    report = harvest_source(file_source(tmp_path / "d.mrc"), store)
    assert report.status == "ok" and report.counts.added == 1 and report.counts.quarantined == 1
    (item,) = store.quarantined("dump")
    assert "300 characters" in item["reason"] and item["local_id"] == long_id[:255]
    assert store.local_ids("dump") == ["2"]


def test_file_harvest_batches_and_quarantine(tmp_path, store):
    recs = b"".join(iso2709(make_record(str(i))) for i in range(1200)) + b"abcde" + b"0" * 30 + b"\x1d"
    write(tmp_path / "big.mrc", recs)
    pages = []
    report = harvest_source(file_source(tmp_path / "big.mrc"), store, progress=pages.append)
    assert report.counts.added == 1200 and report.counts.quarantined == 1
    assert len(pages) == 3 and pages[-1].counts.added == 1200
    assert store.quarantined_by_source() == {"dump": 1}


def test_missing_path_is_a_failed_run(tmp_path, store):
    report = harvest_source(file_source(tmp_path / "gone.mrc"), store)
    assert report.status == "failed"
    assert "'dump'" in report.error and "gone.mrc" in report.error and "no such file" in report.error
    assert store.runs("dump")[0]["status"] == "failed"


def test_cnmarc_xml_in_its_own_namespace_inside_an_sru_envelope(tmp_path):
    """Chinese Alma/dp2 exports put CNMARC XML in http://www.nlc.cn/; the SRU envelope's record is not MARC."""
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<searchRetrieveResponse xmlns="http://www.loc.gov/zing/srw/"><records>'
        + "".join(
            f'<record><recordSchema>cnmarcxml</recordSchema><recordData>'
            f'<record xmlns="http://www.nlc.cn/"><leader>01576nam0 2200409   4500</leader>'
            f'<controlfield tag="001">99000{n}</controlfield>'
            f'<datafield tag="200" ind1="1" ind2=" "><subfield code="a">中国发展报告{n}</subfield></datafield>'
            f'</record></recordData></record>' for n in (1, 2))
        + "</records></searchRetrieveResponse>").encode("utf-8")
    path = tmp_path / "cnmarc.xml"
    path.write_bytes(doc)
    items = list(read_path(path, "bnu", format="cnmarc"))
    assert [i.local_id for i in items] == ["990001", "990002"]
    assert all(isinstance(i, RawRecord) and i.syntax == "marcxml" for i in items)
    assert "中国发展报告1".encode("utf-8") in items[0].payload


def test_store_times_are_aware_utc_and_raw_reads_for_the_feed(tmp_path, store):
    """UTCDateTime hands back aware UTC on every database; the change feed reads through RawStore's methods."""
    write(tmp_path / "d.mrc", b"".join(iso2709(make_record(str(i))) for i in range(1, 4)))
    harvest_source(file_source(tmp_path / "d.mrc", format="marc21"), store)
    run = store.runs("dump")[0]
    for value in (run["started_at"], run["finished_at"], store.last_seen("dump"), store.earliest_change(),
                  store.get("dump", "1").changed_at):
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)

    found = store.payloads([("dump", "1"), ("dump", "3"), ("dump", "nope"), ("other", "1")])
    assert sorted(found) == [("dump", "1"), ("dump", "3")] and found[("dump", "1")].payload.startswith(b"0")
    assert store.last_seq() == 3 and store.count_changes() == 3 and store.count_changes(upto=2) == 2
    page = store.changes(1, 10, Changes(sources=("dump",), formats=("marc21",)), payloads=False)
    assert [(r.seq, r.record.local_id, r.record.payload) for r in page] == [(2, "2", b""), (3, "3", b"")]
    assert store.changes(0, 10, Changes(formats=("unimarc",))) == []
    assert store.count_changes(Changes(start=run["started_at"] - timedelta(hours=1), not_formats=("cnmarc",))) == 3


def test_changed_since_reads_the_records_changes_reads(store):
    """The normalise stage's read (``changed_since``: plain rows, records made from their stored values, no
    ``changed_at``) gives the records, deletions and sequence numbers ``changes`` gives."""
    records = [RawRecord("m", str(i), iso2709(make_record(str(i))), datestamp="2026-12-07") for i in range(1, 5)]
    store.apply(records + [RawRecord("n", "x", marcxml(make_record("x")), syntax="marcxml", format="auto")])
    store.apply([RawRecord("m", "2", deleted=True)])
    cheap = list(store.changed_since(0, batch=2))
    full = store.changes(0, 100)
    assert [(r.seq, r.record) for r in cheap] == [(r.seq, r.record) for r in full]
    assert [r.record.content_hash for r in cheap] == [r.record.content_hash for r in full]
    gone = next(r.record for r in cheap if r.record.local_id == "2")
    assert gone.deleted is True and gone.payload == b"" and gone.content_hash == "deleted"
    assert all(type(r.record.payload) is bytes and r.changed_at is None for r in cheap)


def test_a_raw_record_pickles_as_its_values():
    """Sent to a normaliser worker and back: the same record, its hash kept (not computed again), still frozen."""
    import pickle
    from dataclasses import FrozenInstanceError
    record = RawRecord("m", "1", b"00026nam a2200025 a 4500\x1e\x1d", datestamp="2026-12-07", content_hash="kept")
    again = pickle.loads(pickle.dumps(record))
    assert again == record and again.content_hash == "kept" and vars(again) == vars(record)
    with pytest.raises(FrozenInstanceError):
        again.payload = b""
    assert pickle.loads(pickle.dumps(RawRecord("m", "2", deleted=True))).content_hash == "deleted"
