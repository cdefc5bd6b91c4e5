"""Citations for readers: RIS, BibTeX, COinS spans and schema.org JSON-LD, from the one Record model.

MARC exports for cataloguers are ``publish.marcout``'s; these are the formats
reference managers (Zotero, EndNote, JabRef) read.  Pure functions of a
:class:`normaliser.model.Record` (or a search document for COinS), no Flask.
"""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, urlencode

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


def _authors(record: Record) -> list[str]:
    names = [c.name for c in record.contributors if c.name and c.kind == "person"]
    if record.main_author and record.main_author not in names:
        names.insert(0, record.main_author)
    return [n.rstrip(" ,.") for n in dict.fromkeys(names)]


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
