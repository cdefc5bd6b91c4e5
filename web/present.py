"""How values are shown: labels for codes, script-based ``lang`` attributes, dates.

Template filters and globals are registered by :func:`init_app`; the same
functions label facets in the JSON twins, so HTML and JSON agree.
"""
from __future__ import annotations

import re
from datetime import datetime

from flask import Flask, request, url_for

LANGUAGES = {
    "chi": "Chinese", "zho": "Chinese", "eng": "English", "jpn": "Japanese", "kor": "Korean",
    "fre": "French", "fra": "French", "ger": "German", "deu": "German", "rus": "Russian", "spa": "Spanish",
    "ita": "Italian", "por": "Portuguese", "dut": "Dutch", "ara": "Arabic", "tib": "Tibetan", "bod": "Tibetan",
    "mon": "Mongolian", "uig": "Uyghur", "vie": "Vietnamese", "tha": "Thai", "lat": "Latin", "grc": "Greek, Ancient",
    "gre": "Greek", "heb": "Hebrew", "hin": "Hindi", "mul": "Multiple languages", "und": "Undetermined",
    "zxx": "No linguistic content",
}
FORMATS = {
    "book": "Book", "ebook": "E-book", "serial": "Journal / serial", "eserial": "E-journal", "article": "Article",
    "map": "Map", "score": "Music score", "recording": "Sound recording", "music-recording": "Music recording",
    "video": "Video", "image": "Image", "kit": "Kit", "manuscript": "Manuscript", "software": "Software",
    "microform": "Microform", "mixed": "Mixed materials", "other": "Other",
}
FACET_TITLES = {"library": "Library", "region": "Region", "language": "Language", "format": "Format",
                "year": "Year", "subject": "Subject"}

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")


def script_lang(text) -> str:
    """A BCP 47 tag for CJK text so browsers pick the right glyphs: ``ja``, ``ko``, ``zh`` or ``""``."""
    if not isinstance(text, str) or not text:
        return ""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    if _HAN.search(text):
        return "zh"
    return ""


def facet_label(name: str, value: str, library_names: dict[str, str]) -> str:
    if name == "library":
        return library_names.get(value, value)
    if name == "language":
        return LANGUAGES.get(value, value)
    if name == "format":
        return FORMATS.get(value, value)
    return value


def when(value) -> str:
    """A datetime as ``2024-05-01 13:05 UTC`` (stores keep UTC; SQLite hands it back naive)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def current_args() -> dict[str, list[str]]:
    """The request's query parameters, minus any that ``url_for`` would take as its own options."""
    return {k: v for k, v in request.args.to_dict(flat=False).items() if k != "fmt" and not k.startswith("_")}


def search_url(**changes) -> str:
    """The current search with some parameters changed (None removes one); page resets to 1."""
    args = current_args()
    args.pop("page", None)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value if isinstance(value, list) else [value]
    return url_for("search.search", fmt="html", **args)


def toggle_filter_url(name: str, value: str) -> str:
    """The current search with ``name:value`` added to (or removed from) its filters."""
    token = f"{name}:{value}"
    current = request.args.getlist("f")
    new = [f for f in current if f != token] if token in current else [*current, token]
    return search_url(f=new)


def page_url(page: int) -> str:
    args = current_args()
    args["page"] = [str(page)]
    return url_for("search.search", fmt="html", **args)


def init_app(app: Flask) -> None:
    app.context_processor(_context)
    app.jinja_env.filters.update(script_lang=script_lang, when=when, duration=duration, http_url=http_url,
                                 language_name=lambda c: LANGUAGES.get(c, c),
                                 format_label=lambda c: FORMATS.get(c, c))
    app.jinja_env.globals.update(search_url=search_url, current_args=current_args,
                                 toggle_filter_url=toggle_filter_url, page_url=page_url,
                                 facet_titles=FACET_TITLES)


def _context() -> dict:
    from .context import services
    return {"consortium": services().sources.consortium}


def http_url(value) -> str:
    """``value`` if it is an http(s) URL, else "" — record data never becomes a ``javascript:`` link."""
    if isinstance(value, str) and re.match(r"^https?://[^\s\"'<>]+$", value.strip(), re.IGNORECASE):
        return value.strip()
    return ""


def safe_next(value: str | None) -> str | None:
    """Only a path on this site (never ``//host`` or ``http://…``): no open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None
