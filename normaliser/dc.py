"""Simple Dublin Core (``oai_dc``) → ``Record``.

Some members (repositories, digital collections) only offer ``oai_dc``.  DC
is flat and loosely used, so this reader is deliberately modest: it keeps
what matches the model — titles, creators, subjects, publisher, a year,
languages, standard numbers found among the identifiers, a format from
``dc:type`` — and never invents holdings.
"""
from __future__ import annotations

import html
import re

from . import identifiers
from .errors import RecordError
from .marcxml import parse_xml
from .model import Contributor, Record
from .text import clean

__all__ = ["dc_to_record"]

_DC_NS = ("http://purl.org/dc/elements/1.1/", "http://purl.org/dc/terms/")
_TAG = re.compile(r"<[^>]{0,500}>")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")

#: dc:type values (lower case, last path segment) → model format.
_TYPES = {
    "text": "book", "book": "book", "monograph": "book", "thesis": "book", "doctoralthesis": "book",
    "masterthesis": "book", "bachelorthesis": "book", "report": "book", "booktitle": "book",
    "bookpart": "article", "article": "article", "journal article": "article", "contributiontoperiodical": "article",
    "conferenceobject": "article", "preprint": "article",
    "periodical": "serial", "journal": "serial", "serial": "serial", "newspaper": "serial",
    "image": "image", "stillimage": "image", "photograph": "image", "picture": "image",
    "sound": "recording", "audio": "recording", "movingimage": "video", "video": "video", "film": "video",
    "software": "software", "interactiveresource": "software", "collection": "mixed",
    "map": "map", "cartographic": "map", "score": "score", "notated music": "score", "musical score": "score",
    "dataset": "other", "physicalobject": "other", "event": "other", "service": "other",
    "manuscript": "manuscript",
}
_ELECTRONIC_MIME = ("application/pdf", "application/epub", "text/html", "application/xhtml")

#: ISO 639-1 and English names of common languages → MARC (ISO 639-2/B) codes.
_LANGUAGES = {
    "en": "eng", "english": "eng", "fr": "fre", "fra": "fre", "french": "fre", "de": "ger", "deu": "ger",
    "german": "ger", "zh": "chi", "zho": "chi", "chinese": "chi", "ja": "jpn", "japanese": "jpn",
    "ko": "kor", "korean": "kor", "ru": "rus", "russian": "rus", "es": "spa", "spanish": "spa",
    "it": "ita", "italian": "ita", "pt": "por", "portuguese": "por", "nl": "dut", "nld": "dut",
    "dutch": "dut", "ar": "ara", "arabic": "ara", "he": "heb", "hebrew": "heb", "la": "lat", "latin": "lat",
    "pl": "pol", "cs": "cze", "ces": "cze", "sv": "swe", "da": "dan", "fi": "fin", "no": "nor", "nb": "nob",
    "el": "gre", "ell": "gre", "tr": "tur", "uk": "ukr", "hu": "hun", "vi": "vie", "th": "tha", "hi": "hin",
    "fa": "per", "fas": "per", "ro": "rum", "ron": "rum", "bo": "tib", "bod": "tib", "cy": "wel", "cym": "wel",
    "eu": "baq", "eus": "baq", "hy": "arm", "hye": "arm", "ka": "geo", "kat": "geo", "is": "ice", "isl": "ice",
    "mk": "mac", "mkd": "mac", "ms": "may", "msa": "may", "my": "bur", "mya": "bur", "sk": "slo", "slk": "slo",
    "sq": "alb", "sqi": "alb", "mi": "mao", "mri": "mao",
}


def _texts(root, name: str) -> list[str]:
    return [el.text.strip() for el in root.iter(*(f"{{{ns}}}{name}" for ns in _DC_NS))
            if el.text and el.text.strip()]


def _plain(text: str) -> str:
    """Descriptions often carry (escaped) HTML; keep the words."""
    for _ in range(2):
        if "&" in text:
            text = html.unescape(text)
    return clean(_TAG.sub(" ", text)) if "<" in text else clean(text)


def _language(value: str) -> str | None:
    value = value.strip().lower().split("-")[0].split("_")[0]
    code = _LANGUAGES.get(value, value)
    return code if len(code) == 3 and code.isascii() and code.isalpha() and code != "und" else None


def _format(types: list[str], mimes: list[str]) -> str:
    fmt = ""
    for value in types:
        key = value.strip().lower().rstrip("/").rsplit("/", 1)[-1]
        fmt = _TYPES.get(key, "")
        if fmt:
            break
    if not fmt:
        fmt = "other" if types else "book"
    if any(m.strip().lower().startswith(_ELECTRONIC_MIME) for m in mimes):
        fmt = {"book": "ebook", "serial": "eserial"}.get(fmt, fmt)
    return fmt


def _identifiers(rec: Record, values: list[str]) -> None:
    for value in values:
        lowered = value.lower()
        if lowered.startswith(("http://", "https://")):
            rec.urls.append(value)
            continue
        body = re.sub(r"^(?:urn:)?(?:isbn|issn)[:\s]*", "", value, flags=re.IGNORECASE)
        if "issn" in lowered[:9]:
            number = identifiers.issn(body)
            if number:
                rec.issns.append(number)
            continue
        number = identifiers.isbn13(body) or identifiers.split_isbn(body)[0]
        if number:
            rec.isbns.append(number)
        elif "isbn" in lowered[:9]:
            rec.invalid_isbns.append(body.strip())
        elif lowered.startswith(("doi:", "10.")):
            rec.other_ids.append("doi:" + value.split(":", 1)[-1] if lowered.startswith("doi:") else "doi:" + value)


def dc_to_record(payload: bytes, source: str, local_id: str) -> Record:
    """Map one ``oai_dc`` metadata element; RecordError when it has no title."""
    root = parse_xml(payload)
    titles = _texts(root, "title")
    if not titles:
        raise RecordError("oai_dc record has no dc:title")
    rec = Record(source=source, local_id=local_id, record_format="oai_dc")
    title, _, subtitle = clean(titles[0]).partition(" : ")
    rec.title, rec.subtitle = clean(title), clean(subtitle)
    if not rec.title:
        raise RecordError("oai_dc record has an empty dc:title")
    creators = [clean(v) for v in _texts(root, "creator")]
    contributors = [clean(v) for v in _texts(root, "contributor")]
    rec.contributors = ([Contributor(name=n, primary=True) for n in creators if n]
                        + [Contributor(name=n) for n in contributors if n and n not in creators])
    rec.subjects = list(dict.fromkeys(s for s in map(clean, _texts(root, "subject")) if s))
    publishers = _texts(root, "publisher")
    rec.publisher = clean(publishers[0]) if publishers else ""
    for date in _texts(root, "date"):
        match = _YEAR.search(date)
        if match and 1000 <= int(match.group(1)) <= 2100:
            rec.year = int(match.group(1))
            break
    rec.languages = list(dict.fromkeys(c for c in map(_language, _texts(root, "language")) if c))
    _identifiers(rec, _texts(root, "identifier"))
    for name in ("isbns", "invalid_isbns", "issns", "urls", "other_ids"):
        setattr(rec, name, list(dict.fromkeys(getattr(rec, name))))
    rec.format = _format(_texts(root, "type"), _texts(root, "format"))
    rec.summary = " ".join(p for p in map(_plain, _texts(root, "description")) if p)
    return rec
