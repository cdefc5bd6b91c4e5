"""A tiny CSRF guard: one random token per session, required on every unsafe request.

Forms carry it as the hidden field ``csrf_token`` (templates call
``csrf_token()``); scripts may send it as the ``X-CSRF-Token`` header.  With a
SameSite=Lax session cookie this keeps other sites from posting on a signed-in
member of staff's behalf.
"""
from __future__ import annotations

import hmac
import secrets

from flask import Flask, request, session

from .errors import CSRFError

SESSION_KEY = "_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def csrf_token() -> str:
    token = session.get(SESSION_KEY)
    if not token:
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def rotate() -> str:
    """A fresh token (after sign-in, so a token seen before it is worthless)."""
    session[SESSION_KEY] = secrets.token_urlsafe(32)
    return session[SESSION_KEY]


#: Machine interfaces that never read the session (OAI-PMH allows POST for reads; the JSON API answers
#: unsafe methods with 405 itself): no session, so nothing for a forged request to ride on.
EXEMPT_PATHS = ("/oai", "/api/")
#: Endpoints another site posts to by design, whose messages carry their own signature (SAML's HTTP-POST
#: binding: the IdP's page posts the signed assertion to ``saml.acs``); added with :func:`exempt`.
EXEMPT_ENDPOINTS: set[str] = set()


def exempt(endpoint: str) -> None:
    EXEMPT_ENDPOINTS.add(endpoint)


def check_csrf() -> None:
    if request.method not in UNSAFE or request.path == "/oai" or request.path.startswith(EXEMPT_PATHS[1]) \
            or request.endpoint in EXEMPT_ENDPOINTS:
        return
    expected = session.get(SESSION_KEY)
    given = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CSRFError()


def init_app(app: Flask) -> None:
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
