"""A cluster becomes one search document: what result lists and facets need.

Pure: no I/O, no engine types.  Every backend indexes exactly this dict, and
``SearchBackend.get`` gives it back unchanged, so the web app can render a
result row (and its holdings) without touching the database.

Keys:

``id``, ``title`` (full title), ``title_alt`` (880 and other-script titles),
``title_sort``, ``author`` (main author), ``authors`` (main first, then every
other contributor), ``responsibility``, ``year``, ``format``, ``languages``,
``subjects``, ``isbns`` (ISBN-13 and the derived ISBN-10), ``invalid_isbns``,
``issns``, ``publisher``, ``place``, ``edition``, ``series``,
``classifications`` ([{scheme, value}]), ``holdings`` ([{source, library,
region, call_number, location, status, local_id}]), ``call_numbers`` (every
copy's call number, for the call-number search), ``class_tops`` (the top level
of each classification, ``"CLC I"``, ``"LCC PL"``, ``"DDC 300"``: the
classification facet), ``libraries`` (member
source ids: the library facet), ``regions``, ``library_count``, ``all``
(every searchable word in one text), ``pinyin`` (toneless pinyin syllables of
the Han characters in titles and names, plus the cataloguer's pinyin: for
readers who type ``hong lou meng``; never used for matching records), ``work_key`` (dedupe's key of the
work: its editions and formats are grouped in result lists).
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from dedupe.model import Cluster
from normaliser.model import Record
from normaliser.text import clean, has_han, pinyin, pinyin_sort_text

from .querytext import isbn_forms, strip_accents

_TITLE_TAGS = ("245", "246", "240", "130", "490", "830")
_NAME_TAGS = ("100", "110", "111", "700", "710", "711")
_LEADING = re.compile(r"^[\W_]+", re.UNICODE)
_ISBN_SPACING = re.compile(r"[\s-]")


def to_document(cluster: Cluster, libraries: Mapping[str, tuple[str, str]]) -> dict:
    """The search document for ``cluster``; ``libraries`` maps source id → (display name, region)."""
    rec = cluster.record
    holdings = holdings_of(cluster, libraries)
    sources = list(dict.fromkeys(h["source"] for h in holdings))
    regions = [r for r in dict.fromkeys(h["region"] for h in holdings) if r]
    isbns = list(dict.fromkeys(form for i in rec.isbns for form in isbn_forms(i)))
    invalid = list(dict.fromkeys(_ISBN_SPACING.sub("", i).upper() for i in rec.invalid_isbns if i.strip()))
    authors = _authors(rec)
    title_alt = [p.text for p in rec.parallel if p.tag in _TITLE_TAGS and p.text]
    doc = {
        "id": cluster.id,
        "title": rec.full_title,
        "title_alt": title_alt,
        "title_original": original_title(rec),
        "title_sort": sort_key(rec.full_title or (title_alt[0] if title_alt else "")),
        "author": authors[0] if authors else "",
        "authors": authors,
        "responsibility": rec.responsibility,
        "year": rec.year,
        "format": rec.format or "other",
        "languages": list(dict.fromkeys(rec.languages)),
        "subjects": list(dict.fromkeys(s for s in rec.subjects if s)),
        # the facet offers main headings ("China -- History -- 1949-" → "China"): readers choose
        # among a few hundred headings, not a hundred thousand strings
        "subject_headings": list(dict.fromkeys(s.split(" -- ")[0].strip() for s in rec.subjects if s)),
        "isbns": isbns,
        "invalid_isbns": invalid,
        "issns": list(dict.fromkeys(rec.issns)),
        "publisher": rec.publisher,
        "place": rec.place,
        "edition": rec.edition,
        "series": list(rec.series),
        "classifications": [{"scheme": c.scheme, "value": c.value} for c in rec.classifications],
        "class_tops": list(dict.fromkeys(t for c in rec.classifications if (t := class_top(c.scheme, c.value)))),
        "call_numbers": list(dict.fromkeys(h["call_number"] for h in holdings if h["call_number"])),
        "holdings": holdings,
        "libraries": sources,
        "regions": regions,
        "library_count": len(sources),
        # dedupe's work key: the editions and formats of one work, grouped in result lists
        "work_key": cluster.work_key or "",
    }
    doc["all"] = _all_text(rec, doc)
    doc["pinyin"] = _pinyin_text(rec, doc)
    return doc


def _pinyin_text(rec: Record, doc: dict) -> str:
    parts = [pinyin(t) for t in [doc["title"], *doc["title_alt"], *getattr(rec, "other_titles", []), *doc["authors"]]
             if has_han(t)]
    if getattr(rec, "title_pinyin", ""):
        parts.append(rec.title_pinyin.casefold())
    return "\n".join(dict.fromkeys(p for p in parts if p))


def original_title(rec: Record) -> str:
    """The title proper in its own script (the 880 paired with 245), without the statement of responsibility."""
    text = next((p.text for p in rec.parallel if p.tag == "245" and p.text), "")
    return clean(text.split(" / ")[0]) if text else ""


_CLASS_LETTERS = re.compile(r"^\s*([A-Za-z]+)")
_CLASS_DIGITS = re.compile(r"^\s*(\d)")


def class_top(scheme: str, value: str) -> str:
    """The top level of a class number, prefixed by its scheme: what the classification facet offers.

    CLC (中图法) and LCC: the leading letters (CLC's main class is one letter, except T's
    two-letter industrial classes, ``TP``); DDC and UDC: the first digit's hundred/main class.
    """
    scheme = (scheme or "other").lower()
    if scheme in ("clc", "lcc"):
        match = _CLASS_LETTERS.match(value or "")
        if not match:
            return ""
        letters = match.group(1).upper()
        top = (letters[:2] if letters.startswith("T") else letters[:1]) if scheme == "clc" else letters
        return f"{scheme.upper()} {top}"
    match = _CLASS_DIGITS.match(value or "")
    if not match:
        return ""
    return f"{scheme.upper()} {match.group(1)}00" if scheme == "ddc" else f"{scheme.upper()} {match.group(1)}"


def sort_key(title: str) -> str:
    """Case- and accent-insensitive title key, leading punctuation dropped (``"[The] …"`` → ``the] …``).

    Han characters sort by their toneless pinyin (红楼梦 → ``hong lou meng``), so Chinese titles
    interleave with Latin ones alphabetically as readers in China expect.
    """
    text = strip_accents(pinyin_sort_text(title) if has_han(title) else title)
    return _LEADING.sub("", text).casefold()[:200]


def _authors(rec: Record) -> list[str]:
    names = []
    main = rec.main_author
    if main:
        names.append(main)
    names.extend(c.name for c in rec.contributors if c.name)
    names.extend(p.text for p in rec.parallel if p.tag in _NAME_TAGS and p.text)
    return list(dict.fromkeys(names))


def holdings_of(cluster: Cluster, libraries: Mapping[str, tuple[str, str]]) -> list[dict]:
    """Every copy, grouped by member in the order members joined; a member whose
    record carried no holdings fields still holds the item (one row, its record id)."""
    first_local: dict[str, str] = {}     # in the order members joined: ``cluster.sources``
    for source, local_id in cluster.members:
        first_local.setdefault(source, local_id)
    # the members' sources, then any other source of the holdings as it first comes (one pass, no list copies)
    by_source: dict[str, list[dict]] = {s: [] for s in first_local}
    for h in cluster.record.holdings:
        by_source.setdefault(h.source, []).append(
            _holding(h.source, libraries, local_id=h.local_id or first_local.get(h.source, ""),
                     call_number=h.call_number, location=h.location, status=h.status, branch=h.library,
                     volume=h.volume))
    for source, rows in by_source.items():
        if not rows:
            rows.append(_holding(source, libraries, local_id=first_local.get(source, "")))
    return [h for rows in by_source.values() for h in rows]


def _holding(source: str, libraries: Mapping[str, tuple[str, str]], local_id: str = "", call_number: str = "",
             location: str = "", status: str = "", branch: str = "", volume: str = "") -> dict:
    """One row of :func:`holdings_of`: written out, not a template updated from keyword arguments (3.3 copies a
    document; the template, its update and comprehension were a third of the holdings' cost)."""
    name, region = libraries.get(source, (source, ""))
    return {"source": source, "library": name, "region": region, "call_number": call_number or "",
            "location": location or "", "status": status or "", "local_id": local_id or "", "branch": branch or "",
            "volume": volume or ""}


def _all_text(rec: Record, doc: dict) -> str:
    parts: list[str] = [doc["title"], *doc["title_alt"], *doc["authors"], rec.responsibility, rec.edition,
                        rec.publisher, rec.place, *doc["subjects"], *rec.series, rec.summary, *rec.notes,
                        *doc["isbns"], *doc["invalid_isbns"], *doc["issns"], *getattr(rec, "invalid_issns", []),
                        *rec.oclc_numbers, *rec.lccns,
                        *(c.value for c in rec.classifications), rec.control_number,
                        *(p.text for p in rec.parallel if p.text), *getattr(rec, "other_titles", []),
                        *rec.other_ids]
    if rec.year:
        parts.append(str(rec.year))
    return "\n".join(dict.fromkeys(p for p in parts if p))
