"""What SAML sign-on trusts, checked: IdP metadata (fetched, verified against the federation's signing
certificate, cached), HTTP-Redirect signatures, and the SP's own key pair.  Used by :mod:`web.saml`.
"""
from __future__ import annotations

import base64
import logging
import shutil
import threading
import time

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from flask import current_app, request
from lxml import etree
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.sigver import security_context

from consortium.signon import SignOn

log = logging.getLogger(__name__)
MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
MAX_METADATA_BYTES = 64 * 1024 * 1024     # CARSI's aggregate is a few MB; eduGAIN's about 80
METADATA_TTL = 6 * 3600                   # seconds an IdP's metadata is trusted before it is fetched again


class SAMLRefused(Exception):
    """A SAML message we do not accept; the message is for the reader (and the log)."""


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
    key = _cache_key(sign_on)
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


def forget_metadata(sign_on: SignOn) -> None:
    """Drop the cached metadata of this sign-on (expired), so the next sign-on fetches it again."""
    with _metadata_lock:
        _metadata_cache.pop(_cache_key(sign_on), None)


def _cache_key(sign_on: SignOn) -> tuple:
    return (sign_on.metadata_url, sign_on.metadata_file, sign_on.metadata_cert)


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
        log.warning("metadata signature check with %s failed: %s", cert_file, exc)
        raise SAMLRefused(f"the IdP metadata's signature does not verify with {cert_file}") from exc


def _bare_config() -> SPConfig:
    config = SPConfig()
    config.load({"entityid": "urn:unioncat:metadata-check", "xmlsec_binary": shutil.which("xmlsec1")})
    return config


def check_key_pair(key_file: str | None, cert_file: str | None) -> None:
    """Refuse at start-up (``ValueError`` naming the file) a half-given, unreadable or mismatched key pair."""
    if not key_file and not cert_file:
        return
    if not (key_file and cert_file):
        raise ValueError("SAML sign-on needs both SAML_KEY_FILE and SAML_CERT_FILE (UNIONCAT_SAML_KEY, "
                         "UNIONCAT_SAML_CERT); only one is set")
    try:
        with open(key_file, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"SAML_KEY_FILE {key_file}: not a readable unencrypted PEM private key ({exc})") from None
    try:
        with open(cert_file, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError) as exc:
        raise ValueError(f"SAML_CERT_FILE {cert_file}: not a readable PEM certificate ({exc})") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != \
            cert.public_key().public_bytes(serialization.Encoding.DER, public):
        raise ValueError(f"SAML_CERT_FILE {cert_file} is not the certificate of SAML_KEY_FILE {key_file}")
