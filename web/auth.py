"""Reader sign-on: OpenID Connect (authlib) or CAS 3.0, per member library, from ``sources.yaml``.

``/login`` lists the libraries readers can sign on with; ``/login/<library>``
sends the reader to that library's identity provider; the provider sends them
back to ``/login/<library>/oidc`` (authorization code flow with PKCE; the ID
token is verified by authlib against the provider's keys, nonce and issuer) or
``/login/<library>/cas`` (a CAS service ticket, validated server-to-server with
``/p3/serviceValidate``; its XML parsed with the harvester's hardened parser).
The session then holds ``reader = {library, name, id, via}``; ``POST /logout``
forgets it.  Client secrets come from the environment through the app config
(``SECRETS``: variable name → value), never from the file.
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode

import requests
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from consortium.config import Source
from harvester.clients.xmlsafe import XMLError, parse_xml

from . import csrf
from .context import services
from .present import safe_next

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
CAS_NS = "{http://www.yale.edu/tp/cas}"
NAME_CLAIMS = ("name", "preferred_username", "nickname", "sub")
NAME_ATTRIBUTES = ("displayName", "cn", "name", "commonName")
CAS_TIMEOUT = 10


class SignOnError(Exception):
    """The provider refused or answered something we cannot use; the message is for the reader."""


def _source(source_id: str) -> Source:
    source = services().source(source_id)
    if source is None or source.sign_on is None:
        abort(404)
    return source


def sign_on_libraries() -> list[Source]:
    """Members whose readers can sign on here (an OIDC library without its client secret cannot)."""
    oauth: OAuth = current_app.extensions["unioncat_oauth"]
    return [s for s in services().sources.sources
            if s.sign_on and (s.sign_on.type == "cas" or oauth.create_client(s.id) is not None)]


@bp.get("/login")
def login():
    """Choose the library to sign on with (a reader of one library signs on there)."""
    return render_template("auth_login.html", libraries=sign_on_libraries(),
                           next=safe_next(request.args.get("next")))


@bp.get("/login/<source_id>")
def start(source_id: str):
    source = _source(source_id)
    session["login_next"] = safe_next(request.args.get("next")) or url_for("search.home")
    if source.sign_on.type == "cas":
        query = urlencode({"service": _cas_service(source)})
        return redirect(f"{source.sign_on.server}/login?{query}")
    client = _oidc_client(source)
    try:  # fetches the provider's discovery document on first use
        return client.authorize_redirect(url_for("auth.oidc_callback", source_id=source.id, _external=True))
    except Exception as exc:  # noqa: BLE001 - an unreachable or broken provider is a failed sign-on
        log.warning("OIDC sign-on with %s could not start: %s", source.id, exc)
        return _failed(source, _("its sign-on service is not answering (%(error)s)", error=exc))


@bp.get("/login/<source_id>/oidc")
def oidc_callback(source_id: str):
    source = _source(source_id)
    if request.args.get("error"):
        return _failed(source, request.args.get("error_description") or request.args["error"])
    try:
        token = _oidc_client(source).authorize_access_token()
    except Exception as exc:  # noqa: BLE001 - authlib raises many kinds; each is a failed sign-on
        log.warning("OIDC sign-on with %s failed: %s", source.id, exc)
        return _failed(source, str(exc))
    claims = token.get("userinfo") or {}
    name_keys = (source.sign_on.name_claim, *NAME_CLAIMS) if source.sign_on.name_claim else NAME_CLAIMS
    name = next((str(claims[k]) for k in name_keys if claims.get(k)), "")
    return _signed_in(source, user_id=str(claims.get("sub", "")), name=name, via="oidc")


@bp.get("/login/<source_id>/cas")
def cas_callback(source_id: str):
    source = _source(source_id)
    ticket = request.args.get("ticket", "")
    if not ticket:
        return _failed(source, _("The sign-on service sent no ticket."))
    try:
        user, attributes = validate_cas_ticket(source.sign_on.server, _cas_service(source), ticket)
    except SignOnError as exc:
        log.warning("CAS sign-on with %s failed: %s", source.id, exc)
        return _failed(source, str(exc))
    name_keys = (source.sign_on.name_attribute, *NAME_ATTRIBUTES) if source.sign_on.name_attribute \
        else NAME_ATTRIBUTES
    name = next((attributes[k][0] for k in name_keys if attributes.get(k)), user)
    return _signed_in(source, user_id=user, name=name, via="cas")


@bp.post("/logout")
def logout():
    session.pop("reader", None)
    csrf.rotate()
    return redirect(safe_next(request.form.get("next")) or url_for("search.home"), 303)


def validate_cas_ticket(server: str, service: str, ticket: str,
                        http: requests.Session | None = None) -> tuple[str, dict[str, list[str]]]:
    """CAS 3.0 ``/p3/serviceValidate``: the user id and attributes (each a list), or :class:`SignOnError`."""
    http = http or requests.Session()
    try:
        response = http.get(f"{server}/p3/serviceValidate", params={"service": service, "ticket": ticket},
                            timeout=CAS_TIMEOUT)
    except requests.RequestException as exc:
        raise SignOnError(f"the CAS server could not be reached: {exc}") from exc
    if response.status_code != 200:
        raise SignOnError(f"the CAS server answered HTTP {response.status_code}")
    try:
        root = parse_xml(response.content)
    except XMLError as exc:
        raise SignOnError(f"the CAS server's answer is not usable XML: {exc}") from exc
    failure = root.find(f"{CAS_NS}authenticationFailure")
    if failure is not None:
        raise SignOnError(f"{failure.get('code', 'INVALID')}: {(failure.text or '').strip()}")
    success = root.find(f"{CAS_NS}authenticationSuccess")
    user = success.findtext(f"{CAS_NS}user") if success is not None else None
    if not user or not user.strip():
        raise SignOnError("the CAS server's answer names no user")
    attributes: dict[str, list[str]] = {}
    for element in success.iterfind(f"{CAS_NS}attributes/*"):
        name = element.tag.replace(CAS_NS, "")
        if element.text and element.text.strip():
            attributes.setdefault(name, []).append(element.text.strip())
    return user.strip(), attributes


def _cas_service(source: Source) -> str:
    return url_for("auth.cas_callback", source_id=source.id, _external=True)


def _signed_in(source: Source, user_id: str, name: str, via: str):
    session["reader"] = {"library": source.id, "name": name or user_id, "id": user_id, "via": via}
    csrf.rotate()  # a token seen before sign-on is worthless after it
    log.info("reader signed on with %s via %s", source.id, via)
    return redirect(session.pop("login_next", None) or url_for("search.home"))


def _failed(source: Source, message: str):
    return render_template("auth_login.html", libraries=sign_on_libraries(), next=session.get("login_next"),
                           error=_("Sign-on with %(library)s failed: %(reason)s", library=source.name,
                                   reason=message)), 401


def _oidc_client(source: Source):
    oauth: OAuth = current_app.extensions["unioncat_oauth"]
    client = oauth.create_client(source.id)
    if client is None:  # its client secret is not configured: the login page does not offer it
        abort(404)
    return client


def init_app(app: Flask) -> None:
    """Register an authlib client per library with OpenID Connect sign-on."""
    oauth = OAuth(app)
    secrets = app.config.get("SECRETS") or {}
    for source in services_for(app).sources.sources:
        sign_on = source.sign_on
        if sign_on is None or sign_on.type != "oidc":
            continue
        secret = secrets.get(sign_on.client_secret_env) if sign_on.client_secret_env else None
        if sign_on.client_secret_env and not secret:
            log.warning("sign-on for %s: environment variable %s is not set; its readers cannot sign on",
                        source.id, sign_on.client_secret_env)
            continue
        oauth.register(name=source.id, client_id=sign_on.client_id, client_secret=secret,
                       server_metadata_url=sign_on.discovery_url,
                       client_kwargs={"scope": sign_on.scope, "code_challenge_method": "S256",
                                      "timeout": CAS_TIMEOUT})
    app.extensions["unioncat_oauth"] = oauth
    app.register_blueprint(bp)


def services_for(app: Flask):
    return app.extensions["unioncat"]


def secrets_from(sources, environ) -> dict[str, str]:
    """The sign-on secrets ``sources.yaml`` names, read from ``environ`` by the caller (the CLI)."""
    names = {s.sign_on.client_secret_env for s in sources.sources if s.sign_on and s.sign_on.client_secret_env}
    return {name: environ[name] for name in names if environ.get(name)}
