"""Per-library reader sign-on settings from ``sources.yaml``: OpenID Connect, CAS 3.0 or SAML 2.0.

A member library's ``sign_on`` mapping says how its readers prove who they
are; the catalogue then knows the reader's library (for ILL routing and
holdings order) and name.  Secrets never live in the file: ``client_secret_env``
names the environment variable the command line reads it from.

.. code-block:: yaml

    sign_on:                       # OpenID Connect
      type: oidc
      issuer: https://idp.example.edu.cn           # discovery at {issuer}/.well-known/openid-configuration
      # discovery_url: https://…/.well-known/openid-configuration   (instead of issuer)
      client_id: unioncat
      client_secret_env: UNIONCAT_OIDC_NJU_SECRET
      scope: openid profile email                  # default "openid profile"
      name_claim: name                             # default name, then preferred_username, then sub

    sign_on:                       # CAS 3.0 (serviceValidate with attributes)
      type: cas
      server: https://cas.example.edu.cn/cas       # /login and /p3/serviceValidate are under it
      name_attribute: cn                           # default: displayName, cn, name, then the user id

    sign_on:                       # SAML 2.0 (Shibboleth; the CARSI federation)
      type: saml
      idp: https://idp.nju.edu.cn/idp/shibboleth   # the IdP's entityID
      metadata_url: https://…/carsi-metadata.xml   # the IdP's own metadata or the federation's aggregate
      # metadata_file: /etc/unioncat/carsi.xml    (instead of metadata_url)
      metadata_cert: /etc/unioncat/carsi-signer.pem  # the aggregate must be signed by it (recommended)
      scopes: [nju.edu.cn]                         # ePPN / scoped affiliation must carry one of them
      name_attribute: displayName                  # default: displayName, cn, givenName, then the ePPN
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

SIGN_ON_TYPES = ("oidc", "cas", "saml")
OIDC_KEYS = {"type", "issuer", "discovery_url", "client_id", "client_secret_env", "scope", "name_claim", "label"}
CAS_KEYS = {"type", "server", "name_attribute", "label"}
SAML_KEYS = {"type", "idp", "metadata_url", "metadata_file", "metadata_cert", "scopes", "name_attribute", "label"}
KEYS = {"oidc": OIDC_KEYS, "cas": CAS_KEYS, "saml": SAML_KEYS}
ENV_NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass(frozen=True)
class SignOn:
    """How one library's readers sign on."""

    type: str                          # oidc | cas | saml
    label: str = ""                    # what the sign-on button says, e.g. "NJU unified identity"
    # OpenID Connect
    discovery_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    scope: str = "openid profile"
    name_claim: str | None = None
    # CAS
    server: str | None = None
    name_attribute: str | None = None  # CAS and SAML
    # SAML 2.0
    idp: str | None = None             # the IdP's entityID
    metadata_url: str | None = None
    metadata_file: str | None = None
    metadata_cert: str | None = None   # PEM certificate the metadata must be signed with
    scopes: tuple[str, ...] = ()       # lower-case domains the IdP may assert for


def parse_sign_on(value: Any, err: Callable[[str, str], Exception]) -> SignOn | None:
    """Validate a source's ``sign_on`` mapping; ``err(key, message)`` makes the ConfigError to raise."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise err("sign_on", "expected a mapping with 'type: oidc', 'type: cas' or 'type: saml'")
    kind = value.get("type")
    if kind not in SIGN_ON_TYPES:
        raise err("sign_on.type", f"expected one of {', '.join(SIGN_ON_TYPES)}; got {kind!r}")
    allowed = KEYS[kind]
    unknown = set(value) - allowed
    if unknown:
        raise err("sign_on", f"unknown key(s) {sorted(unknown)} for {kind}; expected {sorted(allowed)}")
    label = value.get("label", "")
    if not isinstance(label, str):
        raise err("sign_on.label", "expected text")
    if kind == "cas":
        server = _url(value.get("server"), "sign_on.server", "the CAS server's base URL (…/cas)", err)
        name_attr = _text(value.get("name_attribute"), "sign_on.name_attribute", err)
        return SignOn(type="cas", label=label, server=server.rstrip("/"), name_attribute=name_attr)
    if kind == "saml":
        return _saml(value, label, err)
    if value.get("issuer") and value.get("discovery_url"):
        raise err("sign_on", "give either 'issuer' or 'discovery_url', not both")
    if value.get("discovery_url"):
        discovery = _url(value["discovery_url"], "sign_on.discovery_url", "the provider's discovery URL", err)
    else:
        issuer = _url(value.get("issuer"), "sign_on.issuer", "the OpenID provider's issuer URL", err)
        discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
    client_id = value.get("client_id")
    if not isinstance(client_id, str) or not client_id.strip():
        raise err("sign_on.client_id", "expected the client id registered with the provider")
    secret_env = value.get("client_secret_env")
    if secret_env is not None and (not isinstance(secret_env, str) or not secret_env
                                   or set(secret_env) - ENV_NAME_CHARS):
        raise err("sign_on.client_secret_env", "expected the NAME of an environment variable holding the client "
                                               f"secret (A-Z, 0-9, _), never the secret itself; got {secret_env!r}")
    scope = value.get("scope", "openid profile")
    if not isinstance(scope, str) or "openid" not in scope.split():
        raise err("sign_on.scope", f"expected space-separated scopes including 'openid'; got {scope!r}")
    return SignOn(type="oidc", label=label, discovery_url=discovery, client_id=client_id.strip(),
                  client_secret_env=secret_env, scope=scope,
                  name_claim=_text(value.get("name_claim"), "sign_on.name_claim", err))


def _saml(value: dict, label: str, err) -> SignOn:
    idp = value.get("idp")
    if not isinstance(idp, str) or not idp.strip():
        raise err("sign_on.idp", "expected the identity provider's entityID (e.g. https://idp.example.edu.cn/idp/"
                                 f"shibboleth); got {idp!r}")
    if bool(value.get("metadata_url")) == bool(value.get("metadata_file")):
        raise err("sign_on", "give exactly one of 'metadata_url' and 'metadata_file' (the IdP's metadata or the "
                             "federation's aggregate)")
    url = value.get("metadata_url") and _url(value["metadata_url"], "sign_on.metadata_url",
                                             "the URL of the IdP's or the federation's metadata", err)
    scopes = value.get("scopes", [])
    if isinstance(scopes, str):
        scopes = [scopes]
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s.strip() and "@" not in s for s in scopes):
        raise err("sign_on.scopes", f"expected a list of domains such as [nju.edu.cn]; got {scopes!r}")
    return SignOn(type="saml", label=label, idp=idp.strip(), metadata_url=url,
                  metadata_file=_text(value.get("metadata_file"), "sign_on.metadata_file", err),
                  metadata_cert=_text(value.get("metadata_cert"), "sign_on.metadata_cert", err),
                  scopes=tuple(s.strip().lower() for s in scopes),
                  name_attribute=_text(value.get("name_attribute"), "sign_on.name_attribute", err))


def _url(value: Any, key: str, what: str, err) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise err(key, f"expected {what}, an http(s) URL; got {value!r}")
    return value


def _text(value: Any, key: str, err) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise err(key, f"expected a name; got {value!r}")
    return value
