"""One ISO 2709 record (bytes) → a ``pymarc.Record`` plus the repairs made.

pymarc's own ``Record(data=...)`` decides the character set once per record
from leader/09 and fails (or silently blanks characters) when the bytes
disagree; it also warns and logs from inside the parser.  Here the
structure is checked first so a broken record is rejected with a reason a
data-centre operator can act on ("directory entry 7 (245) points past the
end of the record"), and the character set is decided field by field (see
:mod:`normaliser.charset`).  The result is an ordinary pymarc ``Record`` so
the MARCXML reader and the field mapping share one model.
"""
from __future__ import annotations

import re

from pymarc import Field, Indicators, Record, Subfield
from pymarc.leader import Leader

from .charset import cyrillic_decode, decode_field, looks_gb
from .errors import RecordError
from .fields import is_utf8 as _is_utf8

__all__ = ["parse", "read_directory", "decode", "first_subfield", "control_field", "data_field", "CONTROL_TAGS",
           "GARBAGE_RATIO"]

LEADER_LEN = 24
ENTRY_LEN = 12
FIELD_END = 0x1E
RECORD_END = 0x1D

#: A record whose text has more than this share of undecodable characters is
#: in some other character set (CP866, GB2312…) and is rejected rather than
#: indexed as mojibake.  Below it, the damaged characters become U+FFFD and the
#: record carries a warning.
GARBAGE_RATIO = 0.05

_ENTRY = re.compile(r"(.{3})([0-9]{4})([0-9]{5})", re.DOTALL)
CONTROL_TAGS = frozenset(f"{n:03d}" for n in range(1, 10))
_tuple_new = tuple.__new__


_BLANK = Indicators(" ", " ")
#: The indicator pairs met so far, by the text before a field's first ``\x1f`` (immutable: shared).  A
#: catalogue uses a few dozen ("10", " 0", "00"…), and each data field built its pair anew through
#: namedtuple's Python-level ``__new__``.  With the directory read once (:func:`_entries`): 222 → 208 µs an
#: ISO 2709 record, normalised whole in one process.  Emptied at 4,096 (damaged records bring any text).
_INDICATORS: dict[str, Indicators] = {"  ": _BLANK}


def decoded_field(tag: str, text: str) -> Field:
    """A pymarc field from one field's decoded text (indicators, then ``\x1f``-separated subfields)."""
    if tag in CONTROL_TAGS:
        return control_field(tag, text)
    parts = text.split("\x1f")
    ind = parts[0]
    subfields = [_tuple_new(Subfield, (p[0], p[1:])) for p in parts[1:] if p]
    indicators = _INDICATORS.get(ind)
    if indicators is None:
        if len(_INDICATORS) >= 4096:
            _INDICATORS.clear()
        indicators = _INDICATORS[ind] = Indicators(*(ind + "  ")[:2])
    return data_field(tag, indicators, subfields)


def data_field(tag: str, indicators: Indicators, subfields: list[Subfield]) -> Field:
    """A pymarc data field without ``Field.__init__``'s argument checks (hot path; inputs are known good).

    Sets exactly the attributes ``Field.__init__`` sets for a data field;
    ``tests/test_normalise_marc21.py`` checks the result equals ``Field(...)``.
    """
    field = _new_field(Field)
    field.tag = tag
    field._indicators = indicators
    field.subfields = subfields
    field.data = None
    field.control_field = False
    return field


def control_field(tag: str, data: str) -> Field:
    """A pymarc control field (tag 001-009) without ``Field.__init__``'s checks, like :func:`data_field`."""
    field = _new_field(Field)
    field.tag = tag
    field._indicators = None
    field.subfields = []
    field.data = data
    field.control_field = True
    return field


_new_field = Field.__new__


def _leader(payload: bytes, warnings: list[str]) -> str:
    if len(payload) < LEADER_LEN:
        raise RecordError(f"ISO 2709: record is {len(payload)} bytes, shorter than the 24-byte leader")
    raw = payload[:LEADER_LEN]
    if not raw.isascii():
        # Only the lengths and the base address are structural; a stray byte elsewhere is repairable.
        warnings.append(f"non-ASCII bytes in the leader replaced by blanks: {raw!r}")
        raw = bytes(b if b < 0x80 else 0x20 for b in raw)
    leader = raw.decode("ascii")
    if not leader[0:5].isdigit():
        raise RecordError(f"ISO 2709: leader/00-04 record length {leader[0:5]!r} is not a number")
    if not leader[12:17].isdigit():
        raise RecordError(f"ISO 2709: leader/12-16 base address {leader[12:17]!r} is not a number")
    return leader


def _entries(payload: bytes, leader: str, warnings: list[str]) -> list[tuple[str, bytes]]:
    """Validate the directory and slice out each field's bytes (terminator removed)."""
    base = int(leader[12:17])
    size = len(payload)
    if payload[-1:] == bytes([RECORD_END]):
        size -= 1
    if base <= LEADER_LEN or base > size:
        raise RecordError(f"ISO 2709: base address {base} is outside the record ({size} bytes)")
    if payload[base - 1] != FIELD_END:
        raise RecordError(f"ISO 2709: no field terminator before base address {base}; "
                          "the leader's base address does not match the directory")
    directory = payload[LEADER_LEN:base - 1]
    if len(directory) % ENTRY_LEN:
        raise RecordError(f"ISO 2709: directory is {len(directory)} bytes, not a multiple of 12")
    if not directory.isascii():
        raise RecordError("ISO 2709: directory contains non-ASCII bytes")
    declared = int(leader[0:5])
    if declared != len(payload):
        warnings.append(f"leader record length {declared} differs from the {len(payload)} bytes received")
    text = directory.decode("ascii")
    found = _ENTRY.findall(text)
    # As many entries as the directory has room for tile it exactly: the whole directory is well formed.
    if len(found) * ENTRY_LEN != len(text):
        for i in range(0, len(text), ENTRY_LEN):
            entry = text[i:i + ENTRY_LEN]
            if not entry[3:].isdigit():
                raise RecordError(f"ISO 2709: directory entry {i // ENTRY_LEN + 1} {entry!r} "
                                  "has a non-numeric length or offset")
    out: list[tuple[str, bytes]] = []
    limit = size + 1
    for tag, length, offset in found:
        start = base + int(offset)
        stop = start + int(length)
        if stop > limit or stop == start:
            raise RecordError(f"ISO 2709: directory entry {len(out) + 1} ({tag}) points past the end of the "
                              f"record (bytes {start}-{stop} of {size}); the record is truncated or its "
                              "directory is wrong")
        data = payload[start:stop]
        if data[-1] in (FIELD_END, RECORD_END):
            data = data[:-1]
        out.append((tag, data))
    if not out:
        raise RecordError("ISO 2709: the directory lists no fields")
    return out


def read_directory(payload: bytes) -> tuple[str, list[tuple[str, bytes]], list[str]]:
    """``(leader, [(tag, field bytes)], warnings)``; RecordError when the structure is broken.

    Separate from decoding so a caller can look at the tags (e.g. to spot
    UNIMARC) before the character set is judged.
    """
    # Line breaks around a record are a transport artefact (line-separated dumps), not data.
    payload = payload.lstrip(b"\r\n")
    stripped = payload.rstrip(b"\r\n")
    if stripped.endswith(b"\x1d"):
        payload = stripped
    warnings: list[str] = []
    leader = _leader(payload, warnings)
    return leader, _entries(payload, leader, warnings), warnings


def first_subfield(entries: list[tuple[str, bytes]], tag: str, code: str) -> str | None:
    """The first ``$code`` of the first field ``tag``, ASCII only — enough for sniffing."""
    marker = b"\x1f" + code.encode("ascii")
    for entry_tag, data in entries:
        if entry_tag == tag and marker in data:
            return data.split(marker, 1)[1].split(b"\x1f", 1)[0].decode("ascii", "replace")
    return None


def _cyrillic_record(leader: str, entries: list[tuple[str, bytes]], warnings: list[str],
                     texts: list[str] | None) -> tuple[Record, list[str]] | None:
    """A record whose 8-bit text reads as Russian in exactly one code page (CP866, CP1251, KOI8-R):
    decoded in it, with a warning (``texts`` as :func:`decode` fills it).  RUSMARC and VINITI exports
    come like this."""
    legacy = b" ".join(data for _, data in entries if not data.isascii() and not _is_utf8(data))
    found = cyrillic_decode(legacy)
    if found is None:
        return None
    codec = found[1]
    record = Record(leader=leader)
    record.leader = Leader(leader)
    tags = []
    if texts is not None:
        texts.clear()
    for tag, data in entries:
        if data.isascii() or _is_utf8(data):
            text = data.decode("utf-8")
        else:
            text = data.decode(codec, "replace")
            tags.append(tag)
        record.fields.append(decoded_field(tag, text))
        if texts is not None:
            texts += tag, text
    listed = ", ".join(dict.fromkeys(tags[:8])) + ("…" if len(tags) > 8 else "")
    warnings.append(f"fields {listed} read as {codec.upper()} (Russian 8-bit code page), which the record's "
                    f"format does not allow (leader/09 {leader[9]!r})")
    return record, warnings


def parse(payload: bytes) -> tuple[Record, list[str]]:
    """Parse one ISO 2709 record; raise RecordError when it cannot be read."""
    return decode(*read_directory(payload))


def decode(leader: str, entries: list[tuple[str, bytes]], warnings: list[str],
           texts: list[str] | None = None) -> tuple[Record, list[str]]:
    """Decode the fields of a record read by :func:`read_directory` into a pymarc Record.

    ``texts``, when given, receives each kept field's tag and decoded text in turn, so the normaliser
    can clear the record for XML from them (:func:`normaliser.quality.texts_xml_safe`).
    """
    scheme = leader[9]
    utf8 = scheme != " "
    if scheme not in ("a", " "):
        warnings.append(f"leader/09 {scheme!r} is not a MARC 21 character coding scheme; read as UTF-8")

    # Leader/09 blank but GBK bytes: legacy Chinese exports.  Decided per record, because a
    # short GBK string can look like clean MARC-8 while its neighbours cannot.
    gb = scheme in (" ", "a") and any(looks_gb(data) for _, data in entries if not data.isascii())

    record = Record(leader=leader)
    record.leader = Leader(leader)      # Record() rewrites positions 10-11 and 20-23
    fields = record.fields
    damaged = 0
    repaired: dict[str, list[str]] = {}
    dropped = 0
    for tag, data in entries:
        if data.isascii() and b"\x1b" not in data:
            text = data.decode("ascii")
        elif gb and b"\x1b" not in data and not _is_utf8(data):
            text = data.decode("gb18030", "replace")
            bad = text.count("\ufffd")
            damaged += bad
            _note(repaired, "gb18030", tag)
        else:
            text, how, bad = decode_field(data, utf8)
            if tag == "880" and bad > GARBAGE_RATIO * len(data):
                dropped += 1        # an undecodable parallel-script field; the romanised one remains
                continue
            damaged += bad
            if how == "double-utf-8":
                repaired.setdefault(how, []).append(tag)
            elif how == "damaged" or (how == "utf-8") != utf8:
                _note(repaired, how, tag)
        fields.append(decoded_field(tag, text))
        if texts is not None:
            texts += tag, text

    if damaged:
        chars = sum(len(data) for _, data in entries)
        if damaged > GARBAGE_RATIO * chars:
            legacy = _cyrillic_record(leader, entries, warnings, texts)
            if legacy is not None:
                return legacy
            raise RecordError(f"character set unknown: {damaged} characters in {chars} bytes of field data "
                              f"decode neither as UTF-8 nor as MARC-8 (leader/09 {scheme!r})")
    if dropped:
        warnings.append(f"{dropped} undecodable 880 field(s) dropped")
    warnings.extend(_repair_warnings(repaired, scheme))
    return record, warnings


def _note(repaired: dict[str, list[str]], how: str, tag: str) -> None:
    """Remember that field ``tag`` was read as ``how`` (each tag listed once per way)."""
    tags = repaired.setdefault(how, [])
    if tag not in tags:
        tags.append(tag)


def _repair_warnings(repaired: dict[str, list[str]], scheme: str) -> list[str]:
    """One warning per way fields were read against leader/09 (the record is kept; staff see why)."""
    flag = "UTF-8" if scheme == "a" else "MARC-8" if scheme == " " else f"{scheme!r}"
    out = []
    for how, tags in repaired.items():
        listed = ", ".join(tags[:8]) + ("…" if len(tags) > 8 else "")
        if how == "damaged":
            out.append(f"undecodable characters replaced in fields {listed} (leader/09 says {flag})")
        elif how == "double-utf-8":
            out.append(f"double-encoded UTF-8 repaired in fields {listed}")
        else:
            out.append(f"fields {listed} read as {how.upper()} although leader/09 says {flag}")
    return out
