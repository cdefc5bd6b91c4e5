"""``quality.texts_xml_safe`` clears a record from its decoded texts only where the field-by-field check would.

The ISO 2709 readers (MARC 21 and UNIMARC) hand the normaliser each field's tag and decoded text; one
regex over them replaces ``all_xml_safe``'s walk over the pymarc fields.  It may only say "fine" where
``xml_unsafe_warning`` finds nothing: these are the ways it could be fooled (a separator inside a part, an
indicator tail, empty subfields, 00X tags) and a random sweep against the slow check.
"""
from __future__ import annotations

import random

import pytest
from pymarc import Record as MarcRecord

from normaliser import iso2709
from normaliser.iso2709 import decoded_field
from normaliser.quality import texts_xml_safe, xml_unsafe_warning


def _record(texts: list[str]) -> MarcRecord:
    rec = MarcRecord()
    rec.fields = [decoded_field(tag, text) for tag, text in zip(texts[::2], texts[1::2])]
    return rec


def _agrees(texts: list[str]) -> bool:
    """The fast answer never clears what the slow check flags."""
    return not texts_xml_safe(texts) or xml_unsafe_warning(_record(texts)) is None


@pytest.mark.parametrize("texts", [
    ["001", "x1", "245", "10\x1faTitle /\x1fcMe \u00e9.", "500", "  "],
    ["001", "x1", "245", "", "246", "1", "650", " 0\x1f\x1faX\x1f"],       # short and empty indicators, empty $
    ["245", "10junk\x01\x1faX"],                                             # the indicator tail is dropped
])
def test_clean_texts_are_cleared(texts):
    assert texts_xml_safe(texts) and xml_unsafe_warning(_record(texts)) is None


@pytest.mark.parametrize("texts", [
    ["000", "  \x1fax"],                      # a data field under a control field's tag
    ["008", "x\x1fy"],                       # a subfield delimiter in control data
    ["008", "x\x02"],
    ["245", "\x01 \x1fax"],
    ["245", " \x01\x1fax"],
    ["245", "  \x1f ax"],                    # a blank code
    ["245", "  \x1f\x01x"],
    ["245", "  \x1fax\x0b"],
    ["245", "  \x1fa\ufffe"],
    ["245", "  \x1fa\ud800"],
    ["2\u00e95", "  \x1fax"],
    ["24\x01", "  \x1fax"],
    ["245", "  \x1fax\x1e246\x1e  \x1fay"],  # separators inside a text: one field can not pass as two
    ["245\x1e", "  \x1fax"],
    ["24", "5  \x1fax"],                     # parts must keep their lengths
])
def test_anything_the_slow_check_flags_is_never_cleared(texts):
    assert not texts_xml_safe(texts)
    assert _agrees(texts)


def test_a_random_sweep_agrees_with_the_slow_check():
    rng = random.Random(27)
    alphabet = ["a", "0", "1", " ", "\x1f", "\x1e", "\x01", "\t", "\x0b", "\u00e9", "\ufffe", "中", "~", "\x7f"]
    tags = ["001", "008", "000", "00A", "245", "880", "24\x01", "2 5", "\x1e45"]
    cleared = 0
    for _ in range(5000):
        texts = []
        for _ in range(rng.randint(1, 4)):
            texts += rng.choice(tags), "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
        assert _agrees(texts), texts
        cleared += texts_xml_safe(texts)
    assert cleared > 100           # the sweep does reach the fast path


def test_decode_hands_over_the_texts_it_built_the_fields_from():
    body = [("001", b"x1"), ("245", b"10\x1faTitle\x1fcMe"), ("500", b"  \x1fanote")]
    directory, data, offset = b"", b"", 0
    for tag, value in body:
        field = value + b"\x1e"
        directory += tag.encode() + b"%04d%05d" % (len(field), offset)
        data += field
        offset += len(field)
    base = 24 + len(directory) + 1
    payload = b"%05dnam a22%05d a 4500" % (base + len(data) + 1, base) + directory + b"\x1e" + data + b"\x1d"
    texts: list[str] = []
    marc, _ = iso2709.decode(*iso2709.read_directory(payload), texts)
    assert texts == ["001", "x1", "245", "10\x1faTitle\x1fcMe", "500", "  \x1fanote"]
    assert [f.tag for f in marc.fields] == texts[::2] and texts_xml_safe(texts)
