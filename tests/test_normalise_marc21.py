"""MARC 21 → Record: every mapping, character sets, broken records, holdings presets.

Records are built in code with pymarc and serialised to ISO 2709
(``as_marc``) or MARCXML (``record_to_xml``), so each test shows exactly
what it varies.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from pymarc import Field, Indicators, Record as MarcRecord, Subfield, record_to_xml

from consortium.presets import HOLDINGS_PRESETS
from harvester.raw import RawRecord
from normaliser import normalise
from normaliser.errors import RecordError
from normaliser.iso2709 import data_field, control_field
from normaliser.model import Classification, Contributor, Holding, ParallelField, Record

BOOK_008 = "990101s1999    enka   j      000 1 eng d"
UTF8_LEADER = "00000nam a2200000 a 4500"
MARC8_LEADER = "00000nam  2200000 a 4500"


def df(tag: str, ind: str = "  ", *pairs: str) -> Field:
    """A data field: ``df("245", "10", "a", "Title /", "c", "Me.")``."""
    assert len(pairs) % 2 == 0
    return Field(tag=tag, indicators=Indicators(ind[0], ind[1]),
                 subfields=[Subfield(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)])


def cf(tag: str, data: str) -> Field:
    return Field(tag=tag, data=data)


def marc(*fields: Field, leader: str = UTF8_LEADER, f008: str | None = BOOK_008, title: bool = True) -> MarcRecord:
    rec = MarcRecord(leader=leader, to_unicode=leader[9] == "a")   # to_unicode=False: as_marc keeps leader/09
    rec.add_field(cf("001", "rec-1"))
    if f008 is not None:
        rec.add_field(cf("008", f008))
    if title and not any(f.tag == "245" for f in fields):
        rec.add_field(df("245", "10", "a", "A title."))
    rec.add_field(*fields)
    return rec


def raw(payload: bytes, syntax: str = "iso2709", fmt: str = "marc21") -> RawRecord:
    return RawRecord(source="member", local_id="42", payload=payload, syntax=syntax, format=fmt)


def norm(rec: MarcRecord, holdings=(), xml: bool = False, fmt: str = "marc21") -> Record:
    payload = record_to_xml(rec, namespace=True) if xml else rec.as_marc()
    return normalise(raw(payload, "marcxml" if xml else "iso2709", fmt), holdings)


def reason(payload: bytes, syntax: str = "iso2709", fmt: str = "marc21") -> str:
    with pytest.raises(RecordError) as info:
        normalise(raw(payload, syntax, fmt))
    return str(info.value)


# --- the full mapping, ISO 2709 and MARCXML alike ---------------------------------

def full_record() -> MarcRecord:
    return marc(
        cf("003", "DLC"),
        df("010", "  ", "a", "   85000002 "),
        df("020", "  ", "a", "0306406152 (pbk.)", "c", "£9.99"),
        df("020", "  ", "a", "978-0-306-40615-7"),
        df("020", "  ", "a", "0306406153 (v. 1)", "z", "1234567890"),
        df("022", "0 ", "a", "0024-9319", "y", "0024-9318", "z", "1111-1111"),
        df("035", "  ", "a", "(OCoLC)ocm00012345"),
        df("035", "  ", "a", "(DLC)   85000002"),
        df("041", "0 ", "a", "engfre", "a", "ENG", "a", "xx", "h", "ger"),
        df("050", "00", "a", "QA76.73.P98", "b", "L88 2013"),
        df("082", "04", "a", "005.13/3", "2", "23"),
        df("082", "04", "a", "[E]"),
        df("084", "  ", "a", "TP312", "2", "clc"),
        df("084", "  ", "a", "I247.5", "2", "中图法"),
        df("084", "  ", "a", "ST 250", "2", "rvk"),
        df("100", "1 ", "a", "Lutz, Mark,", "d", "1962-", "e", "author."),
        df("245", "10", "a", "Learning Python /", "b", "powerful object-oriented programming :",
           "n", "Part 2,", "p", "The sequel /", "c", "Mark Lutz."),
        df("250", "  ", "a", "5th ed."),
        df("260", "  ", "a", "Cambridge, Mass. :", "b", "Other,", "c", "2000."),
        df("264", " 4", "c", "©2013"),
        df("264", " 1", "a", "Sebastopol, CA :", "b", "O'Reilly,", "c", "[2013]"),
        df("300", "  ", "a", "xlix, 1540 p. :", "b", "ill. ;", "c", "24 cm."),
        df("490", "1 ", "a", "Animal guide ;", "v", "v. 3"),
        df("500", "  ", "a", "Includes index."),
        df("500", "  ", "a", "Covers Python 3.3."),
        df("520", "  ", "a", "A   comprehensive  introduction."),
        df("600", "10", "a", "Rossum, Guido van,", "d", "1956-", "x", "Interviews."),
        df("650", " 0", "a", "Python (Computer program language)", "v", "Handbooks, manuals, etc."),
        df("650", " 0", "a", "Object-oriented programming (Computer science)"),
        df("651", " 0", "a", "United States", "x", "History", "y", "20th century."),
        df("655", " 7", "a", "Textbooks.", "2", "lcgft"),
        df("700", "1 ", "a", "Ascher, David.", "4", "ctb"),
        df("710", "2 ", "a", "O'Reilly Media.", "b", "Editorial board,", "e", "editor."),
        df("711", "2 ", "a", "PyCon", "n", "(3rd :", "d", "2005 :", "c", "Washington, D.C.)", "j", "host."),
        df("830", " 0", "a", "Animal guide.", "v", "v. 3."),
        df("856", "40", "u", "http://example.org/toc ", "z", "Table of contents"),
        df("856", "42", "u", "http://example.org/toc"),
    )


@pytest.mark.parametrize("xml", [False, True], ids=["iso2709", "marcxml"])
def test_full_mapping(xml):
    rec = norm(full_record(), xml=xml)
    assert rec.source == "member" and rec.local_id == "42" and rec.record_format == "marc21"
    assert rec.control_number == "rec-1"
    assert rec.isbns == ["9780306406157"]
    assert rec.invalid_isbns == ["0306406153", "1234567890"]
    assert rec.issns == ["0024-9319"]
    assert rec.invalid_issns == ["0024-9318", "1111-1111"]
    assert rec.oclc_numbers == ["12345"]
    assert rec.lccns == ["85000002"]
    assert rec.title == "Learning Python"
    assert rec.subtitle == "powerful object-oriented programming"
    assert rec.part == "Part 2, The sequel"
    assert rec.responsibility == "Mark Lutz"
    assert rec.full_title == "Learning Python: powerful object-oriented programming. Part 2, The sequel"
    assert rec.contributors == [
        Contributor("Lutz, Mark, 1962-", "author", "person", True),
        Contributor("Ascher, David", "ctb", "person", False),
        Contributor("O'Reilly Media. Editorial board", "editor", "organisation", False),
        Contributor("PyCon (3rd : 2005 : Washington, D.C.)", "host", "meeting", False),
    ]
    assert rec.main_author == "Lutz, Mark, 1962-"
    assert rec.edition == "5th ed."
    assert (rec.place, rec.publisher, rec.year) == ("Sebastopol, CA", "O'Reilly", 1999)  # 264 _1; year from 008
    assert rec.extent == "xlix, 1540 p."
    assert rec.languages == ["eng", "fre"]
    assert rec.format == "book"
    assert rec.subjects == [
        "Rossum, Guido van, 1956- -- Interviews",
        "Python (Computer program language) -- Handbooks, manuals, etc.",
        "Object-oriented programming (Computer science)",
        "United States -- History -- 20th century",
        "Textbooks",
    ]
    assert rec.classifications == [
        Classification("lcc", "QA76.73.P98 L88 2013"),
        Classification("ddc", "005.133"),
        Classification("clc", "TP312"),
        Classification("clc", "I247.5"),
        Classification("rvk", "ST 250"),
    ]
    assert rec.series == ["Animal guide ; v. 3"]
    assert rec.summary == "A comprehensive introduction"
    assert rec.notes == ["Includes index", "Covers Python 3.3"]
    assert rec.urls == ["http://example.org/toc"]
    assert rec.warnings == [] and rec.holdings == [] and rec.parallel == []
    assert Record.from_dict(rec.to_dict()) == rec


def test_marcxml_without_namespace_like_alma():
    rec = full_record()
    payload = record_to_xml(rec, namespace=False)
    assert b"xmlns" not in payload
    assert normalise(raw(payload, "marcxml")).title == "Learning Python"


def test_marcxml_inside_collection_and_leader_with_hash_blanks():
    body = record_to_xml(marc(df("245", "00", "a", "In a collection")), namespace=False)
    body = body.replace(b"<leader>00000nam a2200000 a 4500", b"<leader>00000nam#a2200000#a#4500")
    payload = b'<collection xmlns="http://www.loc.gov/MARC21/slim">' + body + b"</collection>"
    rec = normalise(raw(payload, "marcxml"))
    assert rec.title == "In a collection" and rec.format == "book"


def test_marcxml_is_parsed_without_entities_or_network(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    payload = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
               '<record><leader>00000nam a2200000 a 4500</leader>'
               '<datafield tag="245" ind1="0" ind2="0"><subfield code="a">Leak &x;</subfield></datafield>'
               '</record>').encode()
    try:
        rec = normalise(raw(payload, "marcxml"))
    except RecordError:
        return
    assert "SECRET" not in rec.title


def test_marcxml_broken():
    assert "not well-formed" in reason(b"<record><leader>x</leader><datafield tag='245'>", "marcxml")
    assert "no <record>" in reason(b"<foo/>", "marcxml")
    rec = normalise(raw(b"<record><leader>short</leader><datafield tag='245' ind1='0' ind2='0'>"
                        b"<subfield code='a'>T</subfield></datafield></record>", "marcxml"))
    assert rec.title == "T" and any("leader" in w for w in rec.warnings)


def test_year_and_imprint_fallbacks():
    rec = norm(marc(df("260", "  ", "a", "[London :", "b", "Smith],", "c", "c1887."), f008="990101q18uu    enk"))
    assert (rec.place, rec.publisher, rec.year) == ("London", "Smith", 1887)
    rec = norm(marc(df("264", " 4", "c", "©2010"), f008="990101nuuuuuuuuxx"))
    assert rec.year == 2010 and rec.publisher == ""
    rec = norm(marc(df("260", "  ", "c", "n.d."), f008=None))
    assert rec.year is None
    rec = norm(marc(df("260", "  ", "c", "[between 1990 and 1999]"), f008="990101s0000    xx"))
    assert rec.year == 1990


def test_languages():
    rec = norm(marc(df("041", "1 ", "a", "ger", "a", "und", "a", "EN", "a", "fre"), f008=BOOK_008[:35] + "FRE d"))
    assert rec.languages == ["fre", "ger"]
    assert norm(marc(f008=BOOK_008[:35] + "   d")).languages == []
    assert norm(marc(f008="short")).languages == []


def test_title_fallbacks_and_missing_title():
    assert norm(marc(df("245", "00", "k", "Papers,"), df("130", "0 ", "a", "Bible."))).title == "Papers"
    assert norm(marc(df("130", "0 ", "a", "Bible."), title=False)).title == "Bible"
    rec = norm(marc(df("880", "00", "6", "245-01/$1", "a", "中国历史"), title=False))
    assert rec.title == "中国历史"
    assert "no title" in reason(marc(df("500", "  ", "a", "x"), title=False).as_marc())


def test_oclc_from_001_and_003():
    rec = MarcRecord(leader=UTF8_LEADER)
    rec.add_field(cf("001", "ocm00054321"), cf("003", "OCoLC"), df("245", "00", "a", "T"),
                  df("035", "  ", "a", "(OCoLC)54321"), df("035", "  ", "a", "(OCoLC)on1234567890"))
    assert norm(rec).oclc_numbers == ["54321", "1234567890"]


def test_contributor_dedupe_and_dates_punctuation():
    rec = norm(marc(df("100", "1 ", "a", "Smith, J.", "q", "(John),", "d", "1900-1980."),
                    df("700", "1 ", "a", "Smith, J.", "q", "(John),", "d", "1900-1980.", "e", "editor."),
                    df("700", "1 ", "a", "Doe, Jane,", "e", "translator,", "e", "editor.")))
    assert [(c.name, c.role, c.primary) for c in rec.contributors] == [
        ("Smith, J. (John), 1900-1980", "", True),
        ("Doe, Jane", "translator, editor", False),
    ]


def test_series_from_8xx_and_490_deduplicated():
    rec = norm(marc(df("490", "1 ", "a", "Lecture notes in computer science ;", "v", "1234"),
                    df("800", "1 ", "a", "Tolkien, J. R. R.", "t", "Works.", "v", "2."),
                    df("830", " 0", "a", "Lecture notes in computer science ;", "v", "1234.")))
    assert rec.series == ["Lecture notes in computer science ; 1234", "Works ; 2"]


def test_notes_are_limited():
    rec = norm(marc(*[df("500", "  ", "a", f"Note {i}.") for i in range(9)]))
    assert rec.notes == [f"Note {i}" for i in range(5)]


# --- formats -----------------------------------------------------------------

def _f008(form_at_23: str = " ", form_at_29: str = " ") -> str:
    base = list(BOOK_008)
    base[23], base[29] = form_at_23, form_at_29
    return "".join(base)


@pytest.mark.parametrize("leader67, f008, extra, expected", [
    ("am", _f008(), [], "book"),
    ("am", _f008("o"), [], "ebook"),
    ("am", _f008("s"), [], "ebook"),
    ("am", _f008(), [cf("007", "cr |n|||||||||")], "book"),      # 007 cr alone: often a print record's scan link
    ("am", _f008(), [cf("007", "cr |n|||||||||"), df("245", "10", "a", "T", "h", "[electronic resource]")], "ebook"),
    ("am", _f008(), [df("245", "10", "a", "T", "h", "[electronic resource]")], "book"),
    ("am", _f008(), [df("338", "  ", "a", "online resource", "b", "cr")], "ebook"),
    ("am", _f008(), [cf("007", "co |||"), df("300", "  ", "a", "200 p.", "e", "1 CD-ROM")], "book"),
    ("am", _f008(), [cf("007", "cr"), df("338", "  ", "b", "nc")], "book"),
    ("am", _f008("r"), [cf("007", "cr")], "book"),
    ("am", _f008("a"), [], "microform"),
    ("am", _f008("b"), [], "microform"),
    ("am", _f008(), [cf("007", "he bfb")], "microform"),
    ("as", _f008(), [], "serial"),
    ("as", _f008("o"), [], "eserial"),
    ("ai", _f008("s"), [], "eserial"),
    ("ab", _f008(), [], "article"),
    ("tm", _f008(), [], "manuscript"),
    ("cm", _f008(), [], "score"),
    ("dm", _f008(), [], "score"),
    ("em", _f008(), [], "map"),
    ("em", _f008(" ", "a"), [], "microform"),
    ("fm", _f008(), [], "map"),
    ("gm", _f008(), [], "video"),
    ("im", _f008(), [], "recording"),
    ("jm", _f008(), [], "music-recording"),
    ("km", _f008(), [], "image"),
    ("mm", _f008(), [], "software"),
    ("om", _f008(), [], "kit"),
    ("pc", _f008(), [], "mixed"),
    ("rm", _f008(), [], "other"),
    ("#m", _f008(), [], "other"),
])
def test_formats(leader67, f008, extra, expected):
    leader = UTF8_LEADER[:6] + leader67 + UTF8_LEADER[8:]
    assert norm(marc(*extra, leader=leader, f008=f008)).format == expected


@pytest.mark.parametrize("leader6, kind", [("y", "holdings"), ("x", "holdings"), ("z", "authority")])
def test_non_bibliographic_records_are_rejected(leader6, kind):
    leader = UTF8_LEADER[:6] + leader6 + UTF8_LEADER[7:]
    message = reason(marc(leader=leader).as_marc())
    assert kind in message and f"leader/06 {leader6!r}" in message


# --- 880 parallel scripts -------------------------------------------------------

def test_880_parallel_fields():
    rec = norm(marc(
        df("100", "1 ", "6", "880-01", "a", "Zhang, Zhi'an."),
        df("245", "10", "6", "880-02", "a", "Ming dai zheng zhi zhi du /", "c", "Zhang Zhi'an zhu."),
        df("880", "1 ", "6", "100-01/$1", "a", "張治安."),
        df("880", "10", "6", "245-02/$1", "a", "明代政治制度 /", "c", "張治安著."),
        df("880", "1 ", "6", "245-03/(2/r", "a", "שלום"),
        df("880", "1 ", "a", "no linkage"),
    ))
    assert rec.title == "Ming dai zheng zhi zhi du"
    assert rec.contributors == [Contributor("Zhang, Zhi'an", "", "person", True)]
    assert rec.parallel == [
        ParallelField("100", "張治安", "$1"),
        ParallelField("245", "明代政治制度 / 張治安著", "$1"),
        ParallelField("245", "שלום", "(2"),
        ParallelField("", "no linkage", ""),
    ]


# --- character sets -------------------------------------------------------------

def marc8_record(*values: str) -> bytes:
    """An ISO 2709 record with leader/09 blank whose 245 $a/$b are the given MARC-8 byte strings.

    pymarc writes a blank-leader record as ISO 8859-1, so each character of
    ``values`` becomes one byte: MARC-8 can be written byte by byte.
    """
    fields = [df("245", "10", "a", values[0])] + [df("500", "  ", "a", v) for v in values[1:]]
    return marc(*fields, leader=MARC8_LEADER).as_marc()


def test_marc8_combining_diacritic_becomes_nfc():
    payload = marc8_record("Caf\xe2e soci\xe2et\xe2e /")        # 0xE2 = combining acute, before its letter
    assert b"Caf\xe2e" in payload
    rec = normalise(raw(payload))
    assert rec.title == "Café société"
    assert rec.warnings == []


def test_marc8_eacc_cjk():
    # ESC $ 1 selects EACC; 0x213034 中, 0x21353D 史; ESC ( B returns to ASCII.
    payload = marc8_record("\x1b$1!04!5=\x1b(B /")
    rec = normalise(raw(payload))
    assert rec.title == "中史"
    assert rec.warnings == []


def test_marc8_greek_and_cyrillic_escapes():
    # ESC g: Greek symbols (a b c → α β γ); ESC s: back to ASCII; ESC ( N: basic Cyrillic (M I R → м и р)
    rec = normalise(raw(marc8_record("\x1bgabc\x1bs and \x1b(NMIR\x1b(B")))
    assert rec.title == "αβγ and мир"


def test_marc8_damaged_eacc_at_the_end_is_reported_not_printed(capfd):
    rec = normalise(raw(marc8_record("Title", "\x1b$1!04!5")))       # last EACC character cut off
    assert rec.notes == ["中\ufffd"]
    assert any("undecodable" in w for w in rec.warnings)
    assert capfd.readouterr().err == ""


def test_undecodable_880_is_dropped_and_the_record_kept():
    payload = marc(df("245", "10", "6", "880-01", "a", "Zhongguo"),
                   df("880", "10", "6", "245-01/$1", "a", "\x1b$1\x7f\x7f\x7f\x7f\x7f\x7f\x1b(B"),
                   leader=MARC8_LEADER).as_marc()
    rec = normalise(raw(payload))
    assert rec.title == "Zhongguo" and rec.parallel == []
    assert rec.warnings == ["1 undecodable 880 field(s) dropped"]


def test_leader_blank_but_bytes_are_utf8():
    payload = marc(df("245", "10", "a", "Люди с чистой совестью"), leader=UTF8_LEADER).as_marc()
    payload = payload[:9] + b" " + payload[10:]
    rec = normalise(raw(payload))
    assert rec.title == "Люди с чистой совестью"
    assert rec.warnings == ["fields 245 read as UTF-8 although leader/09 says MARC-8"]


def _utf8_with(placeholder: str, replacement: bytes) -> bytes:
    payload = marc(df("245", "10", "a", f"{placeholder} and more text"), df("500", "  ", "a", "Plain ASCII"),
                   leader=UTF8_LEADER).as_marc()
    encoded = placeholder.encode("utf-8")
    assert len(encoded) == len(replacement) and payload.count(encoded) == 1
    return payload.replace(encoded, replacement)


def test_utf8_flag_with_marc8_bytes_reads_marc8():
    payload = _utf8_with("Caf\u00e9\u00e9e", b"Caf\xe2ee\xe2e")        # same length, MARC-8 inside
    rec = normalise(raw(payload))
    assert rec.title == "Caféeé and more text"
    assert rec.warnings == ["fields 245 read as MARC-8 although leader/09 says UTF-8"]


def test_utf8_flag_with_a_few_bad_bytes_is_repaired_with_a_warning():
    payload = _utf8_with("M\u00fcller", b"M\xfcller\xff")              # Latin-1 ü and a stray 0xFF
    rec = normalise(raw(payload))
    assert rec.title == "M\ufffdller\ufffd and more text"
    assert rec.warnings == ["undecodable characters replaced in fields 245 (leader/09 says UTF-8)"]


def test_utf8_flag_with_garbage_is_rejected():
    text = "Люди с чистой совестью, повесть"
    payload = marc(df("245", "10", "a", text), leader=UTF8_LEADER).as_marc()
    garbage = bytes((0x80 + (i * 37) % 0x7F) for i in range(len(text.encode("utf-8"))))   # no code page reads it
    payload = payload.replace(text.encode("utf-8"), garbage)
    message = reason(payload)
    assert message.startswith("character set unknown") and "leader/09 'a'" in message


def test_russian_in_one_8bit_code_page_is_read_with_a_warning():
    text = "Люди с чистой совестью, повесть"
    payload = marc(df("245", "10", "a", text), leader=UTF8_LEADER).as_marc()
    payload = payload.replace(text.encode("utf-8"), text.encode("cp866").ljust(len(text.encode("utf-8")), b" "))
    rec = normalise(raw(payload))
    assert rec.title == text
    assert rec.warnings[-1].startswith("fields 245 read as CP866")


def test_unknown_coding_scheme_is_warned():
    payload = marc(leader=UTF8_LEADER).as_marc()
    rec = normalise(raw(payload[:9] + b"0" + payload[10:]))
    assert rec.title == "A title"
    assert rec.warnings == ["leader/09 '0' is not a MARC 21 character coding scheme; read as UTF-8"]


# --- broken ISO 2709 ------------------------------------------------------------

GOOD = marc().as_marc()


def _patch(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new):]


@pytest.mark.parametrize("payload, expected", [
    (b"0012", "shorter than the 24-byte leader"),
    (_patch(GOOD, 0, b"00x12"), "record length '00x12' is not a number"),
    (_patch(GOOD, 12, b"000ab"), "base address '000ab' is not a number"),
    (_patch(GOOD, 12, b"99999"), "base address 99999 is outside the record"),
    (_patch(GOOD, 12, b"00010"), "base address 10 is outside the record"),
    (_patch(GOOD, 12, str(int(GOOD[12:17]) - 1).zfill(5).encode()), "no field terminator before base address"),
    (_patch(GOOD, 24 + 3, b"00x1"), "directory entry 1 '00100x100000' has a non-numeric length or offset"),
    (_patch(GOOD, 24 + 12 + 3, b"9999"), "directory entry 2 (008) points past the end of the record"),
    (GOOD[:len(GOOD) // 2], "directory entry 1 (001) points past the end of the record"),
    (b"00026nam a2200025 a 4500\x1e\x1d", "the directory lists no fields"),
])
def test_broken_iso2709_is_rejected_with_a_precise_reason(payload, expected):
    assert expected in reason(payload)


def test_directory_not_a_multiple_of_12():
    base = int(GOOD[12:17])
    payload = _patch(GOOD, 12, str(base + 1).zfill(5).encode())
    payload = payload[:base - 1] + b"0" + payload[base - 1:]       # one stray byte before the terminator
    assert "not a multiple of 12" in reason(payload)


def test_truncated_record():
    cut = GOOD[:-30]
    assert "points past the end of the record" in reason(cut)


def test_repairable_leader_problems_are_warnings():
    rec = normalise(raw(_patch(GOOD, 22, b"\x92")))
    assert rec.title == "A title" and "non-ASCII bytes in the leader" in rec.warnings[0]
    rec = normalise(raw(_patch(GOOD, 0, b"00001")))
    assert rec.warnings == [f"leader record length 1 differs from the {len(GOOD)} bytes received"]
    assert normalise(raw(b"\r\n" + GOOD + b"\r\n")).warnings == []


def test_empty_payload():
    assert reason(b"") == "empty payload"


# --- UNIMARC and dispatch ------------------------------------------------------------

def unimarc_record() -> MarcRecord:
    rec = MarcRecord(leader="00000nam  2200000   4500", to_unicode=False)
    rec.add_field(cf("001", "FRBNF123"),
                  df("100", "  ", "a", "20020123d1999    k  y0frea0103    ba"),
                  df("200", "1 ", "a", "Le titre", "f", "Jean Dupont"),
                  df("700", " 1", "a", "Dupont", "b", "Jean"))
    return rec


def test_unimarc_declared_as_marc21_is_rejected_with_the_evidence():
    message = reason(unimarc_record().as_marc(), fmt="marc21")
    assert message.startswith("record declared MARC 21 looks like UNIMARC")
    assert "title in 200 and no 245" in message and "100 $a is UNIMARC general processing data" in message
    assert "declare format unimarc, cnmarc or auto" in message


def test_unimarc_with_format_auto_is_detected_and_read():
    rec = normalise(raw(unimarc_record().as_marc(), fmt="auto"))
    assert (rec.title, rec.record_format, rec.year) == ("Le titre", "unimarc", 1999)
    assert rec.contributors[0].name == "Dupont, Jean" and rec.responsibility == "Jean Dupont"


def test_unimarc_in_marcxml_is_detected():
    rec = normalise(raw(record_to_xml(unimarc_record(), namespace=True), "marcxml", "auto"))
    assert rec.title == "Le titre" and rec.record_format == "unimarc"
    assert "looks like UNIMARC" in reason(record_to_xml(unimarc_record(), namespace=True), "marcxml")


def test_cnmarc_in_gb2312_is_recognised_before_the_character_set_is_judged():
    rec = unimarc_record()
    rec["200"]["a"] = "\u00e0" * 12      # placeholder bytes, swapped for GB2312 below
    payload = rec.as_marc().replace(b"\xe0" * 12, "中国历史文献".encode("gb2312"))
    assert "looks like UNIMARC" in reason(payload)
    assert normalise(raw(payload, fmt="auto")).title == "中国历史文献"


@pytest.mark.parametrize("fmt", ["unimarc", "cnmarc", "UNIMARC"])
def test_declared_unimarc_is_read(fmt):
    rec = normalise(raw(unimarc_record().as_marc(), fmt=fmt))
    assert rec.title == "Le titre"
    assert rec.record_format == ("cnmarc" if fmt == "cnmarc" else "unimarc")


@pytest.mark.parametrize("fmt", ["unimarc", "cnmarc"])
def test_marc21_declared_as_unimarc_is_rejected_with_the_evidence(fmt):
    assert "looks like MARC 21 (title in 245 and no 200)" in reason(GOOD, fmt=fmt)


def test_unsupported_formats_and_syntaxes():
    assert "not supported" in reason(GOOD, fmt="mods")
    assert "expected 'xml'" in reason(GOOD, fmt="oai_dc")
    assert "not supported" in reason(b"<record/>", "xml", "mods")


def test_marcxml_in_generic_xml_syntax_with_auto_format():
    payload = record_to_xml(marc(df("245", "00", "a", "Auto")), namespace=True)
    assert normalise(raw(payload, "xml", "auto")).title == "Auto"


# --- holdings -------------------------------------------------------------------

_DATA = ("library", "location", "call_number", "barcode", "status", "volume", "note")


@pytest.mark.parametrize("name", sorted(HOLDINGS_PRESETS))
def test_each_holdings_preset(name):
    mapping = HOLDINGS_PRESETS[name]
    codes = [c for datum in _DATA for c in getattr(mapping, datum)]
    assert len(codes) == len(set(codes)), "a preset uses one code for two data"
    subfields = [x for datum in _DATA for c in getattr(mapping, datum) for x in (c, f"{datum}-{c}")]
    rec = norm(marc(df(mapping.tag, "  ", *subfields), df(mapping.tag, "  ", *subfields),
                    df(mapping.tag, "  ", "8", "1.1")),          # no mapped datum: skipped
               holdings=[mapping])
    expected = {datum: " ".join(f"{datum}-{c}" for c in getattr(mapping, datum)) for datum in _DATA}
    assert rec.holdings == [Holding(source="member", local_id="42", **expected)] * 2


def test_koha_status_map_and_multiple_codes():
    koha = HOLDINGS_PRESETS["koha952"]
    rec = norm(marc(df("952", "  ", "a", "MAIN", "c", "STACKS", "o", "QA76 .L88", "p", "3900001", "7", "0"),
                    df("952", "  ", "a", "BRANCH", "p", "3900002", "7", "1", "h", "v.  2"),
                    df("952", "  ", "a", "BRANCH", "p", "3900003", "7", "-1")),
               holdings=[koha])
    assert [(h.library, h.barcode, h.status, h.volume) for h in rec.holdings] == [
        ("MAIN", "3900001", "available", ""), ("BRANCH", "3900002", "not for loan", "v. 2"),
        ("BRANCH", "3900003", "-1", "")]
    folio = HOLDINGS_PRESETS["folio952"]
    rec = norm(marc(df("952", "  ", "c", "Lib", "f", "REF", "e", "QA76", "g", "c.2", "m", "b1")), holdings=[folio])
    assert rec.holdings[0].call_number == "REF QA76 c.2"


def test_holdings_with_several_mappings_and_duck_typed_mapping():
    duck = SimpleNamespace(tag="999", library=("m",), location=(), call_number=("a",), barcode=("i",),
                           status=("k",), note=(), volume=(), status_map={"CHECKEDOUT": "on loan"})
    rec = norm(marc(df("999", "  ", "a", "PS3545 .H16", "i", "X1", "m", "ALDERMAN", "k", "CHECKEDOUT"),
                    df("852", "  ", "b", "LAW", "h", "KF", "i", ".B3")),
               holdings=[duck, HOLDINGS_PRESETS["marc852"]])
    assert [(h.library, h.call_number, h.status) for h in rec.holdings] == [
        ("ALDERMAN", "PS3545 .H16", "on loan"), ("LAW", "KF .B3", "")]
    assert norm(marc(df("999", "  ", "a", "x"))).holdings == []      # no mappings, no holdings


# --- the hot-path field builder ------------------------------------------------------

def test_fast_field_equals_pymarc_field():
    subfields = [Subfield("a", "x"), Subfield("b", "y")]
    fast = data_field("245", Indicators("1", "0"), subfields)
    slow = Field("245", Indicators("1", "0"), subfields)
    assert (fast.tag, fast.indicators, fast.subfields, fast.data, fast.control_field) == \
        (slow.tag, slow.indicators, slow.subfields, slow.data, slow.control_field)
    assert fast.indicator2 == "0" and fast["a"] == "x" and fast.value() == slow.value()
    assert fast.as_marc("utf-8") == slow.as_marc("utf-8")
    fast, slow = control_field("008", "800108s1899"), Field("008", data="800108s1899")
    assert (fast.tag, fast.indicators, fast.subfields, fast.data, fast.control_field) == \
        (slow.tag, slow.indicators, slow.subfields, slow.data, slow.control_field)
    assert fast.value() == slow.value() and fast.as_marc("utf-8") == slow.as_marc("utf-8")


@pytest.mark.parametrize("tag", ["245", "00A", "005", "000", "1", "2451", "x", "\u0661\u0662\u0663", " 245 ", ""])
@pytest.mark.parametrize("element", ["datafield", "controlfield"])
def test_marcxml_fields_are_the_fields_pymarc_builds(tag, element):
    """MARCXML builds plain tags' fields without ``Field.__init__``; any other tag still goes through it."""
    from normaliser import marcxml
    body = ('<subfield code="a">x</subfield><subfield code="b">y</subfield>' if element == "datafield" else "d")
    xml = (f'<record><leader>00000nam a2200000 a 4500</leader><{element} tag="{tag}" ind1="1" ind2="0">'
           f'{body}</{element}></record>').encode()
    got = marcxml.parse(xml)[0].fields[0]
    if element == "datafield":
        want = Field(tag.strip(), Indicators("1", "0"), [Subfield("a", "x"), Subfield("b", "y")])
    else:
        want = Field(tag.strip(), data="d")
    assert (got.tag, got.indicators, got.subfields, got.data, got.control_field) == \
        (want.tag, want.indicators, want.subfields, want.data, want.control_field)


def test_characters_xml_cannot_carry_are_counted_in_the_quality_report():
    """Issue 19 item 8: the replacement every MARCXML path makes is counted per member, under one category."""
    from normaliser.quality import XML_UNSAFE, quality_report
    damaged = marc(Field("245", Indicators("\x01", "0"), [Subfield("a", "A title")]),
                   df("650", " 0", "a", "Cats\x01"), title=False)
    clean = norm(marc())
    rec = norm(damaged)
    assert rec.title.startswith("A title")
    [warning] = [w for w in rec.warnings if XML_UNSAFE in w]
    assert "245" in warning and "650" in warning
    report = quality_report([rec, clean])["member"]
    assert report.with_repairs == 1 and report.repairs == {XML_UNSAFE: 1}
