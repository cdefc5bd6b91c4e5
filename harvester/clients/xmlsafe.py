"""Hardened XML parsing for XML that members send us.

Everything harvested is untrusted: an OAI-PMH response or a MARCXML dump can
carry a DOCTYPE whose entities point at ``file:///etc/passwd`` or at an
internal URL (XXE / SSRF), or expand a few bytes into gigabytes.  Library
data never needs a DTD, so we refuse any document that declares one, and the
parser itself is configured so that even a declaration that slipped past the
check could not load, resolve or fetch anything.

Every XML parse in the harvester goes through this module: ``clients/oai.py`` parses
responses with :func:`parse_xml` (sickle's own parser resolves nothing
either, but recovers silently from broken XML, which hides data loss), and
``clients/dumps.py`` streams dumps with :func:`iterparse`.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from lxml import etree

from ..errors import HarvestError

#: The MARC 21 slim (MARCXML) namespace, for every harvester module that looks for MARC records.
MARC_NS = "http://www.loc.gov/MARC21/slim"

#: The settings shared by every parser we create.  ``resolve_entities=False``
#: leaves entity references unexpanded, ``load_dtd=False`` never reads an
#: external DTD, ``no_network=True`` forbids any network access, and
#: ``huge_tree=False`` keeps libxml2's limits against oversized text nodes
#: and deep nesting.
PARSER_OPTIONS: dict[str, Any] = dict(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
)

_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.S)
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.I)
_ILLEGAL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CHAR_REF = re.compile(rb"&#(x[0-9A-Fa-f]+|[0-9]+);")


class XMLError(HarvestError, ValueError):
    """Harvested XML we will not use; the message says why."""


class UnsafeXMLError(XMLError):
    """The document declares a DOCTYPE or entities (possible XXE); refused."""


class InvalidXMLError(XMLError):
    """The document is not well-formed XML; carries the parser's message."""


def make_parser(**extra: Any) -> etree.XMLParser:
    """A fresh parser with the hardened settings (parsers are not thread-safe)."""
    return etree.XMLParser(**PARSER_OPTIONS, **extra)


def check_prolog(head: bytes) -> None:
    """Refuse a document whose prolog (the part before the root) has a DOCTYPE.

    Looks only at the start of the document, so it costs nothing on large
    responses; :func:`parse_xml` checks the parsed tree again in case the
    prolog was in an encoding this byte scan does not understand.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore").encode("utf-8")
    else:
        text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    pos = 0
    while True:
        match = _PROLOG_ITEM.match(text, pos)
        if not match:
            break
        pos = match.end()
    if _DOCTYPE.match(text, pos):
        raise UnsafeXMLError("refused: the document has a DOCTYPE/entity declaration "
                             "(not allowed in harvested XML: XXE risk)")


def _check_tree(tree: etree._ElementTree) -> None:
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.system_url or info.public_id:
        raise UnsafeXMLError("refused: the document has a DOCTYPE/entity declaration "
                             "(not allowed in harvested XML: XXE risk)")


def parse_xml(data: bytes) -> etree._Element:
    """Parse a complete document safely; raise :class:`XMLError` on refusal or breakage."""
    check_prolog(data[:4096])
    try:
        root = etree.fromstring(data, parser=make_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidXMLError(f"not well-formed XML: {exc}") from None
    _check_tree(root.getroottree())
    return root


def strip_illegal_chars(data: bytes) -> tuple[bytes, int]:
    """Remove C0 control characters that XML 1.0 forbids, raw or as ``&#..;``.

    MARC subfield delimiters (0x1F) and other control bytes leak into OAI
    responses from some ILSs and make a whole page unparseable; dropping them
    is what established harvesters offer as "sanitize".  Returns the cleaned
    bytes and how many characters were dropped.  Only for ASCII-compatible
    encodings (a UTF-16 document is returned unchanged).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data, 0
    count = 0

    def ref(match: re.Match[bytes]) -> bytes:
        nonlocal count
        value = match.group(1)
        try:
            code = int(value[1:], 16) if value[:1] in (b"x",) else int(value)
        except ValueError:
            return match.group(0)
        if code < 0x20 and code not in (0x09, 0x0A, 0x0D):
            count += 1
            return b""
        return match.group(0)

    data, raw = _ILLEGAL_BYTES.subn(b"", data)
    data = _CHAR_REF.sub(ref, data)
    return data, count + raw


#: Bytes fed to the pull parser at a time.
CHUNK = 64 * 1024


def iterparse(source: IO[bytes], events: tuple[str, ...] = ("end",), tag: Any = None,
              encoding: str | None = None) -> Iterator[tuple[str, etree._Element]]:
    """Stream a large document with the hardened settings.

    Yields ``(event, element)`` like :func:`lxml.etree.iterparse`; raises
    :class:`UnsafeXMLError` if the document has a DOCTYPE — as soon as the root (or, with ``tag``,
    the first such element) starts, or at the end if none does — and :class:`InvalidXMLError` where
    the document breaks, after every element completed before the break.  A pull parser we feed, not
    ``etree.iterparse``: since lxml 6.2 that drops the events of the chunk in which the error lies,
    so the records before a broken tail were lost.  ``tag`` filters inside libxml2: a MARCXML dump
    has some 50 elements a record, and an event costs Python a generator step or two each.
    """
    wanted = set(events)
    parser = etree.XMLPullParser(events=tuple(dict.fromkeys(("start",) + tuple(events))), tag=tag,
                                 encoding=encoding, remove_comments=True, **PARSER_OPTIONS)
    checked = False

    def ready() -> Iterator[tuple[str, etree._Element]]:
        nonlocal checked
        for event, element in parser.read_events():
            if not checked:
                _check_tree(element.getroottree())
                checked = True
            if event in wanted:
                yield event, element

    error = None
    try:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            parser.feed(chunk)
            yield from ready()
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        error = exc
    yield from ready()
    if error is not None:
        raise InvalidXMLError(f"not well-formed XML: {error}") from None
    if not checked:  # no element matched ``tag``: the prolog still has to be clean
        _check_tree(root.getroottree())
