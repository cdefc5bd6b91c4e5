"""A loopback OAI-PMH data provider for tests, the demo and the benchmark.

The protocol is done by a real, independent implementation — the ``oaipmh``
package's ``BatchingServer`` (the server half of pyoai) — so our harvester is
tested against someone else's reading of OAI-PMH, not against our own.  This
module only feeds it data: a *mutable* list of :class:`OaiRecord` (tests add,
change and delete records between harvests) and metadata writers that put
each record's stored MARCXML under ``<metadata>``.

Two deviations from the package's defaults, both to behave like real members:
a day-granularity repository answers ``badArgument`` when asked for seconds
(ILS-NOTES §15), and deleted records are persistent.

Run it on its own with ``python -m demo.oai_member --port 8070 --records dump.xml``.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.util import application_uri

from lxml import etree
from oaipmh import common, error
from oaipmh.metadata import MetadataRegistry
from oaipmh.server import BatchingServer, oai_dc_writer

from harvester.clients.xmlsafe import parse_xml
from normaliser.marcxml import MARC_NS

SECONDS = "YYYY-MM-DDThh:mm:ssZ"
DAY = "YYYY-MM-DD"
MARC_SCHEMA = "http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd"
FORMATS = [
    ("marc21", MARC_SCHEMA, MARC_NS),
    ("marcxml", MARC_SCHEMA, MARC_NS),
    ("oai_dc", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd", "http://www.openarchives.org/OAI/2.0/oai_dc/"),
]

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


@dataclass
class OaiRecord:
    """One record of the demo repository (``datestamp`` in UTC; naive means UTC)."""

    identifier: str
    datestamp: datetime
    sets: list[str] = field(default_factory=list)
    deleted: bool = False
    marcxml: bytes = b""


def _naive_utc(value: datetime) -> datetime:
    """oaipmh only accepts naive datetimes (in UTC)."""
    if value.tzinfo is None and not value.microsecond:
        return value  # the common case, on every record of every request: keep it cheap
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _marc_writer(element: etree._Element, metadata: common.Metadata) -> None:
    element.append(parse_xml(metadata["marcxml"]))


def _dc_fields(marcxml: bytes, identifier: str) -> dict[str, list[str]]:
    """A minimal Dublin Core view of a MARC record (title, creator, date)."""
    fields: dict[str, list[str]] = {"identifier": [identifier]}
    if not marcxml:
        return fields
    root = parse_xml(marcxml)
    ns = {"m": MARC_NS} if etree.QName(root).namespace == MARC_NS else None
    p = "m:" if ns else ""
    for name, tag, code in (("title", "245", "a"), ("creator", "100", "a"), ("date", "260", "c"),
                            ("publisher", "260", "b")):
        values = root.xpath(f"{p}datafield[@tag='{tag}']/{p}subfield[@code='{code}']/text()", namespaces=ns)
        if values:
            fields[name] = [str(v).strip(" /:;,") for v in values]
    return fields


class _RecordMetadata(common.Metadata):
    """A record's metadata for the writers; the Dublin Core view is built only when asked for."""

    def __init__(self, rec: OaiRecord):
        super().__init__(None, {"marcxml": rec.marcxml})
        self._rec = rec

    def getMap(self) -> dict[str, Any]:
        if len(self._map) == 1:
            self._map.update(_dc_fields(self._rec.marcxml, self._rec.identifier))
        return self._map


class _Repository:
    """The ``IBatchingOAI`` implementation over a list of records.

    Reads the list on every request, so callers may change it at any time.
    """

    def __init__(self, records: list[OaiRecord], name: str, base_url: str | None, granularity: str):
        self.records, self.name, self.granularity = records, name, granularity
        self.base_url = base_url or "http://127.0.0.1/oai"
        self._order: tuple[int, list[OaiRecord]] | None = None

    def identify(self) -> common.Identify:
        stamps = [_naive_utc(r.datestamp) for r in self.records]
        earliest = min(stamps) if stamps else datetime(2000, 1, 1)
        return common.Identify(
            repositoryName=self.name, baseURL=self.base_url, protocolVersion="2.0",
            adminEmails=["catalogue@example.org"], earliestDatestamp=earliest, deletedRecord="persistent",
            granularity=self.granularity, compression=["identity"],
        )

    def listMetadataFormats(self, identifier: str | None = None) -> list[tuple[str, str, str]]:
        if identifier is not None and not any(r.identifier == identifier for r in self.records):
            raise error.IdDoesNotExistError(f"No record with identifier {identifier}")
        return FORMATS

    def listSets(self, cursor: int = 0, batch_size: int = 10) -> list[tuple[str, str, None]]:
        specs = sorted({s for r in self.records for s in r.sets})
        if not specs:
            raise error.NoSetHierarchyError("This repository does not support sets.")
        return [(s, s, None) for s in specs][int(cursor):int(cursor) + int(batch_size)]

    def _select(self, metadataPrefix: str, set: str | None, from_: datetime | None, until: datetime | None,
                cursor: int, batch_size: int) -> list[OaiRecord]:
        if metadataPrefix not in {f[0] for f in FORMATS}:
            raise error.CannotDisseminateFormatError(f"Unknown metadata format: {metadataPrefix}")
        chosen = self._sorted()
        if set:
            chosen = [r for r in chosen if set in r.sets]
        if from_ is not None:
            chosen = [r for r in chosen if _naive_utc(r.datestamp) >= from_]
        if until is not None:
            chosen = [r for r in chosen if _naive_utc(r.datestamp) <= until]
        return chosen[int(cursor):int(cursor) + int(batch_size)]

    def _sorted(self) -> list[OaiRecord]:
        """Records in datestamp order, re-sorted only when the list changed (pages of a big
        repository would otherwise each sort every record: quadratic in a full harvest)."""
        fingerprint = hash(tuple((id(r), r.identifier, r.datestamp, r.deleted) for r in self.records))
        if self._order is None or self._order[0] != fingerprint:
            self._order = (fingerprint, sorted(self.records, key=lambda r: (_naive_utc(r.datestamp), r.identifier)))
        return self._order[1]

    def _header(self, rec: OaiRecord) -> common.Header:
        return common.Header(None, rec.identifier, _naive_utc(rec.datestamp), list(rec.sets), rec.deleted)

    def _metadata(self, rec: OaiRecord) -> common.Metadata | None:
        return None if rec.deleted else _RecordMetadata(rec)

    def listRecords(self, metadataPrefix: str, set: str | None = None, from_: datetime | None = None,
                    until: datetime | None = None, cursor: int = 0, batch_size: int = 10) -> list[tuple]:
        return [(self._header(r), self._metadata(r), None)
                for r in self._select(metadataPrefix, set, from_, until, cursor, batch_size)]

    def listIdentifiers(self, metadataPrefix: str, set: str | None = None, from_: datetime | None = None,
                        until: datetime | None = None, cursor: int = 0, batch_size: int = 10) -> list:
        return [self._header(r) for r in self._select(metadataPrefix, set, from_, until, cursor, batch_size)]

    def getRecord(self, metadataPrefix: str, identifier: str) -> tuple:
        if metadataPrefix not in {f[0] for f in FORMATS}:
            raise error.CannotDisseminateFormatError(f"Unknown metadata format: {metadataPrefix}")
        for rec in self.records:
            if rec.identifier == identifier:
                return self._header(rec), self._metadata(rec), None
        raise error.IdDoesNotExistError(f"No record with identifier {identifier}")


class _Server(BatchingServer):
    """``BatchingServer`` that refuses datestamps finer than the repository's granularity."""

    def __init__(self, repository: _Repository, registry: MetadataRegistry, batch_size: int):
        super().__init__(repository, metadata_registry=registry, resumption_batch_size=batch_size)
        self.repository = repository

    def handleRequest(self, request_kw: dict[str, str]) -> bytes:
        if self.repository.granularity == DAY:
            for key in ("from", "until"):
                if "T" in request_kw.get(key, ""):
                    try:
                        raise error.BadArgumentError(
                            f"The value '{request_kw[key]}' of the argument '{key}' is finer than "
                            f"this repository's granularity ({DAY}).")
                    except error.BadArgumentError:
                        return self.handleException(request_kw, sys.exc_info())
        return super().handleRequest(request_kw)


class OaiApp:
    """The WSGI application: request parameters in, the server's XML out."""

    def __init__(self, server: _Server, fixed_base_url: bool):
        self.server = server
        self._fixed_base_url = fixed_base_url

    @property
    def records(self) -> list[OaiRecord]:
        return self.server.repository.records

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length).decode("utf-8", "replace")
            for key, values in parse_qs(body, keep_blank_values=True).items():
                params.setdefault(key, []).extend(values)
        if not self._fixed_base_url:
            self.server.repository.base_url = application_uri(environ).rstrip("/") + \
                (environ.get("PATH_INFO") or "")
        repeated = [k for k, v in params.items() if len(v) > 1]
        if repeated:
            try:
                raise error.BadArgumentError(f"Repeated argument(s): {', '.join(repeated)}")
            except error.BadArgumentError:
                body_bytes = self.server.handleException(params, sys.exc_info())
        else:
            body_bytes = self.server.handleRequest({k: v[0] for k, v in params.items()})
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"),
                                  ("Content-Length", str(len(body_bytes)))])
        return [body_bytes]


def make_app(records: list[OaiRecord], repository_name: str = "unioncat demo repository",
             base_url: str | None = None, batch_size: int = 100, granularity: str = SECONDS) -> OaiApp:
    """A WSGI OAI-PMH provider over ``records`` (the list itself, not a copy).

    ``batch_size`` records per ListRecords page; ``granularity`` is
    ``YYYY-MM-DDThh:mm:ssZ`` or ``YYYY-MM-DD``.  The base URL Identify reports
    is taken from each request unless ``base_url`` is given.
    """
    if granularity not in (SECONDS, DAY):
        raise ValueError(f"granularity must be {SECONDS!r} or {DAY!r}")
    registry = MetadataRegistry()
    registry.registerWriter("marc21", _marc_writer)
    registry.registerWriter("marcxml", _marc_writer)
    registry.registerWriter("oai_dc", oai_dc_writer)
    repository = _Repository(records, repository_name, base_url, granularity)
    return OaiApp(_Server(repository, registry, batch_size), fixed_base_url=base_url is not None)


def serve(app: WSGIApp, host: str = "127.0.0.1", port: int = 0, threads: int = 4,
          **adjustments) -> tuple[str, Callable[[], None]]:
    """Run ``app`` with waitress in a daemon thread; returns ``(base_url, stop)``.

    The serving loop polls in short steps and closes every socket from its own
    thread when stopped: waitress's own ``run`` only ends when every
    keep-alive connection has gone, which would make each test wait.  ``adjustments`` go to waitress
    (e.g. :func:`web.origin.waitress_options` for an app behind reverse proxies).
    """
    from waitress import wasyncore
    from waitress.server import create_server

    server = create_server(app, host=host, port=port, threads=threads, ident="unioncat-demo", **adjustments)
    stopping = threading.Event()
    sockets = getattr(server, "_map", None) or server.map  # one listener, or several (MultiSocketServer)

    def run() -> None:
        try:
            while not stopping.is_set():
                wasyncore.loop(timeout=0.05, map=sockets, count=1)
        finally:
            server.task_dispatcher.shutdown()
            wasyncore.close_all(sockets)

    thread = threading.Thread(target=run, name=f"oai-provider-{server.effective_port}", daemon=True)
    thread.start()
    url = f"http://{host}:{server.effective_port}/oai"

    def stop() -> None:
        stopping.set()
        thread.join(timeout=5)

    return url, stop


def records_from_files(paths: Iterable[Path], prefix: str = "oai:demo:",
                       datestamp: datetime | None = None, sets: Iterable[str] = ()) -> list[OaiRecord]:
    """:class:`OaiRecord` for every MARC record in dump files (ISO 2709 or MARCXML)."""
    import pymarc

    from harvester.clients.dumps import read_path
    from harvester.raw import RawRecord

    stamp = datestamp or datetime.now(timezone.utc)
    out = []
    for path in paths:
        for item in read_path(Path(path), "demo"):
            if not isinstance(item, RawRecord):
                continue
            marcxml = item.payload
            if item.syntax == "iso2709":
                try:
                    marcxml = pymarc.record_to_xml(pymarc.Record(data=item.payload, force_utf8=True),
                                                   namespace=True)
                except Exception:  # noqa: BLE001 - a demo feed skips records pymarc cannot read
                    continue
            out.append(OaiRecord(identifier=f"{prefix}{item.local_id}", datestamp=stamp, sets=list(sets),
                                 marcxml=marcxml))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.oai_member",
                                     description="Serve MARC dump files as an OAI-PMH repository.")
    parser.add_argument("--records", nargs="+", required=True, type=Path, help="ISO 2709 or MARCXML files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8070)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--granularity", choices=(SECONDS, DAY), default=SECONDS)
    parser.add_argument("--name", default="unioncat demo repository")
    parser.add_argument("--prefix", default="oai:demo:", help="prefix of OAI identifiers")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="setSpec of every record")
    args = parser.parse_args(argv)
    records = records_from_files(args.records, prefix=args.prefix, sets=args.sets)
    app = make_app(records, repository_name=args.name, batch_size=args.batch_size, granularity=args.granularity)
    url, stop = serve(app, host=args.host, port=args.port)
    print(f"serving {len(records)} records at {url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
