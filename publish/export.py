"""File exports of the catalogue or one of its sets: ISO 2709, MARCXML or JSON lines, streamed.

An export walks :class:`publish.feed.Published` in change order and
yields chunks of bytes, each ending on a record boundary, paired with the
sequence number of the last item in it — so a writer can remember where a
download stopped and resume from there (``after``), and a reader of a JSON
lines export can read the position off the last line.

What goes out:

* merged records — MARC 21 from :func:`publish.marcout.merged_marc` (001 the
  cluster id, 035 per member, 852 per holding);
* member records — the member's own record (:func:`publish.marcout.member_marc`)
  with one added ``035 $a (UNIONCAT)<cluster id>`` so the library can
  reconcile its records with the union catalogue;
* deletions — only when asked for (incremental exports): a MARC record with
  leader/05 ``d`` and just its 001, or ``"deleted": true`` in JSON lines.
  A full export lists what is live.
"""
from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator

from lxml import etree
from pymarc import Field, Indicators, Subfield
from pymarc import Record as MarcRecord

from normaliser.errors import RecordError

from . import marcout
from publish.feed import MERGED, Item, Published, Window

FORMATS = ("iso2709", "marcxml", "jsonl")
MEDIA_TYPES = {"iso2709": "application/marc", "marcxml": "application/marcxml+xml",
               "jsonl": "application/x-ndjson"}
EXTENSIONS = {"iso2709": "mrc", "marcxml": "xml", "jsonl": "jsonl"}
CLUSTER_PREFIX = "(UNIONCAT)"
_XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<collection xmlns="http://www.loc.gov/MARC21/slim">\n'
_XML_TAIL = b"</collection>\n"
_XML_CHAR = re.compile(r"^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")


def marcxml_element(marc: MarcRecord) -> etree._Element:
    """``marcout.marcxml_record``, surviving members' broken structure.

    Values are cleaned by marcout, but a tag, indicator or subfield code can
    itself be a control character in a damaged ISO 2709 record, which XML
    cannot carry: such subfields and fields are dropped rather than failing a
    whole OAI-PMH page or export.
    """
    try:
        return marcout.marcxml_record(marc)
    except ValueError:
        pass
    ok = _XML_CHAR.match
    keep = []
    for f in marc.fields:
        if not ok(f.tag):
            continue
        if not f.control_field:
            if not (ok(f.indicator1 or " ") and ok(f.indicator2 or " ")):
                continue
            f.subfields = [sub for sub in f.subfields if ok(sub.code or " ")]
        keep.append(f)
    marc.fields = keep
    return marcout.marcxml_record(marc)


def item_marc(item: Item, base=None) -> MarcRecord | None:
    """The MARC an item exports as (None for a member record that is not MARC: Dublin Core)."""
    if item.deleted:
        marc = MarcRecord(force_utf8=True)
        marc.leader = marc.leader[:5] + "d" + marc.leader[6:]
        marc.add_field(Field("001", data=item.cluster_id if item.kind == MERGED else item.local_id))
        return marc
    if item.kind == MERGED:
        return marcout.merged_marc(item.cluster, base_raw=base)
    try:
        marc = marcout.member_marc(item.raw)
    except RecordError:
        return None
    if item.cluster_of:
        marc.add_ordered_field(Field("035", Indicators(" ", " "), [Subfield("a", CLUSTER_PREFIX + item.cluster_of)]))
    return marc


def item_json(item: Item, marc: MarcRecord | None) -> dict:
    if item.kind == MERGED:
        out = {"kind": "merged", "id": item.cluster_id, "seq": item.seq,
               "updated": item.datestamp.strftime("%Y-%m-%dT%H:%M:%SZ"), "deleted": item.deleted}
        if item.cluster is not None:
            out["members"] = [list(m) for m in item.cluster.members]
    else:
        out = {"kind": "member", "source": item.source, "local_id": item.local_id, "cluster_id": item.cluster_of,
               "seq": item.seq, "updated": item.datestamp.strftime("%Y-%m-%dT%H:%M:%SZ"), "deleted": item.deleted}
    if marc is not None and not item.deleted:
        out["marc"] = marcout.to_marc_json(marc)
    return out


def export_chunks(published: Published, window: Window, fmt: str, after: int = 0, deletions: bool = False,
                  head: bool = True, batch: int = 500) -> Iterator[tuple[bytes, int]]:
    """``(bytes, last seq)`` chunks of an export of the items after ``after``.

    ``deletions`` includes retired items (for incremental exports); ``head``
    False leaves out the MARCXML head (a resumed file already has it).  The
    MARCXML tail comes in a last chunk of its own.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    last = after
    if fmt == "marcxml" and head:
        yield _XML_HEAD, last
    while True:
        items = published.page(window, last, batch, full=True)
        if not items:
            break
        bases = published.raws([(i.cluster.record.source, i.cluster.record.local_id) for i in items
                                if i.kind == MERGED and i.cluster is not None])
        parts: list[bytes] = []
        for item in items:
            if item.deleted and not deletions:
                continue
            base = bases.get((item.cluster.record.source, item.cluster.record.local_id)) if item.cluster else None
            marc = item_marc(item, base)
            if fmt == "jsonl":
                parts.append(json.dumps(item_json(item, marc), ensure_ascii=False).encode("utf-8") + b"\n")
            elif marc is None:
                continue
            elif fmt == "iso2709":
                parts.append(marcout.to_iso2709(marc))
            else:
                parts.append(etree.tostring(marcxml_element(marc), encoding="UTF-8") + b"\n")
        last = items[-1].seq
        yield b"".join(parts), last
        if len(items) < batch:
            break
    if fmt == "marcxml":
        yield _XML_TAIL, last


def gzip_chunks(chunks: Iterator[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
    """Each chunk as a complete gzip member: concatenated members are one valid gzip file,
    and a file cut after any chunk can be resumed by appending."""
    for data, seq in chunks:
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
        yield comp.compress(data) + comp.flush(), seq
