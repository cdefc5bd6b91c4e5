"""One way out of the catalogue: the MARC record every path gives for a published item.

OAI-PMH (``marcxml`` and ``unimarc``), the record and basket downloads, the
JSON API's and ``unioncat export``'s files, ``unioncat record --format
marc|marcxml`` (:func:`record_output`) and the Zebra publish all ask
:func:`item_marc`, so one item is the same MARC wherever it leaves:

* a merged item — :func:`publish.marcout.merged_marc`: 001 the cluster id,
  035 per member, 852 per holding, built on the base member's own MARC 21
  when it sent some, else on the model;
* a member item — the member's own record decoded to UTF-8
  (:func:`publish.marcout.member_marc`) plus ``035 $a (UNIONCAT)<cluster
  id>`` so the library can reconcile its records with the union catalogue;
* a deleted item — leader/05 ``d`` and its 001 (the cluster id, or the
  member's local id): what an incremental export carries and all that
  ``zebraidx delete`` needs.

**An unreadable member record** (a payload the readers refuse: damaged ISO
2709, Dublin Core, an undecodable character set) is decided here once for
every path: it leaves as MARC 21 rebuilt from its normalised model
(:func:`publish.marcout.record_to_marc21`) with the member's local id in 001
and the same 035 — or, when the normaliser refused it too and there is no
model, as just that 001 and 035.  Never ``None``, a 404 or a 500, whichever
path asks.  Each fallback is logged as a warning; the record is already
counted where it went wrong (the normaliser's quarantine, or the staff
quality report), so it is not counted a second time here.
"""
from __future__ import annotations

import logging
from typing import Protocol

from pymarc import Field, Indicators, Subfield
from pymarc import Record as MarcRecord
from sqlalchemy.engine import Engine

from normaliser.errors import RecordError
from normaliser.model import Record

from . import marcout
from .feed import MERGED, Item, Published
from .writers import to_iso2709, to_marcxml

__all__ = ["CLUSTER_PREFIX", "item_marc", "record_output", "Models", "HasEngine"]

log = logging.getLogger(__name__)
CLUSTER_PREFIX = "(UNIONCAT)"
OUTPUT_FORMATS = ("marc", "marcxml")


class Models(Protocol):
    """Where a member's normalised model is found (:class:`normaliser.store.RecordStore`)."""

    def get(self, source: str, local_id: str) -> Record | None: ...


class HasEngine(Protocol):
    """What reads the catalogue: anything with its database engine (``unioncat.pipeline.Catalogue``)."""

    engine: Engine


def item_marc(item: Item, models: Models | None = None, unimarc: bool = False) -> MarcRecord:
    """The MARC ``item`` leaves the catalogue as (see the module docstring for the policy).

    ``models`` finds an unreadable member record's model (without it, the
    fallback is the bare 001/035 record).  ``unimarc`` asks for a merged
    item in UNIMARC, as OAI-PMH's ``unimarc`` format does: its base member's
    own record, which is UNIMARC when the cluster's display record is.
    """
    if item.deleted:
        return _deleted(item.cluster_id if item.kind == MERGED else item.local_id)
    if item.kind == MERGED:
        if not unimarc:
            return marcout.merged_marc(item.cluster, base_raw=item.base)
        try:
            if item.base is not None:
                return marcout.member_marc(item.base)
        except RecordError as exc:
            log.warning("%s: base record unreadable (%s); published from the model", item.cluster_id, exc)
        return marcout.record_to_marc21(item.cluster.record)
    try:
        marc = marcout.member_marc(item.raw)
    except RecordError as exc:
        marc = _rebuilt(item, models, exc)
    if item.cluster_of:
        marc.add_ordered_field(Field("035", Indicators(" ", " "), [Subfield("a", CLUSTER_PREFIX + item.cluster_of)]))
    return marc


def _deleted(control_number: str) -> MarcRecord:
    marc = MarcRecord(force_utf8=True)
    marc.leader = marc.leader[:5] + "d" + marc.leader[6:]
    marc.add_field(Field("001", data=control_number))
    return marc


def _rebuilt(item: Item, models: Models | None, why: RecordError) -> MarcRecord:
    """An unreadable member record as MARC 21 from its model, or just its 001 when there is none."""
    model = models.get(item.source, item.local_id) if models is not None else None
    log.warning("%s:%s unreadable as MARC (%s); published %s", item.source, item.local_id, why,
                "from its normalised model" if model is not None else "as its 001 alone (no model)")
    marc = marcout.record_to_marc21(model) if model is not None else MarcRecord(force_utf8=True)
    marc.remove_fields("001")
    marc.fields.insert(0, Field("001", data=item.local_id))
    return marc


def record_output(catalogue: HasEngine, cluster_id: str, fmt: str) -> bytes:
    """What ``unioncat record --format marc|marcxml`` prints: the member records behind a catalogue entry.

    Each is :func:`item_marc`'s member record (decoded to UTF-8 — a GBK
    CNMARC member comes out as Unicode UNIMARC — with its 035 (UNIONCAT)),
    as ISO 2709 (``marc``) or one MARCXML collection (``marcxml``).  Raises
    ``LookupError`` when ``cluster_id`` is not a live cluster.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown record format {fmt!r}; expected one of {', '.join(OUTPUT_FORMATS)}")
    published = Published(catalogue.engine)
    merged = published.merged_item(cluster_id)
    if merged is None or merged.deleted:
        raise LookupError(cluster_id)
    members = [published.member_item(source, local_id) for source, local_id in merged.members]
    records = [item_marc(m, published.records) for m in members if m is not None and not m.deleted]
    return b"".join(to_iso2709(r) for r in records) if fmt == "marc" else to_marcxml(records)
