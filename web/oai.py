"""The catalogue's OAI-PMH 2.0 data provider at ``/oai``.

Items and sets are :mod:`publish.feed`'s: merged records (one per
cluster, ``oai:<repo>:<cluster id>``) and member records (each library's own
record as harvested, ``oai:<repo>:<source>:<local id>``).  A list without a
set gives the merged records, then the member records.

Resumption tokens are stateless: they carry the request's arguments and the
position (which stream, the last change sequence sent, how many were sent),
with a keyed checksum so a damaged or hand-made token is refused as
``badResumptionToken``.  Nothing is kept in memory, so a token stays good
across restarts and across processes.  Deletions are persistent: a retired
cluster or a withdrawn member record stays listed with ``status="deleted"``.

Config keys: ``OAI_REPOSITORY_ID`` (the ``<repo>`` part of identifiers,
default ``unioncat``), ``OAI_ADMIN_EMAIL``, ``OAI_PAGE_SIZE`` (default 100).
Tokens are signed with a key derived from the app's ``SECRET_KEY``: a
public repository id would let anyone forge them, and a forged token would
reach whatever the token's decoder trusts.  Every malformed token state (a
list, a float, a huge number where a position belongs; arguments that no
longer parse) is ``badResumptionToken``, never a 500.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from urllib.parse import quote, unquote

from flask import Blueprint, Response, current_app, request
from lxml import etree

from harvester.raw import RawRecord
from normaliser.errors import RecordError
from publish.feed import MEMBER, MERGED, Item, Published, PublishedSet, Window, catalogue_sets, find_set, \
    merged_set_specs
from publish.marc import Models, item_marc
from publish.marcout import member_family, to_dc
from publish.writers import MARC_NS, marcxml_record, xml_text

from .context import services
from . import usage
from .oai_request import ListArgs, OaiError, list_position, make_token, parse_date, repository_id, request_args, \
    verb_of

bp = Blueprint("oai", __name__)

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_NS = "http://purl.org/dc/elements/1.1/"
DC_ELEMENTS = ("title", "creator", "subject", "description", "publisher", "contributor", "date", "type",
               "format", "identifier", "source", "language", "relation", "coverage", "rights")

#: prefix → (schema, namespace)
FORMATS = {
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC_NS),
    "marcxml": ("http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd", MARC_NS),
    # UNIMARC / CNMARC in MARCXML syntax (the slim schema is format-agnostic).
    "unimarc": ("http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd", MARC_NS),
}


def _q(name: str, ns: str = OAI_NS) -> str:
    return f"{{{ns}}}{name}"


def clean(text: object) -> str:
    """Text safe for XML 1.0 (lxml escapes markup; characters XML cannot carry are dropped)."""
    return xml_text(str(text))


def stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the endpoint ---------------------------------------------------------------

@bp.route("/oai", methods=["GET", "POST"])
def oai() -> Response:
    params = request.form if request.method == "POST" else request.args
    root = etree.Element(_q("OAI-PMH"), nsmap={None: OAI_NS, "xsi": XSI_NS})
    root.set(_q("schemaLocation", XSI_NS), f"{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd")
    etree.SubElement(root, _q("responseDate")).text = stamp(datetime.now(timezone.utc))
    req = etree.SubElement(root, _q("request"))
    req.text = clean(base_url())
    try:
        verb = verb_of(params)
        args = request_args(verb, params)
        for key, value in args.items():
            req.set(key, clean(value))
        req.set("verb", verb)
        root.append(VERBS[verb](args))
    except OaiError as exc:
        if exc.code in ("badVerb", "badArgument"):
            req.attrib.clear()  # the spec: echo no attributes for a request that was not understood
        err = etree.SubElement(root, _q("error"), code=exc.code)
        err.text = clean(exc.message)
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Response(body, mimetype="text/xml", headers={"Cache-Control": "no-store"})


def base_url() -> str:
    return request.base_url


# -- identifiers and sets ----------------------------------------------------------

def identifier(item: Item) -> str:
    if item.kind == MERGED:
        return f"oai:{repository_id()}:{item.cluster_id}"
    return f"oai:{repository_id()}:{item.source}:{quote(item.local_id, safe=':/@-._~')}"


def parse_identifier(value: str) -> Item | None:
    head = f"oai:{repository_id()}:"
    if not value.startswith(head):
        return None
    rest = value[len(head):]
    published = Published(services().engine)
    if ":" in rest:
        source, local = rest.split(":", 1)
        return published.member_item(source, unquote(local))
    return published.merged_item(rest)


def set_specs(item: Item) -> list[str]:
    if item.kind == MEMBER:
        return ["members", f"members:{item.source}"]
    return merged_set_specs(services().sources, item.members)


def formats_of(item: Item) -> list[str]:
    if item.kind == MERGED:
        return ["oai_dc", "marcxml"] + (["unimarc"] if item.is_unimarc or item.deleted else [])
    if item.deleted:
        return list(FORMATS)
    return member_formats(item.raw)


# -- lists -------------------------------------------------------------------------------

def windows(a: ListArgs) -> list[Window]:
    if a.prefix not in FORMATS:
        raise OaiError("cannotDisseminateFormat", f"metadataPrefix {a.prefix!r} is not offered "
                                                  f"(offered: {', '.join(FORMATS)})")
    start = parse_date(a.start, "from", False) if a.start else None
    end = parse_date(a.end, "until", True) if a.end else None
    if a.start and a.end and len(a.start) != len(a.end):
        raise OaiError("badArgument", "from and until must have the same granularity")
    marc = {"marcxml": "marc21", "unimarc": "unimarc"}.get(a.prefix)
    if a.set_spec is None:
        chosen = [PublishedSet("", "", MERGED), PublishedSet("", "", MEMBER)]
    else:
        found = find_set(services().sources, a.set_spec)
        if found is None:
            raise OaiError("noRecordsMatch", f"there is no set {a.set_spec!r} (see ListSets)")
        chosen = [found]
    out = []
    for s in chosen:
        # merged records are all offered as marcxml; only members are narrowed by their own format
        narrow = marc if (s.kind == MEMBER or marc == "unimarc") else None
        out.append(Window(kind=s.kind, sources=s.sources, start=start, end=end, marc=narrow))
    return out


# -- verbs -------------------------------------------------------------------------------

def identify(_args: dict) -> etree._Element:
    el = etree.Element(_q("Identify"))
    cfg = services().sources.consortium
    earliest = Published(services().engine).earliest() or datetime(2000, 1, 1)
    for name, value in (("repositoryName", cfg.name), ("baseURL", base_url()), ("protocolVersion", "2.0"),
                        ("adminEmail", current_app.config.get("OAI_ADMIN_EMAIL") or "catalogue@example.org"),
                        ("earliestDatestamp", stamp(earliest)), ("deletedRecord", "persistent"),
                        ("granularity", "YYYY-MM-DDThh:mm:ssZ")):
        etree.SubElement(el, _q(name)).text = clean(value)
    return el


def list_metadata_formats(args: dict) -> etree._Element:
    prefixes = list(FORMATS)
    if "identifier" in args:
        item = parse_identifier(args["identifier"])
        if item is None:
            raise OaiError("idDoesNotExist", f"no item has the identifier {args['identifier']!r}")
        prefixes = formats_of(item)
        if not prefixes:
            raise OaiError("noMetadataFormats", "this item is offered in no metadata format")
    el = etree.Element(_q("ListMetadataFormats"))
    for prefix in prefixes:
        fmt = etree.SubElement(el, _q("metadataFormat"))
        schema, ns = FORMATS[prefix]
        etree.SubElement(fmt, _q("metadataPrefix")).text = prefix
        etree.SubElement(fmt, _q("schema")).text = schema
        etree.SubElement(fmt, _q("metadataNamespace")).text = ns
    return el


def list_sets(args: dict) -> etree._Element:
    if "resumptionToken" in args:
        raise OaiError("badResumptionToken", "ListSets is complete in one response; there is nothing to resume")
    el = etree.Element(_q("ListSets"))
    for s in catalogue_sets(services().sources):
        node = etree.SubElement(el, _q("set"))
        etree.SubElement(node, _q("setSpec")).text = clean(s.spec)
        etree.SubElement(node, _q("setName")).text = clean(s.name)
    return el


def get_record(args: dict) -> etree._Element:
    item = parse_identifier(args["identifier"])
    if item is None:
        raise OaiError("idDoesNotExist", f"no item has the identifier {args['identifier']!r}")
    prefix = args["metadataPrefix"]
    if prefix not in FORMATS or prefix not in formats_of(item):
        raise OaiError("cannotDisseminateFormat", f"{args['identifier']} is not offered as {prefix!r}")
    el = etree.Element(_q("GetRecord"))
    _count_served([item])
    el.append(record_element(item, prefix, Published(services().engine).records))
    return el


def list_identifiers(args: dict) -> etree._Element:
    return _list("ListIdentifiers", args, full=False)


def list_records(args: dict) -> etree._Element:
    return _list("ListRecords", args, full=True)


def _list(verb: str, args: dict, full: bool) -> etree._Element:
    largs, stream, after, cursor, resumed = list_position(args)
    try:
        wins = windows(largs)
    except OaiError as exc:
        if not resumed:
            raise
        raise OaiError("badResumptionToken", f"the resumption token's arguments are not valid: {exc.message}") \
            from None
    if not 0 <= stream < len(wins):
        raise OaiError("badResumptionToken", "the resumption token points past the list")
    size = int(current_app.config.get("OAI_PAGE_SIZE") or 100)
    published = Published(services().engine)
    items: list[Item] = []
    position = (stream, after)
    more = False
    t, a = stream, after
    while t < len(wins):
        got = published.page(wins[t], a, size + 1 - len(items), full=full)
        items += got
        if len(items) > size:
            items = items[:size]
            more = True
            break
        t, a = t + 1, 0
    if items:
        last = items[-1]
        position = (next(i for i, w in enumerate(wins) if w.kind == last.kind and i >= stream), last.seq)
    if not items and not resumed:
        raise OaiError("noRecordsMatch", "no records match the arguments")
    el = etree.Element(_q(verb))
    if full:
        _count_served(items)
    for item in items:
        el.append(record_element(item, largs.prefix, published.records) if full else header_element(item))
    if more or resumed:
        total = sum(published.count(w) for w in wins)
        token_el = etree.SubElement(el, _q("resumptionToken"), completeListSize=str(total), cursor=str(cursor))
        if more:
            token_el.text = make_token({"v": 1, "m": largs.prefix, "s": largs.set_spec, "f": largs.start,
                                        "u": largs.end, "t": position[0], "q": position[1],
                                        "c": cursor + len(items)})
    return el


def _count_served(items: list[Item]) -> None:
    """Count the records served, and per member holding each live one its share (the ledger's
    "harvested by others"): one counter update for the page, written in the usage batch."""
    holders: Counter[str] = Counter()
    for item in items:
        if not item.deleted:
            holders.update({s for s, _ in item.members} if item.kind == MERGED else (item.source,))
    usage.count_served("oai_record", len(items), holders)


VERBS = {
    "Identify": identify, "ListMetadataFormats": list_metadata_formats, "ListSets": list_sets,
    "GetRecord": get_record, "ListIdentifiers": list_identifiers, "ListRecords": list_records,
}


# -- records -------------------------------------------------------------------------------

def header_element(item: Item) -> etree._Element:
    header = etree.Element(_q("header"))
    if item.deleted:
        header.set("status", "deleted")
    etree.SubElement(header, _q("identifier")).text = clean(identifier(item))
    etree.SubElement(header, _q("datestamp")).text = stamp(item.datestamp)
    for spec in set_specs(item):
        etree.SubElement(header, _q("setSpec")).text = clean(spec)
    return header


def record_element(item: Item, prefix: str, models: Models) -> etree._Element:
    rec = etree.Element(_q("record"))
    rec.append(header_element(item))
    if item.deleted:
        return rec
    metadata = etree.SubElement(rec, _q("metadata"))
    metadata.append(metadata_element(item, prefix, models))
    return rec


def metadata_element(item: Item, prefix: str, models: Models) -> etree._Element:
    """Dublin Core from the model, or the MARC every path out gives (:func:`publish.marc.item_marc`)."""
    if prefix == "oai_dc":
        record = item.cluster.record if item.kind == MERGED else models.get(item.source, item.local_id)
        return dc_element(to_dc(record) if record is not None else {})
    el = marcxml_record(item_marc(item, models, unimarc=prefix == "unimarc"))
    el.set(_q("schemaLocation", XSI_NS), f"{MARC_NS} {FORMATS['marcxml'][0]}")
    return el


def member_formats(raw: RawRecord) -> list[str]:
    """A member record is offered in its own MARC family (and Dublin Core); one that is not MARC, as DC only."""
    try:
        family = member_family(raw)
    except RecordError:
        family = "dc"
    return ["oai_dc"] + {"marc21": ["marcxml"], "unimarc": ["unimarc"]}.get(family, [])


def dc_element(values: dict[str, list[str]]) -> etree._Element:
    dc = etree.Element(_q("dc", OAI_DC_NS), nsmap={"oai_dc": OAI_DC_NS, "dc": DC_NS, "xsi": XSI_NS})
    dc.set(_q("schemaLocation", XSI_NS), f"{OAI_DC_NS} {FORMATS['oai_dc'][0]}")
    for name in DC_ELEMENTS:
        for value in values.get(name, []):
            if value:
                etree.SubElement(dc, _q(name, DC_NS)).text = clean(value)
    return dc
