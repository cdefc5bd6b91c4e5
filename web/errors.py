"""Domain errors and the one handler that turns them (and HTTP errors) into responses.

Views raise what went wrong in the catalogue's words; only :func:`handle_error`
knows HTTP status codes.  A path ending in ``.json`` gets a JSON error body,
everything else the HTML error page.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, SecurityError

from index.backend import QueryError, SearchError

log = logging.getLogger(__name__)


class WebError(Exception):
    """Base of the errors views raise; ``message`` is shown to the user."""

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message


class RecordNotFound(WebError):
    def __init__(self, record_id: str):
        super().__init__(_l("There is no record %(id)s in the catalogue. It may have been withdrawn "
                            "by every library that held it.", id=repr(record_id)))
        self.record_id = record_id


class StaffDisabled(WebError):
    def __init__(self):
        super().__init__(_l("The staff area is disabled: there is no staff account and no staff password is "
                            "configured. Create an account with `unioncat staff add-user NAME --role admin`, or set "
                            "STAFF_PASSWORD (UNIONCAT_STAFF_PASSWORD) and restart the web app."))


class Forbidden(WebError):
    """Signed in, but the account's role may not do this."""


class TooManyAttempts(WebError):
    """Sign-in refused for a while after failures for this account from this address (or from it at all)."""

    def __init__(self, seconds: int):
        super().__init__(_l("Too many failed sign-ins for this account from this address. "
                            "Wait %(seconds)s seconds and try again.", seconds=seconds))
        self.headers = {"Retry-After": str(seconds)}


class RateLimited(WebError):
    """One client asked faster than its limit allows."""

    def __init__(self, rate: float, burst: int, retry_after: str):
        shown = format(rate, "g")
        super().__init__(_l("Too many requests from your address: at most %(rate)s per second (bursts of "
                            "%(burst)s). Try again in %(seconds)s seconds.", rate=shown, burst=burst,
                            seconds=retry_after))
        self.headers = {"Retry-After": retry_after}


class RequestTooLarge(WebError):
    """A URL or a search bigger than any reader makes (refused before it costs a search)."""

    def __init__(self, what: str, cap: int, given: int):
        if what == "filters":
            message = _l("A search may have at most %(cap)s filters; this one has %(given)s. Remove some "
                         "filters and search again.", cap=cap, given=given)
        else:
            message = _l("The address is too long: at most %(cap)s characters, this one has %(given)s.",
                         cap=cap, given=given)
        super().__init__(message)


class LoginRequired(WebError):
    def __init__(self):
        super().__init__(_l("Please sign in to the staff area."))


class CSRFError(WebError):
    def __init__(self):
        super().__init__(_l("The form had expired or did not come from this site. Go back, reload the page "
                            "and try again."))


#: domain error → (HTTP status, title)
STATUS = {
    RecordNotFound: (404, _l("Record not found")),
    StaffDisabled: (503, _l("Staff area disabled")),
    LoginRequired: (401, _l("Sign in required")),
    CSRFError: (400, _l("Form rejected")),
    Forbidden: (403, _l("Not allowed")),
    TooManyAttempts: (429, _l("Too many attempts")),
    RateLimited: (429, _l("Too many requests")),
    RequestTooLarge: (400, _l("Request too large")),
    QueryError: (400, _l("Bad search")),
    SearchError: (503, _l("Search unavailable")),
}


def handle_error(exc: Exception):
    if isinstance(exc, SecurityError):  # an untrusted Host: no URL can be built for it, so no page either
        return Response(str(_l("This site does not answer to that host name.")) + "\n", 400,
                        mimetype="text/plain")
    if isinstance(exc, HTTPException):
        status, title, message = exc.code or 500, exc.name, exc.description or ""
    else:
        status, title = next((v for cls, v in STATUS.items() if isinstance(exc, cls)), (500, "Error"))
        message = getattr(exc, "message", "") or str(exc)
        title, message = str(title), str(message)  # lazily translated texts, in the reader's language
        if status >= 500:
            log.error("%s: %s", title, exc, exc_info=exc)
    if request.path.startswith("/api/"):   # the JSON API answers in its own shape, even for unknown paths
        response = jsonify({"error": message or title, "status": status})
    elif request.path.endswith(".json") or request.accept_mimetypes.best == "application/json":
        response = jsonify({"error": {"status": status, "title": title, "message": message}})
    else:
        response = render_template("error.html", status=status, title=title, message=message)
    if isinstance(exc, HTTPException):
        headers = dict(exc.get_headers())
        headers.pop("Content-Type", None)
        return response, status, headers
    return response, status, getattr(exc, "headers", {})


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_error)
    for cls in (WebError, *STATUS):
        app.register_error_handler(cls, handle_error)
