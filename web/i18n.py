"""The UI's languages: English and Chinese (Flask-Babel), chosen per request.

Readers switch with ``?lang=zh`` / ``?lang=en`` (remembered in the ``lang``
cookie for a year); without a choice the browser's ``Accept-Language`` decides.
Templates mark text with ``{{ _("…") }}``; Python code with
``flask_babel.gettext``.  Catalogue data is never translated.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import Babel

#: UI languages, in the order the language switcher lists them.
LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"
COOKIE = "lang"
COOKIE_AGE = 365 * 24 * 3600


def select_locale() -> str:
    chosen = request.args.get("lang") or request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT)


def _remember_choice(response):
    chosen = request.args.get("lang")
    if chosen in LANGUAGES and request.cookies.get(COOKIE) != chosen:
        response.set_cookie(COOKIE, chosen, max_age=COOKIE_AGE, samesite="Lax", httponly=True)
    return response


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(Path(__file__).parent / "translations"))
    Babel(app, locale_selector=select_locale)
    app.after_request(_remember_choice)

    @app.context_processor
    def ui_languages():
        from flask_babel import get_locale
        return {"ui_languages": LANGUAGES, "ui_language": str(get_locale() or DEFAULT)}
