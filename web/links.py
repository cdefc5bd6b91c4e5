"""Links out of the catalogue: ILL requests (OpenURL), ask a librarian, sign-on.

Pure functions of a record and the URLs in ``sources.yaml``: no Flask, no
request, so they are easy to test and to reuse in exports.

The ILL link is an OpenURL 1.0 (ANSI/NISO Z39.88-2004) KEV ContextObject:
``url_ver``/``ctx_ver`` name the standard, ``rft_val_fmt`` the metadata format
(book, or journal for serials), ``rft.*`` the referent's description and
``rft_id`` its identifiers (our permalink, ``urn:ISBN:…``, ``info:oclcnum/…``,
``info:lccn/…``).  The consortium's ``ill_params`` (``rfr_id``, ``sid``, a
service code) are added last and win over anything built here.
"""
from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from normaliser.model import Record

KEV_BOOK = "info:ofi/fmt:kev:mtx:book"
KEV_JOURNAL = "info:ofi/fmt:kev:mtx:journal"
SERIAL_FORMATS = ("serial", "eserial")
#: placeholders a ``login_url`` may use for the return URL; without one, ``RETURN_PARAM`` is appended.
RETURN_PLACEHOLDERS = ("{return}", "{return_url}")
RETURN_PARAM = "target"


def openurl_pairs(record: Record, rft_id: str | None = None, extra: Mapping[str, str] | None = None,
                  volume: str = "", year: int | None = None) -> list[tuple[str, str]]:
    """The KEV key/value pairs describing ``record``, in a stable order; empty values left out.

    For a serial, ``volume`` and ``year`` name the issue wanted (``rft.volume``, and ``rft.date`` is that
    year rather than the first year of the journal); a book ignores them.
    """
    serial = record.format in SERIAL_FORMATS
    pairs: list[tuple[str, str]] = [
        ("url_ver", "Z39.88-2004"), ("ctx_ver", "Z39.88-2004"), ("ctx_enc", "info:ofi/enc:UTF-8"),
    ]
    if serial:
        pairs += [("rft_val_fmt", KEV_JOURNAL), ("rft.genre", "journal"), ("rft.jtitle", record.full_title)]
        pairs += [("rft.issn", issn) for issn in record.issns[:1]]
    else:
        pairs += [("rft_val_fmt", KEV_BOOK), ("rft.genre", "book"), ("rft.btitle", record.full_title)]
        pairs += [("rft.isbn", isbn) for isbn in record.isbns[:1]]
    date = str(year) if serial and year else str(record.year) if record.year else ""
    pairs += [("rft.volume", volume if serial else "")]
    pairs += [("rft.au", record.main_author), ("rft.date", date),
              ("rft.pub", record.publisher), ("rft.place", record.place), ("rft.edition", record.edition)]
    pairs += [("rft.series", s) for s in record.series[:1]]
    ids = [rft_id] if rft_id else []
    ids += [f"urn:ISBN:{i}" for i in record.isbns[:1]]
    ids += [f"urn:ISSN:{i}" for i in record.issns[:1]]
    ids += [f"info:oclcnum/{n}" for n in record.oclc_numbers[:1]]
    ids += [f"info:lccn/{n}" for n in record.lccns[:1]]
    pairs += [("rft_id", i) for i in ids]
    pairs = [(k, v) for k, v in pairs if v]
    if extra:
        pairs = [(k, v) for k, v in pairs if k not in extra] + [(str(k), str(v)) for k, v in extra.items()]
    return pairs


def openurl(base_url: str, record: Record, rft_id: str | None = None,
            extra: Mapping[str, str] | None = None, volume: str = "", year: int | None = None) -> str:
    """``base_url`` with the record's ContextObject as its query (appended to any query it has)."""
    return _append_query(base_url, urlencode(openurl_pairs(record, rft_id, extra, volume, year), quote_via=quote))


def ill_url(record: Record, consortium_ill_url: str | None, source_ill_url: str | None = None,
            rft_id: str | None = None, params: Mapping[str, str] | None = None,
            volume: str = "", year: int | None = None) -> str | None:
    """The ILL request link: a member's own ILL service when given, else the consortium's; None if neither."""
    base = source_ill_url or consortium_ill_url
    return openurl(base, record, rft_id, params, volume, year) if base else None


def citation(record: Record, permalink: str | None = None) -> str:
    """A plain one-line citation: ``Author. Title. Edition. Place: Publisher, Year. ISBN …. <permalink>``."""
    parts = []
    if record.main_author:
        parts.append(record.main_author.rstrip("."))
    if record.full_title:
        parts.append(record.full_title.rstrip(" ./"))
    if record.edition:
        parts.append(record.edition.rstrip("."))
    imprint = ": ".join(p for p in (record.place.rstrip(" :;"), record.publisher.rstrip(" ,")) if p)
    if record.year:
        imprint = f"{imprint}, {record.year}" if imprint else str(record.year)
    if imprint:
        parts.append(imprint)
    if record.isbns:
        parts.append(f"ISBN {record.isbns[0]}")
    elif record.issns:
        parts.append(f"ISSN {record.issns[0]}")
    text = ". ".join(parts) + ("." if parts else "")
    return f"{text} {permalink}".strip() if permalink else text


def ask_url(template: str | None, record: Record, permalink: str | None = None) -> str | None:
    """The "ask a librarian" link: ``{citation}`` in the template becomes the URL-encoded citation."""
    if not template:
        return None
    return template.replace("{citation}", quote(citation(record, permalink), safe=""))


def login_url(template: str | None, return_url: str) -> str | None:
    """The sign-on link, bringing the reader back to ``return_url`` afterwards.

    ``{return}`` (or ``{return_url}``) in the template is replaced by the encoded
    URL; otherwise ``target=<url>`` is appended (Shibboleth/CARSI's name for it).
    """
    if not template:
        return None
    encoded = quote(return_url, safe="")
    for placeholder in RETURN_PLACEHOLDERS:
        if placeholder in template:
            return template.replace(placeholder, encoded)
    return _append_query(template, f"{RETURN_PARAM}={encoded}")


def _append_query(url: str, query: str) -> str:
    if not query:
        return url
    if "?" not in url:
        return f"{url}?{query}"
    return url + ("" if url.endswith(("?", "&")) else "&") + query
