"""A real SAML 2.0 identity provider for tests: pysaml2's ``saml2.server.Server`` behind a small WSGI app.

The IdP logic (parsing and checking AuthnRequests, building, signing and answering assertions and
logouts) is pysaml2's; this file only routes HTTP to it, in its own process on loopback, the way a
school's Shibboleth IdP would be reached.  ``xmlsec1`` signs.  Routes:

``/metadata``            the IdP's EntityDescriptor
``/federation.xml``      an EntitiesDescriptor holding it, signed by a separate "federation" key (CARSI-like);
                         ``?valid_hours=-1`` makes one already expired
``/sso/redirect``        HTTP-Redirect AuthnRequest → a login form; ``POST /sso/login`` answers with an
                         auto-posting form carrying the signed Response (HTTP-POST binding)
``/slo/redirect``        the SP's LogoutRequest → a signed LogoutResponse redirected to the SP
``POST /control``        JSON ``{"mode": …}`` for the next answers: ``normal``, ``expired`` (NotOnOrAfter in
                         the past), ``audience`` (issued for another SP)
``POST /logout-user``    JSON ``{"name_id": …}``: IdP-initiated logout → where to send the browser

Run by :class:`SAMLIdP` (``python saml_idp.py CONFIG.json``); prints one JSON line once it listens.
"""
from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs

OTHER_SP = "https://other-sp.example.org/shibboleth"


def make_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed RSA key pair (PEM) made with openssl: ``(key, cert)``."""
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    f"/CN={name}", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return key, cert


class SAMLIdP:
    """The IdP process: ``url``, ``entity_id``, ``metadata_url``, ``federation_url``, ``federation_cert``."""

    def __init__(self, folder: Path, port: int | None = None):
        """Keys and URLs (known before the SP is configured); :meth:`start` runs the process."""
        from services import free_port, unavailable
        if not shutil.which("xmlsec1") or not shutil.which("openssl"):
            unavailable("xmlsec1 and openssl are needed to sign SAML messages (scripts/install-system-deps.sh)",
                        "the SAML tests")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = make_key_pair(folder, "idp")
        self.federation_key, self.federation_cert = make_key_pair(folder, "federation")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.entity_id = f"{self.url}/idp/shibboleth"
        self.metadata_url, self.federation_url = f"{self.url}/metadata", f"{self.url}/federation.xml"
        self.process = None

    def start(self, sp_metadata: bytes, users: dict[str, dict[str, list[str]]]) -> "SAMLIdP":
        """Run the IdP trusting the SP described by ``sp_metadata``; ``users``: login → attributes."""
        folder = self.folder
        (folder / "sp.xml").write_bytes(sp_metadata)
        config = {"port": self.port, "url": self.url, "entity_id": self.entity_id, "key": str(self.key),
                  "cert": str(self.cert), "federation_key": str(self.federation_key),
                  "federation_cert": str(self.federation_cert), "sp_metadata": str(folder / "sp.xml"),
                  "users": users}
        (folder / "idp.json").write_text(json.dumps(config))
        self._log = open(folder / "idp.log", "w")
        from services import ends_with_us
        self.process = subprocess.Popen(ends_with_us([sys.executable, __file__, str(folder / "idp.json")]),
                                        stdout=subprocess.PIPE, stderr=self._log, text=True)
        if not self.process.stdout.readline():
            self.process.wait(5)
            raise RuntimeError("the SAML IdP did not start: " + (folder / "idp.log").read_text()[-3000:])
        return self

    def control(self, mode: str) -> None:
        import requests
        requests.post(f"{self.url}/control", json={"mode": mode}, timeout=10).raise_for_status()

    def stop(self) -> None:
        from services import stop_process
        stop_process(self.process)
        self.process.stdout.close()
        self._log.close()


# -- the IdP process ------------------------------------------------------------------------------------------

def idp_config(settings: dict) -> dict:
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
    url = settings["url"]
    return {
        "entityid": settings["entity_id"],
        "key_file": settings["key"], "cert_file": settings["cert"],
        "xmlsec_binary": shutil.which("xmlsec1"),
        "metadata": {"local": [settings["sp_metadata"]]},
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(f"{url}/sso/redirect", BINDING_HTTP_REDIRECT)],
                          "single_logout_service": [(f"{url}/slo/redirect", BINDING_HTTP_REDIRECT)]},
            "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI,
                                   "attribute_restrictions": None}},
            "name_id_format": [NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_PERSISTENT],
            "want_authn_requests_signed": True,
            "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",  # Shibboleth's default
            "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            "sign_assertion": True,
            "sign_response": False,
            "bindings": {"single_sign_on_service": [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST]},
        }},
    }


class IdPApp:
    """WSGI routes around one ``saml2.server.Server``."""

    def __init__(self, settings: dict):
        from saml2.config import IdPConfig
        from saml2.server import Server
        config = IdPConfig()
        config.load(idp_config(settings))
        self.server = Server(config=config)
        self.settings, self.mode, self.pending = settings, "normal", {}

    def __call__(self, environ, start_response):
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) if method == "POST" else b""
        routes = {"/metadata": self.metadata, "/federation.xml": self.federation, "/sso/redirect": self.sso,
                  "/sso/login": self.login, "/slo/redirect": self.slo, "/control": self.control,
                  "/logout-user": self.logout_user}
        try:
            status, headers, content = routes[path](query, body) if path in routes else ("404 Not Found", [], "")
        except Exception as exc:  # noqa: BLE001 - a refusal by pysaml2 is a 400 with its reason
            status, headers, content = "400 Bad Request", [], f"{type(exc).__name__}: {exc}"
        data = content.encode() if isinstance(content, str) else content
        start_response(status, headers or [("Content-Type", "text/html; charset=utf-8")])
        return [data]

    def metadata(self, query, body):
        from saml2.metadata import create_metadata_string
        return "200 OK", [("Content-Type", "application/samlmetadata+xml")], \
            create_metadata_string(None, self.server.config, valid=48)

    def federation(self, query, body):
        """The IdP's entity in an aggregate signed by the federation's own key."""
        from saml2.config import Config
        from saml2.metadata import entities_descriptor, entity_descriptor
        from saml2.sigver import security_context
        signer = Config().load({"key_file": self.settings["federation_key"],
                                "cert_file": self.settings["federation_cert"],
                                "xmlsec_binary": shutil.which("xmlsec1")})
        hours = int(query.get("valid_hours", 48))  # negative: an aggregate whose validUntil has passed
        _, xml = entities_descriptor([entity_descriptor(self.server.config)], hours, "urn:test:federation",
                                     "fed-test", True, security_context(signer))
        return "200 OK", [("Content-Type", "application/samlmetadata+xml")], str(xml)

    def sso(self, query, body):
        from saml2 import BINDING_HTTP_REDIRECT
        request = self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                  relay_state=query.get("RelayState"), sigalg=query.get("SigAlg"),
                                                  signature=query.get("Signature"))
        key = request.message.id
        self.pending[key] = (request, query.get("RelayState", ""))
        return "200 OK", [], (f'<form method="post" action="/sso/login"><input type="hidden" name="key" '
                              f'value="{html.escape(key)}"><input name="username"><button>Sign in</button></form>')

    def login(self, query, body):
        """The user signed in: a signed assertion for the SP that asked (or, by mode, a hostile one)."""
        from saml2 import BINDING_HTTP_POST
        from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID
        from saml2.samlp import NameIDPolicy
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        request, relay_state = self.pending.pop(form["key"])
        identity = self.settings["users"][form["username"]]
        args = self.server.response_args(request.message, [BINDING_HTTP_POST])
        sp = request.message.issuer.text if self.mode != "audience" else OTHER_SP
        self._set_lifetime({"minutes": -10} if self.mode == "expired" else {"minutes": 5})
        name_id = NameID(format=NAMEID_FORMAT_TRANSIENT, text=f"{form['username']}-transient")
        response = self.server.create_authn_response(
            identity, userid=form["username"], name_id=name_id, sp_entity_id=sp,
            name_id_policy=NameIDPolicy(format=NAMEID_FORMAT_TRANSIENT),
            in_response_to=args["in_response_to"], destination=args["destination"],
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_assertion=True, sign_response=False)
        info = self.server.apply_binding(BINDING_HTTP_POST, response, args["destination"], relay_state,
                                         response=True)
        return "200 OK", [], info["data"]

    def _set_lifetime(self, lifetime: dict) -> None:
        from saml2.assertion import Policy
        policy = self.server.config.getattr("policy", "idp")
        restrictions = dict(policy.policy) if hasattr(policy, "policy") else {}
        default = {**restrictions.get("default", {}), "lifetime": lifetime}
        self.server.config.setattr("idp", "policy", Policy({**restrictions, "default": default},
                                                           self.server.metadata))

    def slo(self, query, body):
        """The SP's signed LogoutRequest → a signed LogoutResponse back to its single logout service."""
        from saml2 import BINDING_HTTP_REDIRECT
        request = self.server.parse_logout_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                   relay_state=query.get("RelayState"),
                                                   sigalg=query.get("SigAlg"), signature=query.get("Signature"))
        if request is None or not query.get("Signature"):
            return "400 Bad Request", [], "the logout request is not signed"
        response = self.server.create_logout_response(request.message, [BINDING_HTTP_REDIRECT])
        destination = self.server.metadata.single_logout_service(request.message.issuer.text,
                                                                 BINDING_HTTP_REDIRECT, "spsso")[0]["location"]
        info = self.server.apply_binding(BINDING_HTTP_REDIRECT, str(response), destination,
                                         query.get("RelayState", ""), response=True, sign=True)
        return "302 Found", [("Location", dict(info["headers"])["Location"])], ""

    def control(self, query, body):
        self.mode = json.loads(body)["mode"]
        return "200 OK", [("Content-Type", "application/json")], json.dumps({"mode": self.mode})

    def logout_user(self, query, body):
        """Start an IdP-initiated logout of ``name_id`` at the SP: the URL to send the browser to."""
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID
        wanted = json.loads(body)
        sp = self.server.metadata.single_logout_service(wanted["sp"], BINDING_HTTP_REDIRECT, "spsso")[0]["location"]
        _, request = self.server.create_logout_request(
            sp, wanted["sp"], name_id=NameID(format=NAMEID_FORMAT_TRANSIENT, text=wanted["name_id"]),
            sign=False)
        info = self.server.apply_binding(BINDING_HTTP_REDIRECT, str(request), sp, "", sign=True)
        return "200 OK", [("Content-Type", "application/json")], \
            json.dumps({"location": dict(info["headers"])["Location"]})


def main(config_path: str) -> None:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):  # the test log stays readable
            pass
    settings = json.loads(Path(config_path).read_text())
    server = make_server("127.0.0.1", settings["port"], IdPApp(settings), handler_class=Quiet)
    print(json.dumps({"url": settings["url"], "pid": os.getpid()}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
