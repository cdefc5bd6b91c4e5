"""Reader sign-on through SAML 2.0 (Shibboleth, the CARSI federation): one service provider, pysaml2.

The catalogue is ONE SAML service provider for the whole consortium; each member library names its
school's identity provider in ``sources.yaml`` (``consortium/signon.py``).  Routes:

``GET /saml/metadata``
    the SP's metadata (entity id, keys, endpoints): the stable URL the federation registers
``POST /saml/acs``
    assertion consumer (HTTP-POST binding)
``GET /saml/sls``
    single logout (HTTP-Redirect binding): the IdP's answer to our logout, or its own logout request

Signatures are checked by pysaml2 through ``xmlsec1``: assertions must be signed by the IdP's key from
its metadata; time conditions, audience (our entity id), recipient and ``InResponseTo`` (a request this
browser session started; unsolicited responses are refused) are pysaml2's checks.  On top of them:
the issuer must be the library's own IdP (a federation aggregate holds every school), an assertion id is
accepted once (:class:`ReplayCache`), and a scoped attribute must carry one of the library's scopes.
App config: ``SAML_KEY_FILE`` / ``SAML_CERT_FILE`` (the SP's signing and decryption key pair, PEM);
without them SAML libraries are not offered.  ``SAML_METADATA_TIMEOUT`` (seconds, default 10).
"""
from __future__ import annotations

import base64
import logging
import shutil
import threading
import time
from dataclasses import dataclass, field

from flask import (Blueprint, Flask, Response, abort, after_this_request, current_app, redirect, render_template,
                   request, session, url_for)
from flask_babel import gettext as _
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, SAMLError
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.ident import code as encode_name_id
from saml2.s_utils import UnknownSystemEntity, UnsupportedBinding
from saml2.ident import decode as decode_name_id
from saml2.mdstore import ToOld
from saml2.metadata import create_metadata_string

from consortium.config import Source

from . import csrf
from .context import services
from .saml_trust import SAMLRefused, check_key_pair, forget_metadata, idp_metadata, redirect_signature_ok
from .signon import failed_sign_on, saml_enabled, sign_on_source, signed_in, signed_out

log = logging.getLogger(__name__)
bp = Blueprint("saml", __name__)
EPPN = "eduPersonPrincipalName"
SCOPED_AFFILIATION = "eduPersonScopedAffiliation"
NAME_ATTRIBUTES = ("displayName", "cn", "givenName")
SIGNING_ALGORITHM = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
PENDING_LIMIT = 5                         # sign-ons one browser may have started and not finished


@dataclass
class ReplayCache:
    """Assertion ids already accepted, until their assertion expires: each assertion signs in once.

    In memory, per process: behind several processes ``InResponseTo`` (a request id kept in the
    browser's own session) still refuses an assertion posted into another reader's sign-on.
    """

    seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first_use(self, assertion_id: str, expires: float) -> bool:
        now = time.time()
        with self.lock:
            for key in [k for k, until in self.seen.items() if until < now]:
                del self.seen[key]
            if assertion_id in self.seen:
                return False
            self.seen[assertion_id] = max(expires, now + 300)
            return True


def site_url(endpoint: str) -> str:
    """An absolute URL of ours: under the configured base URL (app config ``BASE_URL``, else the
    consortium's ``base_url``) when set — the SP's entity id and endpoints must not follow a request's
    Host header — else under the request's own origin."""
    base = current_app.config.get("BASE_URL") or services().sources.consortium.base_url
    return base.rstrip("/") + url_for(endpoint) if base else url_for(endpoint, _external=True)


def _sp_config(idp_metadata: str | None) -> SPConfig:
    """The SP's pysaml2 configuration (URLs from :func:`site_url`), trusting ``idp_metadata`` if given."""
    config = current_app.config
    sp = {
        "endpoints": {
            "assertion_consumer_service": [(site_url("saml.acs"), BINDING_HTTP_POST)],
            "single_logout_service": [(site_url("saml.sls"), BINDING_HTTP_REDIRECT)],
        },
        "want_assertions_signed": True,          # Shibboleth signs assertions; pysaml2 refuses unsigned ones
        "want_response_signed": False,
        "authn_requests_signed": True,
        "logout_requests_signed": True,
        "allow_unsolicited": False,              # every response answers a request this browser started
        "name_id_format_allow_create": True,
        "required_attributes": [EPPN],
        "optional_attributes": [SCOPED_AFFILIATION, "displayName"],
        "signing_algorithm": SIGNING_ALGORITHM,  # pysaml2's default is RSA-SHA1
        "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
    }
    settings = {
        "entityid": site_url("saml.metadata"),
        "key_file": config["SAML_KEY_FILE"], "cert_file": config["SAML_CERT_FILE"],
        "encryption_keypairs": [{"key_file": config["SAML_KEY_FILE"], "cert_file": config["SAML_CERT_FILE"]}],
        "xmlsec_binary": shutil.which("xmlsec1"),
        "service": {"sp": sp},
        "accepted_time_diff": 60,                # seconds of clock skew between the IdP and us
        "allow_unknown_attributes": True,
        "metadata": {"inline": [idp_metadata]} if idp_metadata else {},
    }
    sp_config = SPConfig()
    sp_config.load(settings)
    return sp_config


@bp.get("/saml/metadata")
def metadata():
    """The SP's metadata, signed with its key; what a federation or an IdP administrator registers."""
    if not saml_enabled(current_app):
        abort(404)
    xml = create_metadata_string(None, _sp_config(None), valid=24 * 7, sign=True)
    return Response(xml, mimetype="application/samlmetadata+xml")


def client_for(source: Source) -> Saml2Client:
    """A pysaml2 client trusting this library's IdP (its metadata fetched, verified and cached).

    Kept per library until its metadata is fetched again or the site's URL changes: making one loads
    and validates the SP's RSA key, about 0.1-0.2 s (bench/saml_signon.py).
    """
    xml = idp_metadata(source.sign_on)
    clients = current_app.extensions["unioncat_saml_clients"]
    cached = clients.get(source.id)
    if cached and cached[0] is xml and cached[1] == site_url("saml.metadata"):
        return cached[2]
    try:
        client = Saml2Client(config=_sp_config(xml))
    except ToOld as exc:  # validUntil passed: fetch again next time, the federation may have renewed it
        forget_metadata(source.sign_on)
        raise SAMLRefused(f"the IdP metadata has expired ({exc})") from exc
    try:
        sso = client.metadata.single_sign_on_service(source.sign_on.idp, BINDING_HTTP_REDIRECT)
    except (KeyError, UnknownSystemEntity, UnsupportedBinding):  # not in the metadata, or no Redirect SSO
        sso = None
    if not sso:
        raise SAMLRefused(f"the metadata has no identity provider {source.sign_on.idp!r} with an "
                          "HTTP-Redirect single sign-on service")
    clients[source.id] = (xml, site_url("saml.metadata"), client)
    return client


def start(source: Source):
    """Redirect the reader to the library's IdP with a signed AuthnRequest; remember its id."""
    client = client_for(source)
    request_id, info = client.prepare_for_authenticate(entityid=source.sign_on.idp,
                                                       binding=BINDING_HTTP_REDIRECT)
    pending = dict(list(session.get("saml_pending", {}).items())[-(PENDING_LIMIT - 1):])
    pending[request_id] = source.id
    session["saml_pending"] = pending
    return redirect(dict(info["headers"])["Location"])


@bp.post("/saml/acs")
def acs():
    """The IdP posts the reader back here; only a checked assertion signs them in."""
    pending: dict[str, str] = session.get("saml_pending", {})
    in_response_to = _in_response_to(request.form.get("SAMLResponse", ""))
    source = sign_on_source(pending.get(in_response_to, "")) if in_response_to in pending else None
    if source is None and request.form.get("SAMLResponse") and request.form.get("resubmitted") != "1":
        # the IdP's cross-site POST came without our SameSite=Lax cookie: post it again from our own page,
        # leaving the browser's cookie alone (a new session set here would replace the one being finished)
        after_this_request(_keep_cookie)
        return render_template("auth_saml_continue.html", saml_response=request.form["SAMLResponse"],
                               relay_state=request.form.get("RelayState", ""))
    if source is None:
        log.warning("SAML response refused: it answers no sign-on this browser started (%r)", in_response_to)
        abort(400, _("This sign-on answer does not belong to a sign-on started here; please sign in again."))
    try:
        library, reader = _reader_from(source, request.form["SAMLResponse"], {in_response_to: source.id})
    except SAMLRefused as exc:
        log.warning("SAML sign-on with %s refused: %s", source.id, exc)
        return failed_sign_on(source, str(exc))
    finally:
        pending.pop(in_response_to, None)
        session["saml_pending"] = pending
    return signed_in(library, via="saml", **reader)


def _keep_cookie(response: Response) -> Response:
    session.modified = False
    return response


def _in_response_to(encoded: str) -> str:
    """The request id a response claims to answer (read before any check, to find the library)."""
    try:
        root = etree.fromstring(base64.b64decode(encoded, validate=False),
                                parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except (ValueError, etree.XMLSyntaxError):
        return ""
    return root.get("InResponseTo", "")


def _reader_from(source: Source, encoded: str, outstanding: dict[str, str]) -> tuple[Source, dict]:
    """pysaml2's checks plus ours: the reader's library, and their id, name and logout handle.

    Raises :class:`SAMLRefused`.
    """
    client = client_for(source)
    try:
        response = client.parse_authn_request_response(encoded, BINDING_HTTP_POST, outstanding=outstanding)
    except Exception as exc:  # noqa: BLE001 - pysaml2 raises a dozen kinds, each a refusal
        raise SAMLRefused(f"{type(exc).__name__}: {exc}") from exc
    if response is None or response.assertion is None:
        raise SAMLRefused("the answer holds no assertion")
    client.users.remove_person(response.name_id)  # pysaml2's in-memory identity cache; our session holds it
    if response.issuer() != source.sign_on.idp:
        raise SAMLRefused(f"the assertion comes from {response.issuer()!r}, not the library's IdP")
    assertion = response.assertion
    if not current_app.extensions["unioncat_saml_replay"].first_use(assertion.id, response.not_on_or_after):
        raise SAMLRefused("this assertion was used before (replayed)")
    attributes = response.ava or {}
    library, user_id = _library_and_user(source, attributes)
    name_keys = (library.sign_on.name_attribute, *NAME_ATTRIBUTES) if library.sign_on.name_attribute \
        else NAME_ATTRIBUTES
    name = next((attributes[k][0] for k in name_keys if attributes.get(k)), user_id)
    statement = assertion.authn_statement[0] if assertion.authn_statement else None
    logout = {"idp": response.issuer(), "name_id": encode_name_id(response.name_id),
              "session_index": statement.session_index if statement is not None else None}
    return library, {"user_id": user_id, "name": name,
                     "extra": {"saml": logout, "affiliation": attributes.get(SCOPED_AFFILIATION, [])}}


def _library_and_user(source: Source, attributes: dict[str, list[str]]) -> tuple[Source, str]:
    """The reader's library by the scope of their eduPersonPrincipalName (``user@scope``), and that ePPN.

    A school's IdP may only speak for its own domains: the ePPN and every scoped affiliation must carry
    one of the library's ``scopes``.  Members sharing one IdP (a university's main and medical
    libraries) are told apart the same way: the reader belongs to the first of them, the chosen one
    first, whose scopes hold theirs.  No match is a refusal, so one member's IdP cannot sign readers in
    as another member's.
    """
    values = attributes.get(EPPN) or []
    if not values or "@" not in values[0]:
        raise SAMLRefused(_("the identity provider released no eduPersonPrincipalName (user@school)"))
    scoped = [values[0], *attributes.get(SCOPED_AFFILIATION, [])]
    scopes = {value.rpartition("@")[2].lower() for value in scoped}
    siblings = [s for s in services().sources.sources if s is not source and s.sign_on is not None
                and s.sign_on.type == "saml" and s.sign_on.idp == source.sign_on.idp]
    for library in [source, *siblings]:
        if not library.sign_on.scopes or scopes <= set(library.sign_on.scopes):
            return library, values[0]
    raise SAMLRefused(f"{sorted(scopes)} are outside the library's scopes {list(source.sign_on.scopes)}")


def logout_redirect(source: Source, reader: dict, relay_state: str):
    """A signed LogoutRequest to the IdP's single logout service, or ``None`` when it has none."""
    saml = reader.get("saml") or {}
    client = client_for(source)
    try:
        destination = client.metadata.single_logout_service(saml["idp"], BINDING_HTTP_REDIRECT, "idpsso")
    except (KeyError, SAMLError):
        destination = None
    if not destination:
        return None
    destination = destination[0]["location"]
    request_id, logout_request = client.create_logout_request(
        destination, saml["idp"], name_id=decode_name_id(saml["name_id"]),
        session_indexes=[saml["session_index"]] if saml.get("session_index") else None, sign=False)
    info = client.apply_binding(BINDING_HTTP_REDIRECT, str(logout_request), destination,
                                relay_state=relay_state, sign=True)
    session["saml_logout"] = {"id": request_id, "library": source.id}
    return redirect(dict(info["headers"])["Location"])


@bp.get("/saml/sls")
def sls():
    """Single logout: the IdP answering our LogoutRequest, or asking us to sign its reader out."""
    if request.args.get("SAMLResponse"):
        pending = session.pop("saml_logout", None) or {}
        source = sign_on_source(pending.get("library", ""))
        if source is not None:
            try:
                answer = client_for(source).parse_logout_request_response(request.args["SAMLResponse"],
                                                                         BINDING_HTTP_REDIRECT)
            except Exception as exc:  # noqa: BLE001 - the local session is gone whatever the IdP says
                log.warning("SAML logout answer from %s not usable: %s", source.id, exc)
            else:
                log.info("SAML logout with %s: %s", source.id, answer.response.status.status_code.value)
        return signed_out(request.args.get("RelayState"))
    if request.args.get("SAMLRequest"):
        return _idp_initiated_logout()
    abort(400, _("A single logout message was expected."))


def _idp_initiated_logout():
    """The IdP ends the reader's school session everywhere: forget our session if it is that reader's."""
    reader = session.get("reader") or {}
    source = sign_on_source(reader.get("library", "")) if reader.get("via") == "saml" else None
    if source is None:
        abort(400, _("No SAML sign-on to end here."))
    client = client_for(source)
    if not redirect_signature_ok(client, source.sign_on.idp, "SAMLRequest"):
        log.warning("SAML logout request for %s refused: not signed by the IdP's key", source.id)
        abort(400, _("The logout request could not be verified."))
    try:
        message = client.parse_logout_request(request.args["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                              relay_state=request.args.get("RelayState"),
                                              sigalg=request.args.get("SigAlg"),
                                              signature=request.args.get("Signature"))
    except Exception as exc:  # noqa: BLE001 - an unreadable or badly signed request ends nothing
        log.warning("SAML logout request from %s refused: %s", source.id, exc)
        abort(400, _("The logout request could not be verified."))
    ours = encode_name_id(message.message.name_id) == (reader.get("saml") or {}).get("name_id")
    if ours:
        session.pop("reader", None)
    status = None if ours else "urn:oasis:names:tc:SAML:2.0:status:Responder"
    answer = client.create_logout_response(message.message, [BINDING_HTTP_REDIRECT], status=status)
    destination = client.metadata.single_logout_service(message.message.issuer.text, BINDING_HTTP_REDIRECT,
                                                        "idpsso")[0]
    location = destination.get("response_location") or destination["location"]
    info = client.apply_binding(BINDING_HTTP_REDIRECT, str(answer), location,
                                relay_state=request.args.get("RelayState", ""), response=True, sign=True)
    return redirect(dict(info["headers"])["Location"])


def init_app(app: Flask) -> None:
    app.config.setdefault("SAML_KEY_FILE", None)
    app.config.setdefault("SAML_CERT_FILE", None)
    app.config.setdefault("SAML_METADATA_TIMEOUT", 10)
    check_key_pair(app.config["SAML_KEY_FILE"], app.config["SAML_CERT_FILE"])
    app.extensions["unioncat_saml_replay"] = ReplayCache()
    app.extensions["unioncat_saml_clients"] = {}  # source id → (metadata, site URL, Saml2Client)
    app.register_blueprint(bp)
    csrf.exempt("saml.acs")  # the IdP's page posts here; the signed assertion and InResponseTo protect it
