"""The OAI-PMH provider's reading of a request: verbs and arguments, resumption tokens, datestamps.

Kept apart from :mod:`web.oai` (which answers) so the protocol's rules for
what a request may say — one verb, no unknown or repeated arguments, an
exclusive ``resumptionToken``, UTC datestamps at day or second granularity,
tokens carrying a keyed checksum — read in one place, each broken rule its
spec error code (:class:`OaiError`).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from werkzeug.datastructures import MultiDict

ARGS = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), {"resumptionToken"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
}


class OaiError(Exception):
    """A request the protocol refuses; ``code`` is the spec's error code, answered as ``<error code=…>``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ListArgs:
    """A list request's arguments: what a resumption token carries from page to page."""

    prefix: str
    set_spec: str | None
    start: str | None  # from/until as given (second or day granularity)
    end: str | None


def verb_of(params: MultiDict) -> str:
    verbs = params.getlist("verb")
    if len(verbs) != 1:
        raise OaiError("badVerb", "give exactly one verb" if verbs else "the verb argument is missing")
    if verbs[0] not in ARGS:
        raise OaiError("badVerb", f"{verbs[0]!r} is not an OAI-PMH verb ({', '.join(ARGS)})")
    return verbs[0]


def request_args(verb: str, params: MultiDict) -> dict[str, str]:
    """The verb's arguments, each given once; unknown, repeated or missing ones are ``badArgument``."""
    required, optional = ARGS[verb]
    out = {}
    for key in params:
        if key == "verb":
            continue
        if key not in required | optional:
            raise OaiError("badArgument", f"{verb} does not take the argument {key!r}")
        values = params.getlist(key)
        if len(values) != 1:
            raise OaiError("badArgument", f"the argument {key!r} is repeated")
        out[key] = values[0]
    if "resumptionToken" in out:
        if len(out) > 1:
            raise OaiError("badArgument", "resumptionToken is an exclusive argument")
        return out
    missing = sorted(required - set(out))
    if missing:
        raise OaiError("badArgument", f"{verb} needs {', '.join(missing)}")
    return out


def repository_id() -> str:
    """The ``<repo>`` part of identifiers (config ``OAI_REPOSITORY_ID``)."""
    return current_app.config.get("OAI_REPOSITORY_ID") or "unioncat"


def _token_key() -> bytes:
    """The tokens' HMAC key, derived from the app's ``SECRET_KEY`` (never from anything public).

    With a configured secret key tokens stay good across restarts and between processes; with the
    random per-process key of a loopback development server they end at restart.
    """
    secret = current_app.config["SECRET_KEY"]
    secret = secret if isinstance(secret, bytes) else str(secret).encode("utf-8")
    return hmac.new(secret, b"unioncat oai-pmh resumption token", hashlib.sha256).digest()


def make_token(state: dict) -> str:
    data = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode("utf-8")).decode("ascii")
    mac = hmac.new(_token_key(), data.encode("ascii"), hashlib.sha256).hexdigest()[:20]
    return f"{data.rstrip('=')}.{mac}"


def read_token(token: str) -> dict:
    bad = OaiError("badResumptionToken", "the resumption token is not one this repository issued, or is damaged")
    data, _, mac = token.partition(".")
    expected = hmac.new(_token_key(), (data + "=" * (-len(data) % 4)).encode("ascii", "replace"),
                        hashlib.sha256).hexdigest()[:20]
    if not mac or not hmac.compare_digest(mac, expected):
        raise bad
    try:
        state = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    except ValueError:
        raise bad from None
    if not isinstance(state, dict) or state.get("v") != 1:
        raise bad
    return state


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def parse_date(value: str, name: str, end: bool) -> datetime:
    """``from`` is inclusive from its first second; ``until`` inclusive to its last (day or second)."""
    try:
        if _DAY.match(value):
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            return day + timedelta(days=1) if end else day
        if _SECOND.match(value):
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            return moment + timedelta(seconds=1) if end else moment
    except ValueError:
        pass
    raise OaiError("badArgument", f"{name}={value!r} is not a UTC datestamp (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)")


def list_position(args: dict[str, str]) -> tuple[ListArgs, int, int, int, bool]:
    """A list request's arguments and where it stands: ``(args, stream, after, cursor, resumed)``."""
    if "resumptionToken" not in args:
        return ListArgs(args["metadataPrefix"], args.get("set"), args.get("from"), args.get("until")), 0, 0, 0, False
    state = read_token(args["resumptionToken"])
    try:
        largs = ListArgs(_text(state["m"], False), _text(state["s"]), _text(state["f"]), _text(state["u"]))
        return largs, _count(state["t"]), _count(state["q"]), _count(state["c"]), True
    except (KeyError, TypeError, ValueError):
        raise OaiError("badResumptionToken", "the resumption token is incomplete or damaged") from None


#: positions in a token are change sequences and counts: whole numbers a database column holds
MAX_POSITION = 2**53


def _count(value: object) -> int:
    """A non-negative whole number below :data:`MAX_POSITION` (a list, a float, a bool or 10**400 is not)."""
    if type(value) is not int or not 0 <= value < MAX_POSITION:
        raise ValueError(f"not a position: {value!r}")
    return value


def _text(value: object, optional: bool = True) -> str | None:
    """A short string (or None where the argument was not given)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise ValueError(f"not an argument: {value!r}")
    return value
