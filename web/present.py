"""How values are shown: labels for codes, script-based ``lang`` attributes, dates.

Template filters and globals are registered by :func:`init_app`; the same
functions label facets in the JSON twins, so HTML and JSON agree.
"""
from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from flask import Flask, request, url_for
from flask_babel import lazy_gettext as _l

LANGUAGES = {
    "chi": _l("Chinese"), "zho": _l("Chinese"), "eng": _l("English"), "jpn": _l("Japanese"), "kor": _l("Korean"),
    "fre": _l("French"), "fra": _l("French"), "ger": _l("German"), "deu": _l("German"), "rus": _l("Russian"),
    "spa": _l("Spanish"), "ita": _l("Italian"), "por": _l("Portuguese"), "dut": _l("Dutch"), "ara": _l("Arabic"),
    "tib": _l("Tibetan"), "bod": _l("Tibetan"), "mon": _l("Mongolian"), "uig": _l("Uyghur"),
    "vie": _l("Vietnamese"), "tha": _l("Thai"), "lat": _l("Latin"), "grc": _l("Greek, Ancient"), "gre": _l("Greek"),
    "heb": _l("Hebrew"), "hin": _l("Hindi"), "mul": _l("Multiple languages"), "und": _l("Undetermined"),
    "zxx": _l("No linguistic content"),
}
FORMATS = {
    "book": _l("Book"), "ebook": _l("E-book"), "serial": _l("Journal / serial"), "eserial": _l("E-journal"),
    "article": _l("Article"), "map": _l("Map"), "score": _l("Music score"), "recording": _l("Sound recording"),
    "music-recording": _l("Music recording"), "video": _l("Video"), "image": _l("Image"), "kit": _l("Kit"),
    "manuscript": _l("Manuscript"), "software": _l("Software"), "microform": _l("Microform"),
    "mixed": _l("Mixed materials"), "other": _l("Other"),
}
FACET_TITLES = {"library": _l("Library"), "region": _l("Region"), "language": _l("Language"), "format": _l("Format"),
                "year": _l("Year"), "subject": _l("Subject"), "classification": _l("Classification")}

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
        return str(LANGUAGES.get(value, value))
    if name == "format":
        return str(FORMATS.get(value, value))
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


def lang_url(code: str) -> str:
    """This page in another UI language (``?lang=`` replaces any given)."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"] + [("lang", code)]
    return request.path + "?" + urlencode(args)


def page_url(page: int) -> str:
    args = current_args()
    args["page"] = [str(page)]
    return url_for("search.search", fmt="html", **args)


def init_app(app: Flask) -> None:
    app.context_processor(_context)
    app.jinja_env.filters.update(script_lang=script_lang, when=when, duration=duration, http_url=http_url,
                                 language_name=lambda c: str(LANGUAGES.get(c, c)),
                                 format_label=lambda c: str(FORMATS.get(c, c)))
    app.jinja_env.globals.update(search_url=search_url, current_args=current_args,
                                 toggle_filter_url=toggle_filter_url, page_url=page_url, lang_url=lang_url,
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
    """A redirect target read the way a browser reads it, kept only if it stays on this site.

    The one check for every ``next`` (sign-in, sign-out, library choice, basket, staff actions).  A
    browser strips leading and trailing controls and spaces, drops tabs and newlines anywhere, and reads
    a backslash as ``/`` — so ``/<TAB>/evil.example`` is ``//evil.example``, another host.  We do the same, resolve
    the result against this site and keep it only when scheme and host are ours; the answer is a path
    (never ``//…``), or None for anything else.
    """
    if not isinstance(value, str):
        return None
    cleaned = _URL_SPACE.sub("", value.strip(_C0_AND_SPACE)).replace("\\", "/")
    if not cleaned or any(ord(c) < 0x20 or c == "\x7f" for c in cleaned):
        return None
    site = urlsplit(request.host_url)
    try:
        target = urlsplit(urljoin(request.host_url, cleaned))
    except ValueError:  # e.g. an invalid IPv6 host: not ours
        return None
    if (target.scheme, target.netloc) != (site.scheme, site.netloc):
        return None
    path = "/" + target.path.lstrip("/")  # a path never starts with // (that would name a host)
    return urlunsplit(("", "", path, target.query, target.fragment))


_URL_SPACE = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
