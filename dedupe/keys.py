"""Match keys: the exact, explainable reasons two member records are one edition.

Every key starts with the record's format, so a print book and its e-book
never share a key and are never merged.  Keys are strings so they can be
stored, counted and shown to a librarian ("merged because isbn:book:978…").
"""
from __future__ import annotations

import re

from normaliser.model import Record
from normaliser.text import match_key

_SURNAME_SPLIT = re.compile(r"[,，]")
SIGNATURE = "sig:"
#: Key kinds that only hold when the records' signatures do not conflict.
WEAK_KINDS = ("title:",)


def author_key(record: Record) -> str:
    """The first author's surname (or a whole CJK name, or an organisation), folded."""
    name = record.main_author
    if not name:
        return ""
    head = _SURNAME_SPLIT.split(name, 1)[0]
    return match_key(head)


def title_key(record: Record) -> str:
    """Normalised title including subtitle and part: volumes of a set stay apart."""
    language = record.languages[0] if record.languages else None
    return match_key(record.full_title, language=language)


def match_keys(record: Record) -> list[str]:
    """All keys of a record, most specific first.

    * ``isbn:{format}:{isbn13}`` — every valid ISBN;
    * ``oclc:{format}:{number}``;
    * ``issn:{format}:{issn}:{title}`` — an ISSN alone is shared by every
      issue and supplement of a serial, so it needs the title beside it;
    * ``title:{format}:{title}|{author}|{year}`` — only when title and year
      are known (a bare title would merge every "Annual report");
    * ``sig:oclc:{number}`` — not a match key but the record's signature:
      two records whose OCLC numbers are both known and differ are different
      manifestations, so a title key never joins them (1900 "Ivanhoe"s from
      different publishers share title, author and year).
    """
    fmt = record.format or "other"
    keys = [f"isbn:{fmt}:{i}" for i in dict.fromkeys(record.isbns)]
    keys += [f"oclc:{fmt}:{n}" for n in dict.fromkeys(record.oclc_numbers)]
    title = title_key(record)
    if title:
        keys += [f"issn:{fmt}:{i}:{title}" for i in dict.fromkeys(record.issns)]
        if record.year:
            keys.append(f"title:{fmt}:{title}|{author_key(record)}|{record.year}")
    keys += [f"{SIGNATURE}oclc:{n}" for n in dict.fromkeys(record.oclc_numbers)]
    return keys
