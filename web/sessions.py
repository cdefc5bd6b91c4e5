"""Staff sessions that end: kept on the server, revoked on sign-out and password change, timed out.

The session cookie (Flask's, signed with ``SECRET_KEY``) carries only a random token; the server
keeps its SHA-256 with the account, the times it started and was last used, and when and why it
ended.  So a cookie copied before sign-out is worthless after it, a new password ends every session
of the account, and an idle or too old session ends whatever the cookie says.  Each sign-in starts a
new token after clearing the old cookie's contents (session fixation: a token planted before sign-in
never becomes a signed-in one).

Config keys (settings ``UNIONCAT_SESSION_IDLE``, ``UNIONCAT_SESSION_MAX``, ``UNIONCAT_SECURE_COOKIES``):

``SESSION_IDLE_MINUTES`` (default 30)
    a session unused this long ends
``SESSION_MAX_HOURS`` (default 12)
    a session ends this long after sign-in, however busy (a working day, then sign in again)
``SECURE_COOKIES`` (default: on when ``BASE_URL`` is https)
    cookies only over HTTPS (``Secure``) and ``Strict-Transport-Security`` on every answer
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import Flask, current_app, request, session
from sqlalchemy import Column, String, Table, delete, or_, select, update
from sqlalchemy.engine import Engine

from storage.db import UTCDateTime, metadata, utcnow

TOKEN_KEY = "staff_sid"   # the cookie's token
NAME_KEY = "staff"        # the account's name, for the page header (base.html); never trusted alone
TOUCH_EVERY = timedelta(seconds=60)   # last use is written at most this often (one write per minute)
KEEP_ENDED = timedelta(days=30)
HSTS = "max-age=31536000; includeSubDomains"

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the token: the table signs nobody in
    Column("user", String(64), nullable=False, index=True),
    Column("ip", String(64)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, index=True),
    Column("end_reason", String(32)),
)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class StaffSessions:
    """The ``staff_sessions`` table's only reader and writer."""

    def __init__(self, engine: Engine, idle: timedelta = timedelta(minutes=30),
                 lifetime: timedelta = timedelta(hours=12)):
        self.engine = engine
        self.idle = idle
        self.lifetime = lifetime

    def start(self, user: str, ip: str | None) -> str:
        """A new session for ``user``; returns the token for the cookie (forgetting sessions long gone)."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(delete(staff_sessions).where(or_(staff_sessions.c.ended_at < now - KEEP_ENDED,
                                                          staff_sessions.c.started_at < now - KEEP_ENDED)))
            conn.execute(staff_sessions.insert().values(id=_hash(token), user=user, ip=(ip or "")[:64],
                                                        started_at=now, seen_at=now))
        return token

    def user_of(self, token: str) -> str | None:
        """The account a live session belongs to; None for an unknown, ended, idle or expired one."""
        key = _hash(token)
        with self.engine.connect() as conn:
            row = conn.execute(select(staff_sessions).where(staff_sessions.c.id == key)).mappings().first()
        if row is None or row["ended_at"] is not None:
            return None
        now = utcnow()
        if now - row["seen_at"] > self.idle:
            self._end(staff_sessions.c.id == key, "idle")
            return None
        if now - row["started_at"] > self.lifetime:
            self._end(staff_sessions.c.id == key, "expired")
            return None
        if now - row["seen_at"] >= TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(update(staff_sessions).where(staff_sessions.c.id == key).values(seen_at=now))
        return row["user"]

    def end(self, token: str, reason: str = "sign-out") -> None:
        self._end(staff_sessions.c.id == _hash(token), reason)

    def end_user(self, user: str, reason: str) -> int:
        """End every live session of ``user`` (new password, account disabled); returns how many."""
        return self._end(staff_sessions.c.user == user, reason)

    def _end(self, where, reason: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(update(staff_sessions).where(where, staff_sessions.c.ended_at.is_(None))
                                  .values(ended_at=utcnow(), end_reason=reason))
        return result.rowcount


# -- the Flask side ------------------------------------------------------------------------------

def store() -> StaffSessions:
    return current_app.extensions["unioncat_sessions"]


def sign_in(user: str) -> None:
    """Clear whatever the cookie held, then start a new server-side session for ``user``."""
    session.clear()
    session.permanent = True  # the cookie expires with the absolute timeout, not "at browser close"
    session[TOKEN_KEY] = store().start(user, request.remote_addr)
    session[NAME_KEY] = user


def signed_in() -> str | None:
    """The account of this request's live session, or None (a dead session's cookie is emptied)."""
    token = session.get(TOKEN_KEY)
    user = store().user_of(token) if isinstance(token, str) else None
    if user is None and (TOKEN_KEY in session or NAME_KEY in session):
        session.pop(TOKEN_KEY, None)
        session.pop(NAME_KEY, None)
    return user


def sign_out() -> None:
    token = session.get(TOKEN_KEY)
    if isinstance(token, str):
        store().end(token, "sign-out")
    session.clear()


def secure_cookies(app: Flask) -> bool:
    """``SECURE_COOKIES`` if given (True/False, or 1/0 text), else whether ``BASE_URL`` is https."""
    value = app.config.get("SECURE_COOKIES")
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return (app.config.get("BASE_URL") or "").startswith("https://")
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def init_app(app: Flask) -> None:
    """Timeouts into the store and the cookie, ``Secure`` and HSTS when served over HTTPS."""
    idle = timedelta(minutes=float(app.config.get("SESSION_IDLE_MINUTES") or 30))
    lifetime = timedelta(hours=float(app.config.get("SESSION_MAX_HOURS") or 12))
    app.extensions["unioncat_sessions"] = StaffSessions(app.extensions["unioncat"].engine, idle, lifetime)
    app.config["PERMANENT_SESSION_LIFETIME"] = lifetime
    secure = secure_cookies(app)
    app.config["SESSION_COOKIE_SECURE"] = secure
    if secure:
        @app.after_request
        def strict_transport(response):
            response.headers.setdefault("Strict-Transport-Security", HSTS)
            return response
