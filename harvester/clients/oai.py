"""OAI-PMH client: Identify and ListRecords page by page, on top of sickle.

sickle gives us the protocol's vocabulary (the verbs and their parameters,
``Header`` and ``ResumptionToken`` models, the response wrapper); we replace
the two parts a union catalogue cannot live with:

* transport — sickle retries only 503 with ``Retry-After`` as an integer and
  never retries a refused connection or a timeout.  Here the harvester's one
  retry policy (:mod:`harvester.retry`) covers every request;
* parsing — sickle's parser recovers silently from broken XML; ours
  (:mod:`harvester.clients.xmlsafe`) refuses DTDs and reports breakage.

Paging is explicit (:meth:`OAIClient.list_records` yields one :class:`Page`
at a time with the token of the next page) so the caller can commit each page
together with its resumption token.  Every setting is a constructor argument.
"""
from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests
from lxml import etree
from sickle.app import Sickle
from sickle.models import Header
from sickle.response import OAIResponse

from ..errors import HarvestError
from ..raw import QuarantinedItem, RawRecord
from ..retry import TRANSIENT, RetryPolicy
from .transport import BadResponse, Retryable, TransportError, describe, read_body
from .xmlsafe import MARC_NS, InvalidXMLError, UnsafeXMLError, parse_xml, strip_illegal_chars

log = logging.getLogger(__name__)

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
DAY = "YYYY-MM-DD"
SECONDS = "YYYY-MM-DDThh:mm:ssZ"
_HTML = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!DOCTYPE\s+html|html)[\s>]", re.I | re.S)
_DATESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?Z?)?$")


def _q(name: str) -> str:
    return f"{{{OAI_NS}}}{name}"


# -- errors ------------------------------------------------------------------
class ResumptionTokenLoop(BadResponse):
    """The repository handed back a resumption token it had already given."""


class OAIError(HarvestError):
    """An ``<error code=…>`` in an OAI-PMH response; one subclass per code."""

    code = "unknown"

    def __init__(self, message: str = "", code: str | None = None):
        if code is not None:
            self.code = code
        self.message = message
        super().__init__(f"OAI-PMH error {self.code}: {message}".rstrip(": "))


class BadArgument(OAIError):
    code = "badArgument"


class BadResumptionToken(OAIError):
    code = "badResumptionToken"


class BadVerb(OAIError):
    code = "badVerb"


class CannotDisseminateFormat(OAIError):
    code = "cannotDisseminateFormat"


class IdDoesNotExist(OAIError):
    code = "idDoesNotExist"


class NoRecordsMatch(OAIError):
    code = "noRecordsMatch"


class NoMetadataFormats(OAIError):
    code = "noMetadataFormats"


class NoSetHierarchy(OAIError):
    code = "noSetHierarchy"


OAI_ERRORS: dict[str, type[OAIError]] = {
    cls.code: cls for cls in (BadArgument, BadResumptionToken, BadVerb, CannotDisseminateFormat,
                              IdDoesNotExist, NoRecordsMatch, NoMetadataFormats, NoSetHierarchy)
}


# -- datestamps --------------------------------------------------------------
def format_datestamp(value: str, granularity: str) -> str:
    """``value`` in the repository's granularity (asking a day repository for
    seconds is a ``badArgument``).  Unrecognised values are returned as is."""
    match = _DATESTAMP.match(value.strip())
    if not match:
        return value
    day, clock = match.groups()
    if granularity == DAY:
        return day
    return f"{day}T{clock or '00:00:00'}Z"


def datestamp_key(value: str | None) -> str:
    """A sortable form of a datestamp of either granularity."""
    if not value:
        return ""
    return format_datestamp(value, SECONDS)


def later(a: str | None, b: str | None) -> str | None:
    """The later of two datestamps (None counts as the earliest)."""
    if not a:
        return b
    if not b:
        return a
    return b if datestamp_key(b) > datestamp_key(a) else a


# -- results -------------------------------------------------------------------
@dataclass(frozen=True)
class RepositoryInfo:
    """What Identify says about a repository."""

    repository_name: str
    base_url: str
    protocol_version: str
    granularity: str
    earliest_datestamp: str | None
    deleted_record: str | None


@dataclass
class Page:
    """One ListRecords response: its records, the unusable ones, and the next token."""

    number: int
    records: list[RawRecord] = field(default_factory=list)
    quarantined: list[QuarantinedItem] = field(default_factory=list)
    token: str | None = None

    @property
    def high_water(self) -> str | None:
        best = None
        for rec in self.records:
            best = later(best, rec.datestamp)
        return best


# -- the client ---------------------------------------------------------------
class _SafeResponse(OAIResponse):
    """sickle's response wrapper, holding a tree parsed once by :mod:`xmlsafe`."""

    def __init__(self, http_response: requests.Response, params: dict, tree: etree._Element):
        super().__init__(http_response, params)
        self._tree = tree

    @property
    def xml(self) -> etree._Element:
        return self._tree


class _Sickle(Sickle):
    """sickle with our transport and parser plugged into ``harvest``."""

    def __init__(self, endpoint: str, fetch: Callable[[dict], _SafeResponse]):
        super().__init__(endpoint, max_retries=0)
        self._fetch = fetch

    def harvest(self, **kwargs: str) -> _SafeResponse:
        return self._fetch(kwargs)


@dataclass(frozen=True)
class ListSpec:
    """What to list and how to label it: the member's id, ``metadataPrefix``, set, and record format."""

    source_id: str
    metadata_prefix: str = "marc21"
    set_spec: str | None = None
    record_format: str = "marc21"


class OAIClient:
    """An OAI-PMH client for one repository, with its retry, politeness and response limits.

    ``timeout`` bounds each read, ``deadline`` a whole response, ``max_bytes``
    its size; ``delay`` is the least time between two requests; ``retry`` says
    what is retried and how long to wait (:class:`harvester.retry.RetryPolicy`).
    """

    def __init__(self, url: str, spec: ListSpec, *, timeout: float = 60.0, delay: float = 0.0,
                 retry: RetryPolicy = RetryPolicy(), session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, deadline: float = 120.0,
                 max_bytes: int = 64 * 2**20):
        if not url:
            raise HarvestError(f"source {spec.source_id!r} has no OAI-PMH URL")
        self.url, self.spec = url, spec
        self.timeout, self.delay, self.retry = timeout, delay, retry
        self.deadline, self.max_bytes = deadline, max_bytes
        self.session = session or requests.Session()
        self._sleep = sleep
        self._last_request: float | None = None
        self.sickle = _Sickle(url, self._fetch)

    # transport
    def _polite(self) -> None:
        if self.delay and self._last_request is not None:
            wait = self.delay - (time.monotonic() - self._last_request)
            if wait > 0:
                self._sleep(wait)

    def _fetch(self, params: dict) -> _SafeResponse:
        """One OAI-PMH response, parsed; every failure worth another try is retried under the one policy.

        Worth another try: a retryable HTTP status or a dropped/refused/timed-out connection, a
        response over the deadline or the size cap, and a body that does not parse or is not OAI-PMH
        (a truncated page, a login page served with 200).  Not: hostile XML, other HTTP statuses and
        OAI-PMH error codes.
        """
        url = requests.Request("GET", self.url, params=params).prepare().url or self.url
        attempts = self.retry.max_retries + 1
        for attempt in range(attempts):
            self._polite()
            try:
                return self._attempt(params, url)
            except Retryable as exc:
                failure = exc
            if attempt + 1 == attempts:
                break
            wait = self.retry.wait(attempt, failure.retry_after)
            log.warning("%s: %s; retry %d of %d in %.1f s", url, failure.problem, attempt + 1,
                        self.retry.max_retries, wait)
            self._sleep(wait)
        raise failure.gave_up(attempts)

    def _attempt(self, params: dict, url: str) -> _SafeResponse:
        started = time.monotonic()
        try:
            response = self.session.get(self.url, params=params, timeout=self.timeout, stream=True)
        except TRANSIENT as exc:
            raise Retryable(TransportError(url, describe(exc))) from None
        except requests.RequestException as exc:
            raise TransportError(url, describe(exc)) from None
        finally:
            self._last_request = time.monotonic()
        with response:
            if response.status_code >= 400:
                problem = TransportError(url, f"HTTP {response.status_code} {response.reason or ''}".strip())
                if self.retry.retryable(response.status_code):
                    raise Retryable(problem, response.headers.get("Retry-After"))
                raise problem
            content = read_body(response, url, started, self.deadline, self.max_bytes)
            response._content = content  # what sickle's ``raw`` reads (the stream itself is used up)
        return self._parse(response, params, content)

    def _parse(self, response: requests.Response, params: dict, content: bytes) -> _SafeResponse:
        url = response.url or self.url
        kind = response.headers.get("Content-Type", "?")
        if _HTML.match(content[:512]):
            # a login or error page served with 200 (its <!DOCTYPE html> is no XXE attempt): try again
            raise Retryable(BadResponse(f"{url}: not an OAI-PMH response (an HTML page, Content-Type {kind})"))
        try:
            tree = parse_xml(content)
        except UnsafeXMLError as exc:
            raise BadResponse(f"{url}: {exc}") from None
        except InvalidXMLError as exc:
            cleaned, dropped = strip_illegal_chars(content)
            if not dropped:
                raise Retryable(BadResponse(f"{url}: invalid XML in response: {exc}")) from None
            try:
                tree = parse_xml(cleaned)
            except InvalidXMLError:
                raise Retryable(BadResponse(f"{url}: invalid XML in response: {exc}")) from None
            log.warning("%s: dropped %d control character(s) that XML forbids", url, dropped)
        if tree.tag != _q("OAI-PMH"):
            raise Retryable(BadResponse(f"{url}: not an OAI-PMH response (root element "
                                         f"<{etree.QName(tree).localname}>, Content-Type {kind})"))
        error = tree.find(_q("error"))
        if error is not None:
            code = error.get("code", "unknown")
            cls = OAI_ERRORS.get(code, OAIError)
            raise cls((error.text or "").strip(), code=code)
        return _SafeResponse(response, params, tree)

    # verbs
    def identify(self) -> RepositoryInfo:
        tree = self.sickle.harvest(verb="Identify").xml
        node = tree.find(_q("Identify"))
        if node is None:
            raise BadResponse(f"{self.url}: Identify response without an <Identify> element")

        def text(name: str) -> str | None:
            value = node.findtext(_q(name))
            return value.strip() if value else None

        granularity = text("granularity") or DAY
        return RepositoryInfo(
            repository_name=text("repositoryName") or "", base_url=text("baseURL") or self.url,
            protocol_version=text("protocolVersion") or "", granularity=granularity,
            earliest_datestamp=text("earliestDatestamp"), deleted_record=text("deletedRecord"),
        )

    def list_records(self, from_: str | None = None, until: str | None = None,
                     token: str | None = None) -> Iterator[Page]:
        """Yield ListRecords pages from ``from_`` (or resume at ``token``).

        ``noRecordsMatch`` ends the list without error.  A token the server has
        already handed out raises :class:`ResumptionTokenLoop` instead of
        looping forever.
        """
        seen: set[str] = set()
        if token:
            params = {"verb": "ListRecords", "resumptionToken": token}
            seen.add(token)
        else:
            params = {"verb": "ListRecords", "metadataPrefix": self.spec.metadata_prefix}
            if self.spec.set_spec:
                params["set"] = self.spec.set_spec
            if from_:
                params["from"] = from_
            if until:
                params["until"] = until
        number = 0
        while True:
            try:
                tree = self.sickle.harvest(**params).xml
            except NoRecordsMatch:
                return
            number += 1
            page = self._page(tree, number)
            if page.token and page.token in seen:
                raise ResumptionTokenLoop(
                    f"{self.url}: the repository sent resumption token {page.token!r} again "
                    f"(page {number}); stopping instead of looping")
            yield page
            if not page.token:
                return
            seen.add(page.token)
            params = {"verb": "ListRecords", "resumptionToken": page.token}

    def _page(self, tree: etree._Element, number: int) -> Page:
        container = tree.find(_q("ListRecords"))
        if container is None:
            raise BadResponse(f"{self.url}: ListRecords response without a <ListRecords> element")
        page = Page(number=number)
        for element in container.iterfind(_q("record")):
            item = to_raw(self.spec, element)
            (page.records if isinstance(item, RawRecord) else page.quarantined).append(item)
        token = container.find(_q("resumptionToken"))
        if token is not None:
            page.token = (token.text or "").strip() or None
        return page

    def close(self) -> None:
        self.session.close()


# -- records ------------------------------------------------------------------
def _is_marc_record(element: etree._Element) -> bool:
    """A MARC ``record``: in the MARC21 slim namespace, or un-namespaced with
    MARC children.  Alma writes ``<record>`` without a namespace declaration,
    which inside an OAI-PMH envelope whose default namespace is OAI's *parses*
    as an OAI element: that counts as un-namespaced too."""
    qname = etree.QName(element)
    if qname.localname != "record":
        return False
    if qname.namespace == MARC_NS:
        return True
    return qname.namespace in (None, OAI_NS) and any(
        isinstance(child.tag, str) and etree.QName(child).localname in ("leader", "controlfield", "datafield")
        and etree.QName(child).namespace == qname.namespace for child in element)


def _without_oai_namespace(element: etree._Element) -> None:
    """Undo the OAI namespace an undeclared MARC record inherited from the envelope."""
    for node in element.iter():
        if isinstance(node.tag, str) and node.tag.startswith(f"{{{OAI_NS}}}"):
            node.tag = etree.QName(node).localname


def to_raw(spec: ListSpec, element: etree._Element) -> RawRecord | QuarantinedItem:
    """One OAI ``<record>`` as a :class:`RawRecord`, or why it cannot be one."""
    header_el = element.find(_q("header"))
    if header_el is None:
        return QuarantinedItem(spec.source_id, None, f"source {spec.source_id!r}: OAI record without a <header>",
                               etree.tostring(element))
    header = Header(header_el)
    identifier = (header.identifier or "").strip()
    if not identifier:
        return QuarantinedItem(spec.source_id, None, f"source {spec.source_id!r}: OAI record without an identifier",
                               etree.tostring(element))
    datestamp = (header.datestamp or "").strip() or None
    marcish = "marc" in spec.metadata_prefix.lower()
    if header.deleted:
        return RawRecord(source=spec.source_id, local_id=identifier, syntax="marcxml" if marcish else "xml",
                         format=spec.record_format, datestamp=datestamp, deleted=True)
    metadata = element.find(_q("metadata"))
    child = None
    if metadata is not None:
        child = next((c for c in metadata if isinstance(c.tag, str)), None)
    if child is None:
        return QuarantinedItem(spec.source_id, identifier,
                               f"source {spec.source_id!r}: record {identifier!r} has no metadata",
                               etree.tostring(element))
    qname = etree.QName(child)
    if qname.localname == "collection" and qname.namespace in (MARC_NS, OAI_NS, None):
        records = [c for c in child if isinstance(c.tag, str) and _is_marc_record(c)]
        if len(records) == 1:
            child = records[0]
    payload_el = copy.deepcopy(child)
    if etree.QName(child).namespace == OAI_NS:
        _without_oai_namespace(payload_el)
    etree.cleanup_namespaces(payload_el)
    payload = etree.tostring(payload_el, encoding="UTF-8", xml_declaration=False)
    return RawRecord(source=spec.source_id, local_id=identifier, payload=payload,
                     syntax="marcxml" if _is_marc_record(child) else "xml",
                     format=spec.record_format, datestamp=datestamp, deleted=False)
