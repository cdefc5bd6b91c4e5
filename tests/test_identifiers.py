"""normaliser.identifiers: the canonical forms every stage agrees on."""
from __future__ import annotations

import pytest

from normaliser.identifiers import isbn13, issn, lccn, oclc_number, split_isbn


@pytest.mark.parametrize("given, expected", [
    ("0-306-40615-2", "9780306406157"),
    ("0306406152", "9780306406157"),
    ("978-0-306-40615-7", "9780306406157"),
    ("978 0 306 40615 7", "9780306406157"),
    ("9780306406157", "9780306406157"),
    ("ISBN 0-8044-2957-x", "9780804429573"),
    ("080442957X", "9780804429573"),
    ("979-10-90636-07-1", "9791090636071"),
    ("0-306-40615-3", None),          # bad check digit
    ("978-0-306-40615-8", None),
    ("123456789", None),              # 9 digits: not accepted
    ("12345678901234", None),
    ("", None),
    (None, None),
    ("abcdefghij", None),
])
def test_isbn13(given, expected):
    assert isbn13(given) == expected


@pytest.mark.parametrize("given, expected", [
    ("0306406152 (pbk.)", ("9780306406157", "0306406152")),
    ("978-0-306-40615-7 : £9.99", ("9780306406157", "978-0-306-40615-7")),
    ("0306406153 (v. 1)", (None, "0306406153")),
    ("(pbk.)", (None, "(pbk.)")),
    ("  ", (None, "")),
])
def test_split_isbn(given, expected):
    assert split_isbn(given) == expected


@pytest.mark.parametrize("given, expected", [
    ("0024-9319", "0024-9319"),
    ("00249319", "0024-9319"),
    ("0317-8471 (Print)", "0317-8471"),
    ("ISSN 2434-561x", "2434-561X"),
    ("0024-9318", None),
    ("1234", None),
    ("", None),
])
def test_issn(given, expected):
    assert issn(given) == expected


@pytest.mark.parametrize("given, expected", [
    ("(OCoLC)ocm00012345", "12345"),
    ("(OCoLC)ocn123456789", "123456789"),
    ("(OCoLC)on1234567890", "1234567890"),
    ("(OCoLC)0012345", "12345"),
    ("(OCoLC) 12345", "12345"),
    ("(ocolc)12345", "12345"),
    ("(DLC)   00012345", None),
    ("(OCoLC)0000", None),
    ("12345", None),
])
def test_oclc_number(given, expected):
    assert oclc_number(given) == expected


def test_oclc_number_from_001():
    assert oclc_number("ocm00012345", prefixed=False) == "12345"
    assert oclc_number("on1234567890 ", prefixed=False) == "1234567890"
    assert oclc_number("00054321", prefixed=False) == "54321"
    assert oclc_number("abc123", prefixed=False) is None


@pytest.mark.parametrize("given, expected", [   # examples from https://www.loc.gov/marc/lccn-namespace.html
    ("n78-890351", "n78890351"),
    ("n78-89035", "n78089035"),
    ("n 78890351 ", "n78890351"),
    (" 85000002 ", "85000002"),
    ("85-2 ", "85000002"),
    ("2001-000002", "2001000002"),
    ("75-425165//r75", "75425165"),
    (" 79139101 /AC/r932", "79139101"),
    ("   00000002 ", "00000002"),
    ("sh 85000002", "sh85000002"),
    ("n78-1234567", None),            # serial longer than six digits
    ("abcd", None),
    ("", None),
])
def test_lccn(given, expected):
    assert lccn(given) == expected
