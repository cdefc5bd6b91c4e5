"""The normaliser's fast paths answer exactly as the slow checks they stand in front of (issue 14).

``quality.all_xml_safe`` clears a record before the field-by-field XML check of
``xml_unsafe_warning`` runs; ``identifiers._plain_isbn13`` checks a plain ISBN without stdnum.
Each may only say "fine" where the slow path would: these cases are the ways a shortcut could
be fooled (parts that trade characters, wrong types) and a sweep of numbers against stdnum.
"""
from __future__ import annotations

import random

import pytest
from pymarc import Field, Indicators, Record as MarcRecord, Subfield
from stdnum import isbn as stdnum_isbn
from stdnum.exceptions import ValidationError

from normaliser.identifiers import _plain_isbn13, isbn13
from normaliser.quality import XML_UNSAFE, all_xml_safe, xml_unsafe_warning


def record(*fields: Field) -> MarcRecord:
    rec = MarcRecord()
    rec.fields = [Field("001", data="x1"), *fields]
    return rec


def data_field(tag, ind1=" ", ind2=" ", *subfields: tuple) -> Field:
    field = Field("245", Indicators(" ", " "), [Subfield(c, v) for c, v in subfields])
    field.tag = tag
    field._indicators = Indicators(ind1, ind2)     # as a damaged record can leave them: any length
    return field


def control_field(tag: str, data: str = "x") -> Field:
    field = Field("001", data=data)
    field.tag = tag                                # as a damaged record can leave it: any length
    return field


def test_a_clean_record_is_cleared_by_the_fast_check():
    rec = record(data_field("245", "1", "0", ("a", "Title /"), ("c", "Me \u00e9.")), data_field("500"))
    assert all_xml_safe(rec) and xml_unsafe_warning(rec) is None


@pytest.mark.parametrize("field", [
    data_field("24", "5 ", " ", ("a", "x")),         # a short tag and a long indicator: 5 characters all the same
    data_field("245", "", "  ", ("a", "x")),
    data_field("245", " ", " ", ("", "x"), ("ab", "y")),   # codes of 0 and 2 characters: 2 in all
    data_field("245", "\x01", " ", ("a", "x")),
    data_field("245", " ", " ", (" ", "x")),
    data_field("001", " ", " ", ("a", "x")),          # a data field under a control field's tag
    data_field("2\u00e95", " ", " ", ("a", "x")),
    data_field("245", " ", " ", ("a", "x\x0b")),
    data_field("245", " ", " ", ("a", "\ufffe")),
    Field("00\x01", data="x"),
    Field("008", data="x\x02"),
    # the heads are checked joined by \x01, control tags marked by \x02: no tag may pass as two heads
    data_field("245\x01246"),
    control_field("001\x01245\x00 \x00 "),
    control_field("\x02ab"),
    data_field("\x02001", " ", " ", ("a", "x")),
])
def test_anything_the_slow_check_flags_is_never_cleared(field):
    rec = record(field)
    assert not all_xml_safe(rec)
    assert XML_UNSAFE in (xml_unsafe_warning(rec) or "")


@pytest.mark.parametrize("field", [
    data_field("245", None, " ", ("a", "x")),
    data_field("245", " ", " ", ("a", None)),
])
def test_values_of_other_types_are_left_to_the_slow_check(field):
    rec = record(field)
    assert not all_xml_safe(rec)
    slow_says = xml_unsafe_warning(rec)       # whatever it answers, the fast check did not answer for it
    assert slow_says is None or XML_UNSAFE in slow_says


def _stdnum(digits: str) -> str | None:
    try:
        return stdnum_isbn.validate(digits, convert=True)
    except ValidationError:
        return None


def test_plain_isbns_are_judged_as_stdnum_judges_them():
    rnd = random.Random(14)
    valid = 0
    for _ in range(20000):
        size = rnd.choice((10, 13))
        digits = "".join(rnd.choice("0123456789") for _ in range(size - 1))
        digits += rnd.choice("0123456789X" if size == 10 else "0123456789")
        if size == 13 and rnd.random() < 0.8:
            digits = rnd.choice(("978", "979", "977")) + digits[3:]
        expected = _stdnum(digits)
        valid += expected is not None
        assert _plain_isbn13(digits) == expected, digits
    assert valid > 1000       # the sweep reached both answers


@pytest.mark.parametrize("given", ["0-306-40615-2", "978 0 306 40615 7", "030640615x", "０３０６４０６１５２",
                                   "0306406152\u2013", "979-10-90636-07-1", "9770306406156"])
def test_isbn13_agrees_with_stdnum_on_numbers_fast_and_slow(given):
    digits = given.replace("-", "").replace(" ", "").upper()
    assert isbn13(given) == (_stdnum(digits) if len(digits) in (10, 13) else None)
