"""What every sign-on protocol shares: which libraries offer sign-on, starting and ending a reader's session.

:mod:`web.auth` (OIDC, CAS, the routes) and :mod:`web.saml` both end here, so neither imports the other.
"""
from __future__ import annotations

import logging
import shutil

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, redirect, render_template, session, url_for
from flask_babel import gettext as _

from consortium.config import Source

from . import csrf
from .context import services
from .present import safe_next

log = logging.getLogger(__name__)


def saml_enabled(app: Flask) -> bool:
    """Whether the SP has its key pair (and ``xmlsec1``), so SAML libraries can be offered."""
    return bool(app.config.get("SAML_KEY_FILE") and app.config.get("SAML_CERT_FILE") and shutil.which("xmlsec1"))


def sign_on_source(source_id: str) -> Source | None:
    """The member library ``source_id`` if its readers can sign on here."""
    source = services().source(source_id) if source_id else None
    return source if source is not None and source.sign_on is not None else None


def sign_on_libraries() -> list[Source]:
    """Members whose readers can sign on here (an OIDC library without its client secret cannot)."""
    oauth: OAuth = current_app.extensions["unioncat_oauth"]
    usable = {"cas": lambda s: True, "saml": lambda s: saml_enabled(current_app),
              "oidc": lambda s: oauth.create_client(s.id) is not None}
    return [s for s in services().sources.sources if s.sign_on and usable[s.sign_on.type](s)]


def signed_in(source: Source, user_id: str, name: str, via: str, extra: dict | None = None):
    """Start the reader's session (what each protocol's callback ends with)."""
    session["reader"] = {"library": source.id, "name": name or user_id, "id": user_id, "via": via,
                         **(extra or {})}
    csrf.rotate()  # a token seen before sign-on is worthless after it
    log.info("reader signed on with %s via %s", source.id, via)
    return redirect(session.pop("login_next", None) or url_for("search.home"))


def failed_sign_on(source: Source, message: str):
    """The sign-in page again, saying which library's sign-on failed and why (HTTP 401)."""
    return render_template("auth_login.html", libraries=sign_on_libraries(), next=session.get("login_next"),
                           error=_("Sign-on with %(library)s failed: %(reason)s", library=source.name,
                                   reason=message)), 401


def signed_out(next_url: str | None):
    """Back from the provider's logout to where the reader was (same site only); the session was ended
    before the reader left for the provider, so this ends nothing itself."""
    return redirect(safe_next(next_url) or url_for("search.home"), 303)
