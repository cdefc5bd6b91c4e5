"""Member dumps: ISO 2709 and MARCXML files or folders of them.

Members without OAI-PMH send exports.  Those files come from a dozen
different ILSs and are often damaged: leaders whose lengths count characters
rather than bytes, records cut off by a failed transfer, junk after the last
record, MARCXML without a root element.  The reader therefore trusts the
record terminator (0x1D) rather than leader lengths, never decodes the data
(any character set; the normaliser decides), and turns each damaged piece into
a :class:`QuarantinedItem` so one bad record never loses the rest of a dump.

A piece of damage that means the *file* is incomplete (a truncated record at
the end, broken XML) is a :class:`StreamBroken` item: the harvest then skips
its "delete what the dump no longer has" step, since the dump may simply be
missing the records it would delete.
"""
from __future__ import annotations

import copy
import fnmatch
import hashlib
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lxml import etree

from ..errors import HarvestError
from ..raw import QuarantinedItem, RawRecord
from .xmlsafe import MARC_NS, InvalidXMLError, UnsafeXMLError, check_prolog, iterparse

DEFAULT_PATTERNS = ("*.mrc", "*.marc", "*.iso", "*.001", "*.dat", "*.xml", "*.utf8", "*.marcxml")
RECORD_TERMINATOR = b"\x1d"
FIELD_TERMINATOR = b"\x1e"
_BLOCK = 1 << 20
_WRAPPER = b"unioncat-wrapper"
_SKIP_BYTES = b" \t\r\n\x00\x1a"  # newlines between records, NULs, DOS end-of-file


class DumpError(HarvestError, ValueError):
    """The dump as a whole cannot be read (missing, empty, unreadable)."""


@dataclass
class StreamBroken(QuarantinedItem):
    """Quarantined because the file stops being readable here: the dump is incomplete."""


def read_path(path: Path, source_id: str, format: str = "marc21", encoding: str | None = None,
              pattern: str | None = None) -> Iterator[RawRecord | QuarantinedItem]:
    """Every record in a dump file, or in the matching files under a folder.

    ``pattern`` is one or more globs separated by commas or spaces (default
    :data:`DEFAULT_PATTERNS`); folders are walked recursively in sorted order
    so record order, and ``file#n`` ids, are stable between runs.
    ``encoding`` decodes 001 in ISO 2709 (never the payload) and overrides
    the declaration of MARCXML files.  Raises :class:`DumpError` when the path
    is missing, holds no matching file, or a file is empty or unreadable.
    """
    path = Path(path)
    files = dump_files(path, pattern)
    base = path if path.is_dir() else path.parent
    for file in files:
        yield from read_file(file, source_id, format, encoding, name=file.relative_to(base).as_posix())


def dump_files(path: Path, pattern: str | None = None) -> list[Path]:
    """The files a dump path stands for (itself, or the matching files under a folder, in order)."""
    if not path.exists():
        raise DumpError(f"{path}: no such file or folder")
    if not path.is_dir():
        return [path]
    files = list(matching_files(path, pattern))
    if not files:
        raise DumpError(f"{path}: no files matching {pattern or ' '.join(DEFAULT_PATTERNS)}")
    return files


#: A file modified this recently may be written again within the clock's resolution with the
#: same size and mtime: its stat digest is not trusted (git's "racy clean" rule).
RACY_NS = 2 * 10**9
RACY = "-" * 16


def stat_digest(files: list[Path]) -> str:
    """16 hex digits over each file's name, size and mtime_ns: equal means "not touched", without a read.

    :data:`RACY` (never equal to a digest) when a file changed in the last two seconds."""
    h = hashlib.blake2b(digest_size=8)
    now = time.time_ns()
    for file in files:
        st = file.stat()
        if now - st.st_mtime_ns < RACY_NS:
            return RACY
        h.update(f"{file}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def content_digest(files: list[Path]) -> str:
    """16 hex digits over the files' bytes: one sequential read, about a second per GB, instead of
    parsing and hashing every record to learn that a touched dump did not change."""
    h = hashlib.blake2b(digest_size=8)
    for file in files:
        try:
            with open(file, "rb") as handle:
                while block := handle.read(_BLOCK):
                    h.update(block)
        except OSError as exc:
            raise DumpError(f"{file}: cannot read: {exc.strerror or exc}") from None
        h.update(b"\0" + file.name.encode() + b"\n")
    return h.hexdigest()


def matching_files(folder: Path, pattern: str | None) -> Iterator[Path]:
    globs = pattern.replace(",", " ").split() if pattern else list(DEFAULT_PATTERNS)
    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in names:
            if any(fnmatch.fnmatch(name.lower(), g.lower()) for g in globs):
                found.append(Path(root) / name)
    yield from sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_file(file: Path, source_id: str, format: str = "marc21", encoding: str | None = None,
              name: str | None = None) -> Iterator[RawRecord | QuarantinedItem]:
    """Records of one file, ISO 2709 or MARCXML (sniffed from the first bytes)."""
    name = name or file.name
    try:
        handle = open(file, "rb")
    except OSError as exc:
        raise DumpError(f"{file}: cannot read: {exc.strerror or exc}") from None
    with handle:
        try:
            head = handle.read(4096)
            if not head.strip(_SKIP_BYTES):
                raise DumpError(f"{file}: empty file (no records)")
            handle.seek(0)
            if _looks_like_xml(head):
                yield from _read_marcxml(handle, head, source_id, format, encoding, name)
            else:
                yield from _read_iso2709(handle, source_id, format, encoding, name)
        except OSError as exc:  # a disk or network-share failure half-way: the dump cannot be read
            raise DumpError(f"{file}: cannot read: {exc.strerror or exc}") from None


def _looks_like_xml(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip(_SKIP_BYTES)
    return stripped.startswith(b"<")


# -- ISO 2709 ------------------------------------------------------------------
def _chunks(handle: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Split a stream on the record terminator; yields (chunk, terminated)."""
    rest = b""
    while True:
        block = handle.read(_BLOCK)
        if not block:
            break
        rest += block
        parts = rest.split(RECORD_TERMINATOR)
        rest = parts.pop()
        for part in parts:
            yield part + RECORD_TERMINATOR, True
    if rest:
        yield rest, False


def _read_iso2709(handle: IO[bytes], source_id: str, format: str, encoding: str | None,
                  name: str) -> Iterator[RawRecord | QuarantinedItem]:
    n = 0
    for chunk, terminated in _chunks(handle):
        chunk = chunk.lstrip(_SKIP_BYTES)
        if not terminated and not chunk.strip(_SKIP_BYTES):
            continue  # a newline after the last record
        if terminated and chunk == RECORD_TERMINATOR:
            continue  # an empty record between two terminators
        n += 1
        fallback = f"{name}#{n}"
        problem = leader_problem(chunk)
        if not terminated and problem is None and chunk.endswith(FIELD_TERMINATOR) \
                and int(chunk[:5]) == len(chunk) + 1:
            # complete by its own leader, only the final terminator is missing: add it
            chunk, terminated = chunk + RECORD_TERMINATOR, True
        if not terminated:
            if problem is None or chunk[:5].isdigit():
                yield StreamBroken(source_id, fallback, f"{name}: record {n} is truncated: the file ends "
                                   f"without a record terminator (0x1D) after {len(chunk)} bytes", chunk)
            else:
                yield QuarantinedItem(source_id, fallback, f"{name}: {len(chunk)} bytes of trailing junk "
                                      "after the last record", chunk)
            continue
        if problem is not None:
            yield QuarantinedItem(source_id, fallback, f"{name}: record {n}: bad leader: {problem}", chunk)
            continue
        try:
            control = control_number(chunk, encoding)
        except ValueError as exc:
            yield QuarantinedItem(source_id, fallback, f"{name}: record {n}: {exc}", chunk)
            continue
        yield RawRecord(source=source_id, local_id=control or fallback, payload=chunk, syntax="iso2709",
                        format=format)


def leader_problem(chunk: bytes) -> str | None:
    """Why ``chunk`` does not start with an ISO 2709 leader, or None if it does.

    Only what we rely on is checked: the record length (bytes 0–4) and base
    address of data (12–16) are numbers and the directory ends inside the
    record.  The declared length is *not* compared with the real one: many
    exports get it wrong and the terminator is the reliable boundary.
    """
    if len(chunk) < 25:
        return f"only {len(chunk)} bytes (a leader alone is 24)"
    length = chunk[0:5]
    if not length.isdigit():
        return f"record length {length.decode('latin-1')!r} is not a number"
    base = chunk[12:17]
    if not base.isdigit():
        return f"base address of data {base.decode('latin-1')!r} is not a number"
    if int(base) < 25 or int(base) > len(chunk):
        return f"base address of data {int(base)} is outside the record ({len(chunk)} bytes)"
    return None


def control_number(chunk: bytes, encoding: str | None = None) -> str | None:
    """The 001 of an ISO 2709 record, read through the directory, or None.

    Decoded as ``encoding``, else UTF-8, else Latin-1 (which never fails), so
    it works whatever character set the rest of the record is in.  Raises
    ValueError when the directory points past the end of the record.
    """
    base = int(chunk[12:17])
    end = chunk.find(FIELD_TERMINATOR, 24)
    if end < 0:
        raise ValueError("no directory terminator (0x1E)")
    if chunk[base - 1:base] != FIELD_TERMINATOR:
        base = end + 1  # a wrong base address: the directory terminator is the reliable boundary
    directory = chunk[24:end]
    value = None
    for i in range(0, len(directory) - len(directory) % 12, 12):
        entry = directory[i:i + 12]
        if not entry[3:12].isdigit():
            raise ValueError(f"directory entry {entry.decode('latin-1')!r} is not tag+length+offset")
        length, offset = int(entry[3:7]), int(entry[7:12])
        if base + offset + length > len(chunk):
            raise ValueError(f"truncated record: field {entry[:3].decode('latin-1')} (offset {offset}, "
                             f"length {length}) runs past the end of the record ({len(chunk)} bytes)")
        if entry[:3] == b"001" and value is None:
            raw = chunk[base + offset:base + offset + length].rstrip(FIELD_TERMINATOR + RECORD_TERMINATOR)
            value = _decode(raw, encoding).strip()
    return value or None


def _decode(raw: bytes, encoding: str | None) -> str:
    for enc in (encoding, "utf-8"):
        if enc:
            try:
                return raw.decode(enc)
            except (UnicodeDecodeError, LookupError):
                pass
    return raw.decode("latin-1")


# -- MARCXML -------------------------------------------------------------------
class _Wrapped(io.RawIOBase):
    """A file read inside ``<unioncat-wrapper>…</unioncat-wrapper>``.

    Some exports are just ``<record>`` after ``<record>`` with no root
    element, which XML forbids; a wrapper root makes them one document, and
    costs nothing for files that do have a root.  The XML declaration, if
    any, stays first.
    """

    def __init__(self, handle: IO[bytes], head: bytes):
        super().__init__()
        self._handle = handle
        start = head.find(b"?>") + 2 if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml") else 0
        handle.seek(0)
        self._pending = handle.read(start) + b"<" + _WRAPPER + b">"
        self._tail = b"</" + _WRAPPER + b">"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if not self._pending:
            data = self._handle.read(len(buffer))
            if not data and self._tail:
                data, self._tail = self._tail, b""
            self._pending = data
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _namespace(tag: str) -> str | None:
    return tag[1:].partition("}")[0] if tag.startswith("{") else None


def _read_marcxml(handle: IO[bytes], head: bytes, source_id: str, format: str, encoding: str | None,
                  name: str) -> Iterator[RawRecord | QuarantinedItem]:
    try:
        check_prolog(head)
    except UnsafeXMLError as exc:
        yield StreamBroken(source_id, name, f"{name}: {exc}")
        return
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    stream = handle if utf16 else io.BufferedReader(_Wrapped(handle, head))
    n = 0
    try:
        for _event, element in iterparse(stream, events=("end",), tag="{*}record", encoding=encoding):
            ns = _namespace(element.tag)
            if not _marc_shaped(element, ns):
                continue
            n += 1
            yield _xml_record(element, ns, source_id, format, f"{name}#{n}")
            element.clear(keep_tail=False)
            parent = element.getparent()
            while parent is not None and element.getprevious() is not None:
                del parent[0]
    except UnsafeXMLError as exc:
        yield StreamBroken(source_id, name, f"{name}: {exc}")
    except InvalidXMLError as exc:
        message = str(exc).replace(_WRAPPER.decode(), "root")
        yield StreamBroken(source_id, name, f"{name}: {message} (after {n} record(s))")


def _marc_shaped(element: etree._Element, ns: str | None) -> bool:
    """A MARC ``record``: in the MARC 21 slim namespace, none, or any other namespace whose record
    has leader/controlfield/datafield children (CNMARC XML uses ``http://www.nlc.cn/``); a protocol
    envelope's ``record`` (SRU's) has none of those and is passed over."""
    if ns in (MARC_NS, None):
        return True
    prefix = f"{{{ns}}}"
    return any(child.tag in (prefix + "leader", prefix + "controlfield", prefix + "datafield") for child in element)


def _xml_record(element: etree._Element, ns: str | None, source_id: str, format: str,
                fallback: str) -> RawRecord:
    prefix = f"{{{ns}}}" if ns else ""
    control = None
    for field in element.iterfind(f"{prefix}controlfield"):
        if field.get("tag") == "001":
            control = (field.text or "").strip() or None
            break
    payload_el = copy.deepcopy(element)
    etree.cleanup_namespaces(payload_el)
    payload = etree.tostring(payload_el, encoding="UTF-8", xml_declaration=False)
    return RawRecord(source=source_id, local_id=control or fallback, payload=payload, syntax="marcxml",
                     format=format)
