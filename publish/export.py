"""File exports of the catalogue or one of its sets: ISO 2709, MARCXML or JSON lines, streamed.

An export walks :class:`publish.feed.Published` in change order and
yields chunks of bytes, each ending on a record boundary, paired with the
sequence number of the last item in it — so a writer can remember where a
download stopped and resume from there (``after``), and a reader of a JSON
lines export can read the position off the last line.

What goes out is :func:`publish.marc.item_marc`'s MARC for each item, the
same as every other path out (merged records, member records with their
``035 $a (UNIONCAT)<cluster id>``, unreadable member records rebuilt from the
model).  Deletions go out only when asked for (incremental exports): the
deleted-record MARC (leader/05 ``d``, just the 001), or ``"deleted": true``
in JSON lines.  A full export lists what is live.
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

from pymarc import Record as MarcRecord

from .feed import MERGED, Item, Published, Window
from .marc import item_marc
from .writers import COLLECTION_HEAD, COLLECTION_TAIL, marcxml_bytes, to_iso2709, to_marc_json

FORMATS = ("iso2709", "marcxml", "jsonl")
MEDIA_TYPES = {"iso2709": "application/marc", "marcxml": "application/marcxml+xml",
               "jsonl": "application/x-ndjson"}
EXTENSIONS = {"iso2709": "mrc", "marcxml": "xml", "jsonl": "jsonl"}


def item_json(item: Item, marc: MarcRecord) -> dict:
    """One JSON line: what the item is, where it stands in the feed, and its MARC-in-JSON when live."""
    updated = item.datestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if item.kind == MERGED:
        out = {"kind": "merged", "id": item.cluster_id, "seq": item.seq, "updated": updated, "deleted": item.deleted}
        if item.cluster is not None:
            out["members"] = [list(m) for m in item.cluster.members]
    else:
        out = {"kind": "member", "source": item.source, "local_id": item.local_id, "cluster_id": item.cluster_of,
               "seq": item.seq, "updated": updated, "deleted": item.deleted}
    if not item.deleted:
        out["marc"] = to_marc_json(marc)
    return out


def _serialise(item: Item, marc: MarcRecord, fmt: str) -> bytes:
    if fmt == "jsonl":
        return json.dumps(item_json(item, marc), ensure_ascii=False).encode("utf-8") + b"\n"
    return to_iso2709(marc) if fmt == "iso2709" else marcxml_bytes(marc)


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
        yield COLLECTION_HEAD, last
    while True:
        items = published.page(window, last, batch, full=True)
        if not items:
            break
        yield b"".join(_serialise(item, item_marc(item, published.records), fmt) for item in items
                       if deletions or not item.deleted), items[-1].seq
        last = items[-1].seq
        if len(items) < batch:
            break
    if fmt == "marcxml":
        yield COLLECTION_TAIL, last


def gzip_chunks(chunks: Iterator[tuple[bytes, int]]) -> Iterator[tuple[bytes, int]]:
    """Each chunk as a complete gzip member: concatenated members are one valid gzip file,
    and a file cut after any chunk can be resumed by appending."""
    for data, seq in chunks:
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
        yield comp.compress(data) + comp.flush(), seq
