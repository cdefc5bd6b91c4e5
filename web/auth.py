"""Reader sign-on: OpenID Connect (authlib), CAS 3.0 or SAML 2.0 (web/saml.py), per member library.

``/login`` lists the libraries readers can sign on with; ``/login/<library>``
sends the reader to that library's identity provider; the provider sends them
back to ``/login/<library>/oidc`` (authorization code flow with PKCE; the ID
token is verified by authlib against the provider's keys, nonce and issuer) or
``/login/<library>/cas`` (a CAS service ticket, validated server-to-server with
``/p3/serviceValidate``; its XML parsed with the harvester's hardened parser).
SAML 2.0 (Shibboleth, CARSI) goes through :mod:`web.saml`.
The session then holds ``reader = {library, name, id, via}``; ``POST /logout``
forgets it and, when the library's provider supports it, ends the reader's session there too:
OIDC RP-initiated logout (the provider's ``end_session_endpoint`` with the ID token as hint), CAS
``/logout?service=…``, SAML single logout (a signed LogoutRequest).  Client secrets come from the
environment through the app config (``SECRETS``: variable name → value), never from the file.
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode

import requests
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from lxml import etree

from consortium.config import Source
from harvester.clients.xmlsafe import XMLError, parse_xml

from . import csrf, saml
from .present import safe_next
from .saml_trust import SAMLRefused
from .signon import failed_sign_on, saml_enabled, sign_on_libraries, sign_on_source, signed_in, signed_out

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
CAS_NS = "{http://www.yale.edu/tp/cas}"
NAME_CLAIMS = ("name", "preferred_username", "nickname", "sub")
NAME_ATTRIBUTES = ("displayName", "cn", "name", "commonName")
CAS_TIMEOUT = 10


class SignOnError(Exception):
    """The provider refused or answered something we cannot use; the message is for the reader."""


def _source(source_id: str) -> Source:
    source = sign_on_source(source_id)
    if source is None:
        abort(404)
    return source


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
    if source.sign_on.type == "saml":
        return _start_saml(source)
    client = _oidc_client(source)
    try:  # fetches the provider's discovery document on first use
        return client.authorize_redirect(url_for("auth.oidc_callback", source_id=source.id, _external=True))
    except Exception as exc:  # noqa: BLE001 - an unreachable or broken provider is a failed sign-on
        log.warning("OIDC sign-on with %s could not start: %s", source.id, exc)
        return failed_sign_on(source, _("its sign-on service is not answering (%(error)s)", error=exc))


@bp.get("/login/<source_id>/oidc")
def oidc_callback(source_id: str):
    source = _source(source_id)
    if request.args.get("error"):
        return failed_sign_on(source, request.args.get("error_description") or request.args["error"])
    try:
        token = _oidc_client(source).authorize_access_token()
    except Exception as exc:  # noqa: BLE001 - authlib raises many kinds; each is a failed sign-on
        log.warning("OIDC sign-on with %s failed: %s", source.id, exc)
        return failed_sign_on(source, str(exc))
    claims = token.get("userinfo") or {}
    name_keys = (source.sign_on.name_claim, *NAME_CLAIMS) if source.sign_on.name_claim else NAME_CLAIMS
    name = next((str(claims[k]) for k in name_keys if claims.get(k)), "")
    return signed_in(source, user_id=str(claims.get("sub", "")), name=name, via="oidc",
                     extra={"id_token": token.get("id_token", "")})


@bp.get("/login/<source_id>/cas")
def cas_callback(source_id: str):
    source = _source(source_id)
    ticket = request.args.get("ticket", "")
    if not ticket:
        return failed_sign_on(source, _("The sign-on service sent no ticket."))
    try:
        user, attributes = validate_cas_ticket(source.sign_on.server, _cas_service(source), ticket)
    except SignOnError as exc:
        log.warning("CAS sign-on with %s failed: %s", source.id, exc)
        return failed_sign_on(source, str(exc))
    name_keys = (source.sign_on.name_attribute, *NAME_ATTRIBUTES) if source.sign_on.name_attribute \
        else NAME_ATTRIBUTES
    name = next((attributes[k][0] for k in name_keys if attributes.get(k)), user)
    return signed_in(source, user_id=user, name=name, via="cas")


@bp.post("/logout")
def logout():
    """Forget the reader here, then let their library's provider end its session too (when it can)."""
    reader = session.pop("reader", None) or {}
    csrf.rotate()
    back = safe_next(request.form.get("next")) or url_for("search.home")
    source = sign_on_source(reader.get("library", ""))
    if source is None or reader.get("via") != source.sign_on.type:
        return redirect(back, 303)
    try:
        remote = _remote_logout(source, reader, back)
    except Exception as exc:  # noqa: BLE001 - signed out here whatever the provider does
        log.warning("logout at %s's provider could not start: %s", source.id, exc)
        remote = None
    if not remote:
        return redirect(back, 303)
    # a page, not a redirect: the CSP's form-action 'self' stops a form post redirected to another site
    return render_template("auth_logout.html", provider_url=remote, library=source, back=back)


def _remote_logout(source: Source, reader: dict, back: str) -> str | None:
    """The provider's logout URL for this reader (the reader comes back to ``back``), or ``None``."""
    if source.sign_on.type == "cas":
        return f"{source.sign_on.server}/logout?" + urlencode({"service": url_for("auth.signed_out_page",
                                                                              next=back, _external=True)})
    if source.sign_on.type == "saml":
        response = saml.logout_redirect(source, reader, relay_state=back)
        return response.location if response is not None else None
    client = _oidc_client(source)
    end_session = client.load_server_metadata().get("end_session_endpoint")
    if not end_session:
        return None
    query = {"client_id": source.sign_on.client_id,
             "post_logout_redirect_uri": url_for("auth.signed_out_page", _external=True)}
    if reader.get("id_token"):
        query["id_token_hint"] = reader["id_token"]
    session["logout_next"] = back
    return f"{end_session}?{urlencode(query)}"


@bp.get("/logout/done")
def signed_out_page():
    """Where a provider sends the reader after its own logout; on to where they were (a GET that signs
    nobody out: ``POST /logout`` already did, so a link here from elsewhere ends no one's session)."""
    return signed_out(request.args.get("next") or session.pop("logout_next", None))


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
    successes = root.findall(f"{CAS_NS}authenticationSuccess")
    users = successes[0].findall(f"{CAS_NS}user") if len(successes) == 1 else []
    if len(users) != 1:
        raise SignOnError("the CAS server's answer names no user (or more than one)")
    user = _plain_text(users[0]).strip()
    if not user:
        raise SignOnError("the CAS server's answer names no user")
    attributes: dict[str, list[str]] = {}
    for element in successes[0].iterfind(f"{CAS_NS}attributes/*"):
        if not isinstance(element.tag, str):  # a comment or processing instruction among the attributes
            continue
        value = _plain_text(element).strip()
        if value:
            attributes.setdefault(element.tag.replace(CAS_NS, ""), []).append(value)
    return user, attributes


def _plain_text(element) -> str:
    """An element's text, refused when anything but text is inside it.

    ``<cas:user>admin<!-- -->.evil</cas:user>``: ``.text`` stops at the comment (``admin``) while the
    element's XPath string value is ``admin.evil``; readers of the same XML disagree about who signed
    in.  A real CAS server never puts markup inside a value, so a comment, processing instruction or
    child element there is a forged or broken answer, never a user name.
    """
    if len(element):
        raise SignOnError(f"the CAS server's answer has markup inside <{etree.QName(element).localname}>; "
                          "refused")
    return element.text or ""


def _cas_service(source: Source) -> str:
    return url_for("auth.cas_callback", source_id=source.id, _external=True)


def _start_saml(source: Source):
    if not saml_enabled(current_app):
        abort(404)
    try:
        return saml.start(source)
    except SAMLRefused as exc:  # metadata unsigned, badly signed, or without this IdP
        log.warning("SAML sign-on with %s could not start: %s", source.id, exc)
        return failed_sign_on(source, str(exc))
    except Exception as exc:  # noqa: BLE001 - unreachable or unverifiable metadata is a failed sign-on
        log.warning("SAML sign-on with %s could not start: %s", source.id, exc)
        return failed_sign_on(source, _("its sign-on service is not answering (%(error)s)", error=exc))


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
    saml.init_app(app)
    if not saml_enabled(app) and any(s.sign_on and s.sign_on.type == "saml"
                                     for s in services_for(app).sources.sources):
        log.warning("SAML sign-on is configured in sources.yaml but SAML_KEY_FILE/SAML_CERT_FILE (or xmlsec1) "
                    "are missing; those libraries' readers cannot sign on")


def services_for(app: Flask):
    return app.extensions["unioncat"]


def secrets_from(sources, environ) -> dict[str, str]:
    """The sign-on secrets ``sources.yaml`` names, read from ``environ`` by the caller (the CLI)."""
    names = {s.sign_on.client_secret_env for s in sources.sources if s.sign_on and s.sign_on.client_secret_env}
    return {name: environ[name] for name in names if environ.get(name)}
