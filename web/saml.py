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

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Blueprint, Flask, Response, abort, after_this_request, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, SAMLError
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.ident import code as encode_name_id
from saml2.ident import decode as decode_name_id
from saml2.metadata import create_metadata_string
from saml2.sigver import security_context

from consortium.config import Source
from consortium.signon import SignOn

from . import csrf
from .signon import failed_sign_on, saml_enabled, sign_on_source, signed_in, signed_out

log = logging.getLogger(__name__)
bp = Blueprint("saml", __name__)
MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EPPN = "eduPersonPrincipalName"
SCOPED_AFFILIATION = "eduPersonScopedAffiliation"
NAME_ATTRIBUTES = ("displayName", "cn", "givenName")
MAX_METADATA_BYTES = 64 * 1024 * 1024     # CARSI's aggregate is a few MB; eduGAIN's about 80
METADATA_TTL = 6 * 3600                   # seconds an IdP's metadata is trusted before it is fetched again
SIGNING_ALGORITHM = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
PENDING_LIMIT = 5                         # sign-ons one browser may have started and not finished


class SAMLRefused(Exception):
    """A SAML message we do not accept; the message is for the reader (and the log)."""


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


def _sp_config(idp_metadata: str | None) -> SPConfig:
    """The SP's pysaml2 configuration; its URLs are this site's (``url_for`` with the request's origin)."""
    config = current_app.config
    sp = {
        "endpoints": {
            "assertion_consumer_service": [(url_for("saml.acs", _external=True), BINDING_HTTP_POST)],
            "single_logout_service": [(url_for("saml.sls", _external=True), BINDING_HTTP_REDIRECT)],
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
        "entityid": url_for("saml.metadata", _external=True),
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
    """A pysaml2 client trusting this library's IdP (its metadata fetched, verified and cached)."""
    xml = idp_metadata(source.sign_on)
    return Saml2Client(config=_sp_config(xml))


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
        reader = _reader_from(source, request.form["SAMLResponse"], {in_response_to: source.id})
    except SAMLRefused as exc:
        log.warning("SAML sign-on with %s refused: %s", source.id, exc)
        return failed_sign_on(source, str(exc))
    finally:
        pending.pop(in_response_to, None)
        session["saml_pending"] = pending
    return signed_in(source, via="saml", **reader)


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


def _reader_from(source: Source, encoded: str, outstanding: dict[str, str]) -> dict:
    """pysaml2's checks plus ours; the reader's id, name and the logout handle, or :class:`SAMLRefused`."""
    client = client_for(source)
    try:
        response = client.parse_authn_request_response(encoded, BINDING_HTTP_POST, outstanding=outstanding)
    except Exception as exc:  # noqa: BLE001 - pysaml2 raises a dozen kinds, each a refusal
        raise SAMLRefused(f"{type(exc).__name__}: {exc}") from exc
    if response is None or response.assertion is None:
        raise SAMLRefused("the answer holds no assertion")
    if response.issuer() != source.sign_on.idp:
        raise SAMLRefused(f"the assertion comes from {response.issuer()!r}, not the library's IdP")
    assertion = response.assertion
    if not current_app.extensions["unioncat_saml_replay"].first_use(assertion.id, response.not_on_or_after):
        raise SAMLRefused("this assertion was used before (replayed)")
    attributes = response.ava or {}
    user_id = _scoped_user(source.sign_on, attributes)
    name_keys = (source.sign_on.name_attribute, *NAME_ATTRIBUTES) if source.sign_on.name_attribute \
        else NAME_ATTRIBUTES
    name = next((attributes[k][0] for k in name_keys if attributes.get(k)), user_id)
    statement = assertion.authn_statement[0] if assertion.authn_statement else None
    logout = {"idp": response.issuer(), "name_id": encode_name_id(response.name_id),
              "session_index": statement.session_index if statement is not None else None}
    return {"user_id": user_id, "name": name, "extra": {"saml": logout,
                                                        "affiliation": attributes.get(SCOPED_AFFILIATION, [])}}


def _scoped_user(sign_on: SignOn, attributes: dict[str, list[str]]) -> str:
    """eduPersonPrincipalName (``user@scope``), its scope one of the library's; the reader's id.

    A school's IdP may only speak for its own domain: an ePPN or scoped affiliation with another
    scope is refused, so one member's IdP cannot sign readers in as another member's.
    """
    values = attributes.get(EPPN) or []
    if not values or "@" not in values[0]:
        raise SAMLRefused(_("the identity provider released no eduPersonPrincipalName (user@school)"))
    if sign_on.scopes:
        for value in [values[0], *attributes.get(SCOPED_AFFILIATION, [])]:
            scope = value.rpartition("@")[2].lower()
            if scope not in sign_on.scopes:
                raise SAMLRefused(f"{value!r} is outside the library's scopes {list(sign_on.scopes)}")
    return values[0]


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


REDIRECT_SIGNATURE_HASHES = {  # SigAlg → hash; SHA-1 is refused
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}


def redirect_signature_ok(client: Saml2Client, issuer: str, kind: str) -> bool:
    """Whether this HTTP-Redirect message is signed by one of ``issuer``'s signing keys from its metadata.

    pysaml2 verifies redirect signatures only where its config demands signed *authn* requests (an IdP
    setting), so an SP would take an unsigned LogoutRequest.  The signed octets are the query's own
    ``kind=…&RelayState=…&SigAlg=…`` as received (SAML bindings §3.4.4.1), never re-encoded values.
    """
    raw = dict(part.split("=", 1) for part in request.query_string.decode("ascii", "replace").split("&")
               if "=" in part)
    digest = REDIRECT_SIGNATURE_HASHES.get(request.args.get("SigAlg", ""))
    if digest is None or kind not in raw or "Signature" not in raw:
        return False
    signed = "&".join(f"{name}={raw[name]}" for name in (kind, "RelayState", "SigAlg") if name in raw)
    try:
        signature = base64.b64decode(request.args["Signature"])
        certificates = [cert for _, cert in client.metadata.certs(issuer, "idpsso", "signing")]
    except (ValueError, KeyError):
        return False
    for cert in certificates:
        key = x509.load_der_x509_certificate(base64.b64decode(cert)).public_key()
        try:
            key.verify(signature, signed.encode("ascii"), padding.PKCS1v15(), digest())
            return True
        except (InvalidSignature, TypeError, ValueError):
            continue
    return False


# -- IdP metadata: fetched, verified against the federation's signing certificate, cached -----------------

_metadata_cache: dict[tuple, tuple[float, str]] = {}
_metadata_lock = threading.Lock()


def idp_metadata(sign_on: SignOn) -> str:
    """The metadata XML holding the library's IdP: its own, or the federation aggregate (verified)."""
    key = (sign_on.metadata_url, sign_on.metadata_file, sign_on.metadata_cert)
    with _metadata_lock:
        cached = _metadata_cache.get(key)
        if cached and cached[0] > time.time():
            return cached[1]
    if sign_on.metadata_file:
        with open(sign_on.metadata_file, "rb") as handle:
            data = handle.read(MAX_METADATA_BYTES + 1)
    else:
        data = _fetch(sign_on.metadata_url)
    if len(data) > MAX_METADATA_BYTES:
        raise SAMLRefused(f"the IdP metadata is larger than {MAX_METADATA_BYTES} bytes")
    if sign_on.metadata_cert:
        verify_metadata(data, sign_on.metadata_cert)
    xml = data.decode("utf-8")
    with _metadata_lock:
        _metadata_cache[key] = (time.time() + METADATA_TTL, xml)
    return xml


def _fetch(url: str) -> bytes:
    timeout = current_app.config.get("SAML_METADATA_TIMEOUT", 10)
    try:
        with requests.get(url, timeout=timeout, stream=True) as response:
            response.raise_for_status()
            data = response.raw.read(MAX_METADATA_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise SAMLRefused(f"the IdP metadata at {url} could not be fetched: {exc}") from exc
    return data


def verify_metadata(data: bytes, cert_file: str) -> None:
    """Refuse metadata not signed, as a whole, by the federation's signing certificate.

    The signature must sit on the root element and reference it (``URI=""`` or the root's ID), so a
    signed fragment wrapped into a forged document does not pass; ``xmlsec1`` checks the signature.
    """
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True,
                                                             huge_tree=True))
    except etree.XMLSyntaxError as exc:
        raise SAMLRefused(f"the IdP metadata is not well-formed XML: {exc}") from exc
    references = root.findall(f"{{{DS_NS}}}Signature/{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference")
    root_id = root.get("ID")
    if len(references) != 1 or references[0].get("URI") not in ("", f"#{root_id}" if root_id else ""):
        raise SAMLRefused("the IdP metadata is not signed as a whole; refused")
    node_name = f"{MD_NS}:{etree.QName(root).localname}"
    security = security_context(_bare_config())
    try:
        security.verify_signature(data.decode("utf-8"), cert_file=cert_file, node_name=node_name,
                                  node_id=root_id)
    except Exception as exc:  # noqa: BLE001 - SignatureError and xmlsec1 failures alike
        raise SAMLRefused(f"the IdP metadata's signature does not verify with {cert_file}: {exc}") from exc


def _bare_config() -> SPConfig:
    config = SPConfig()
    config.load({"entityid": "urn:unioncat:metadata-check", "xmlsec_binary": shutil.which("xmlsec1")})
    return config


def init_app(app: Flask) -> None:
    app.config.setdefault("SAML_KEY_FILE", None)
    app.config.setdefault("SAML_CERT_FILE", None)
    app.config.setdefault("SAML_METADATA_TIMEOUT", 10)
    app.extensions["unioncat_saml_replay"] = ReplayCache()
    app.register_blueprint(bp)
    csrf.exempt("saml.acs")  # the IdP's page posts here; the signed assertion and InResponseTo protect it
