"""Mutated real MARC records through the normaliser and every MARC writer: the fuzz of issue 19.

Seeds are real records (ISO 2709 files of the shared corpus, and the LoC BooksAll file); each
mutant is one seed with one deterministic damage (:data:`MUTATIONS`: byte flips, truncation, a
control character as an indicator or a subfield code, a bad length in the leader or directory,
invalid UTF-8, a huge field, …).  :func:`check` sends one mutant down the paths a record takes out
of the catalogue — ``normalise`` (quarantine is an answer, a crash is not), then the member MARC
every path publishes (``publish.marc.item_marc``) written as MARCXML (OAI-PMH, record and basket
downloads, API and CLI exports, Zebra), ISO 2709 and MARC-in-JSON — and reads each written form
back: a field present in the record but missing from what was written is a *silently dropped
field*.  ``bench/fuzz.py`` runs 100,000; ``tests/test_fuzz.py`` a few thousand.
"""
from __future__ import annotations

import io
import random
import re
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pymarc
from lxml import etree

from harvester.raw import RawRecord
from normaliser import normalise
from normaliser.errors import RecordError
from normaliser.quality import XML_UNSAFE, exchange_tag
from publish.feed import MEMBER, Item, Published
from publish.marc import item_marc
from publish.writers import COLLECTION_HEAD, COLLECTION_TAIL, marcxml_bytes, to_iso2709, to_marc_json

CONTROL = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x1D)])  # 0x1D-0x1F are MARC's own delimiters
_FILES = re.compile(r"\.(mrc|marc|iso|iso2709|dat|utf8|bin|raw|out)$", re.I)


def seeds_from(folders: list[Path], loc: Path | None, limit: int) -> list[bytes]:
    """Up to ``limit`` real ISO 2709 records: the corpus files first, then the LoC file."""
    out: list[bytes] = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and _FILES.search(path.name) and path.stat().st_size < 50 * 2**20:
                data = path.read_bytes()
                if data[5:6].isalpha() and data[:5].isdigit():
                    out += [c + b"\x1d" for c in data.split(b"\x1d") if len(c) > 24 and c[:5].strip().isdigit()]
            if len(out) >= limit // 2:
                break
    if loc is not None and loc.exists():
        from demo.loc import iter_chunks  # the demo's LoC reader, for the bench and tests only

        out += list(iter_chunks(loc, limit=max(0, limit - len(out))))
    return out[:limit]


# -- mutations: each takes (record bytes, rng) and returns the damaged bytes --------------------
def _fields(data: bytes) -> list[tuple[int, int]]:
    """(start, length) of each field's data in ``data`` from its directory, as far as it is readable."""
    try:
        base = int(data[12:17])
    except ValueError:
        return []
    out, pos = [], 24
    while pos + 12 <= len(data) and data[pos:pos + 1] != b"\x1e":
        entry = data[pos:pos + 12]
        if entry[3:7].isdigit() and entry[7:12].isdigit():
            out.append((base + int(entry[7:12]), int(entry[3:7])))
        pos += 12
    return [(s, n) for s, n in out if s + n <= len(data)]


def _data_field(data: bytes, rng: random.Random) -> int | None:
    """The offset of a data field's first indicator (a field of ≥ 3 bytes whose tag is ≥ 010)."""
    spots = [s for s, n in _fields(data) if n > 3 and data[s + 2:s + 3] == b"\x1f"]
    return rng.choice(spots) if spots else None


def flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, len(data))]


def control_indicator(data: bytes, rng: random.Random) -> bytes:
    at = _data_field(data, rng)
    if at is None:
        return flip(data, rng)
    return data[:at] + bytes([rng.choice(CONTROL), rng.choice(CONTROL + b"0 1")]) + data[at + 2:]


def control_code(data: bytes, rng: random.Random) -> bytes:
    spots = [m.start() + 1 for m in re.finditer(rb"\x1f", data)]
    if not spots:
        return flip(data, rng)
    at = rng.choice(spots)
    return data[:at] + bytes([rng.choice(CONTROL)]) + data[at + 1:]


def _in_a_field(data: bytes, rng: random.Random) -> int | None:
    """A byte offset inside some field's data, or None when the directory is unreadable."""
    fields = _fields(data)
    if not fields:
        return None
    start, length = rng.choice(fields)
    return start + rng.randrange(max(1, length - 1))


def control_value(data: bytes, rng: random.Random) -> bytes:
    at = _in_a_field(data, rng)
    if at is None:
        return flip(data, rng)
    return data[:at] + bytes([rng.choice(CONTROL)]) + data[at + 1:]


def bad_length(data: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.5:  # the leader's record length or base address
        spot = rng.choice((0, 12))
        width = 5
    else:  # a directory entry's length or start
        entries = (int(data[12:17]) - 25) // 12 if data[12:17].isdigit() else 0
        if entries <= 0:
            return flip(data, rng)
        spot = 24 + 12 * rng.randrange(entries) + rng.choice((3, 7))
        width = 4 if spot % 12 == 3 else 5
    return data[:spot] + str(rng.randrange(10 ** width)).zfill(width).encode() + data[spot + width:]


def invalid_utf8(data: bytes, rng: random.Random) -> bytes:
    at = _in_a_field(data, rng)
    if at is None:
        return flip(data, rng)
    junk = rng.choice((b"\xff", b"\xc3", b"\xe4\xb8", b"\x80\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"))
    return data[:at] + junk + data[at + 1:]


def huge_field(data: bytes, rng: random.Random) -> bytes:
    """A 500 field of up to ~99,000 bytes appended through the directory (lengths made to fit or not)."""
    fields = _fields(data)
    if not data[12:17].isdigit() or not fields:
        return flip(data, rng)
    body = b"  \x1fa" + b"x" * rng.randrange(5_000, 99_000) + b"\x1e"
    base = int(data[12:17])
    directory, content = data[24:base - 1], data[base:-1]
    entry = b"500" + str(min(len(body), 9999)).zfill(4).encode() + str(len(content) % 100000).zfill(5).encode()
    directory += entry
    record = directory + b"\x1e" + content + body + b"\x1d"
    new_base = 24 + len(directory) + 1
    leader = str(min(24 + len(record), 99999)).zfill(5).encode() + data[5:12] + str(new_base).zfill(5).encode() \
        + data[17:24]
    return leader + record


def doubled_delimiters(data: bytes, rng: random.Random) -> bytes:
    spots = [m.start() for m in re.finditer(rb"\x1f|\x1e", data)]
    if not spots:
        return flip(data, rng)
    at = rng.choice(spots)
    return data[:at] + data[at:at + 1] * rng.randint(2, 4) + data[at + 1:]


MUTATIONS = (flip, truncate, control_indicator, control_code, control_value, bad_length, invalid_utf8, huge_field,
             doubled_delimiters)


def mutants(seeds: list[bytes], n: int, seed: int = 19) -> Iterator[tuple[str, bytes]]:
    """``n`` (mutation name, damaged record) pairs, the same for the same seeds and ``seed``."""
    rng = random.Random(seed)
    for i in range(n):
        mutate = MUTATIONS[i % len(MUTATIONS)]
        yield mutate.__name__, mutate(seeds[rng.randrange(len(seeds))], rng)


# -- the paths out --------------------------------------------------------------------------------
@dataclass
class Tally:
    """What became of the mutants; ``crashes`` and ``dropped`` must stay at 0."""

    records: int = 0
    normalised: int = 0
    quarantined: int = 0
    published: int = 0
    rebuilt: int = 0            # unreadable as MARC: published from the model (logged, never silent)
    with_replacements: int = 0  # the quality report's "characters XML cannot carry"
    crashes: int = 0
    dropped: int = 0
    by_mutation: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def fail(self, kind: str, what: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(f"{kind}: {what}")


def _shape(fields: Iterator[tuple[str, bool, list[str]]]) -> Counter:
    """tag → fields, subfields and characters of value: what must survive every writer (a writer may
    split a field ISO 2709 cannot hold, or replace a character, but never lose one)."""
    shape: Counter = Counter()
    for tag, control, values in fields:
        tag = exchange_tag(tag, control)
        shape[(tag, "fields")] += 1
        shape[(tag, "subfields")] += len(values)
        shape[(tag, "chars")] += sum(len(v) for v in values)
    return shape


def _pymarc_fields(record: pymarc.Record) -> Iterator[tuple[str, bool, list[str]]]:
    for f in record.fields:
        yield f.tag, f.control_field, [f.data or ""] if f.control_field else [s.value or "" for s in f.subfields]


def _lost(expected: Counter, written: Counter) -> list:
    return [(key, n, written[key]) for key, n in expected.items() if written[key] < n]


def _written_shapes(marc: pymarc.Record) -> dict[str, Counter]:
    xml = pymarc.parse_xml_to_array(io.BytesIO(COLLECTION_HEAD + marcxml_bytes(marc) + COLLECTION_TAIL))[0]
    iso = next(iter(pymarc.MARCReader(io.BytesIO(to_iso2709(marc)), to_unicode=True, force_utf8=True)))
    json_fields = ((tag, isinstance(v, str),
                    [v] if isinstance(v, str) else [next(iter(s.values())) for s in v["subfields"]])
                   for f in to_marc_json(marc)["fields"] for tag, v in f.items())
    return {"marcxml": _shape(_pymarc_fields(xml)),
            "iso2709": Counter() if iso is None else _shape(_pymarc_fields(iso)), "json": _shape(json_fields)}


def check(name: str, payload: bytes, tally: Tally, number: int) -> None:
    """One mutant through ``normalise`` and every writer of its published MARC; the outcome is tallied."""
    tally.records += 1
    tally.by_mutation[name] += 1
    raw = RawRecord(source="fuzz", local_id=f"m{number}", payload=payload, syntax="iso2709", format="auto")
    model = None
    try:
        model = normalise(raw)
        tally.normalised += 1
        if any(XML_UNSAFE in w for w in model.warnings):
            tally.with_replacements += 1
    except RecordError:
        tally.quarantined += 1
    except Exception:  # noqa: BLE001 - the fuzz counts what it is looking for
        tally.crashes += 1
        tally.fail(f"normalise {name} #{number}", traceback.format_exc(limit=3))
        return
    item = Item(kind=MEMBER, seq=number, datestamp=datetime.now(timezone.utc), deleted=False, source="fuzz",
                local_id=raw.local_id, raw=raw, cluster_of=f"c{number}")
    try:
        marc = item_marc(item, _One(model))
        tally.published += 1
        if marc.get_fields("001") and marc["001"].data == raw.local_id and not _readable(raw):
            tally.rebuilt += 1
        expected = _shape(_pymarc_fields(marc))
        for path, shape in _written_shapes(marc).items():
            lost = _lost(expected, shape)
            if lost:
                tally.dropped += 1
                tally.fail(f"{path} {name} #{number}", f"lost (what, had, wrote): {lost[:6]}")
                break
    except Exception:  # noqa: BLE001
        tally.crashes += 1
        tally.fail(f"publish {name} #{number}", traceback.format_exc(limit=4))


class _One:
    """The model store of one record, as ``item_marc`` asks it for an unreadable member."""

    def __init__(self, model):
        self.model = model

    def get(self, source: str, local_id: str):
        return self.model


def _readable(raw: RawRecord) -> bool:
    from publish.marcout import member_marc

    try:
        member_marc(raw)
        return True
    except RecordError:
        return False


# -- the web paths ----------------------------------------------------------------------------------
MARC = "{http://www.loc.gov/MARC21/slim}"


@dataclass
class WebTally:
    """The web paths over a built catalogue: ``server_errors`` and ``dropped`` must stay at 0."""

    requests: int = 0
    server_errors: int = 0
    dropped: int = 0
    member_fields: int = 0   # fields of the member records, as item_marc gives them
    oai_fields: int = 0      # fields in the OAI-PMH ListRecords of the members' set
    api_fields: int = 0      # fields in the API's MARCXML export of the members' set
    basket_records: int = 0
    failures: list[str] = field(default_factory=list)

    def get(self, client, url: str, **kw):
        response = client.get(url, **kw)
        self.requests += 1
        if response.status_code >= 500:
            self.server_errors += 1
            if len(self.failures) < 20:
                self.failures.append(f"{response.status_code} {url}")
        return response


def _xml_fields(data: bytes) -> int:
    root = etree.fromstring(data)
    return len(root.findall(f".//{MARC}datafield")) + len(root.findall(f".//{MARC}controlfield"))


def walk_web(cat, client, api_key: str, set_spec: str, basket_max: int = 100) -> WebTally:
    """Every live entry through the record exports (merged and each member), the basket, OAI-PMH
    ListRecords of ``set_spec`` and the API export, with the Flask test ``client``."""
    tally = WebTally()
    published = Published(cat.engine)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/basket").text).group(1)
    for cluster in cat.clusters.iter_live():
        merged = item_marc(published.merged_item(cluster.id))
        for fmt in ("mrc", "json"):
            tally.get(client, f"/record/{cluster.id}/export.{fmt}")
        response = tally.get(client, f"/record/{cluster.id}/export.xml")
        if response.status_code == 200 and _xml_fields(response.data) != len(merged.fields):
            tally.dropped += 1
        for source, local_id in cluster.members:
            member = item_marc(published.member_item(source, local_id), published.records)
            tally.member_fields += len(member.fields)
            response = tally.get(client, f"/record/{cluster.id}/export.xml?member={source}:{local_id}")
            if response.status_code == 200 and _xml_fields(response.data) != len(member.fields):
                tally.dropped += 1
            tally.get(client, f"/record/{cluster.id}/export.mrc?member={source}:{local_id}")
        client.post("/basket/add", data={"id": cluster.id, "csrf_token": token})
    for fmt in ("mrc", "json"):
        tally.get(client, f"/basket/export.{fmt}")
    response = tally.get(client, "/basket/export.xml")
    if response.status_code == 200:
        tally.basket_records = len(etree.fromstring(response.data).findall(f"{MARC}record"))
    url: str | None = f"/oai?verb=ListRecords&metadataPrefix=marcxml&set={set_spec}"
    while url:
        response = tally.get(client, url)
        if response.status_code != 200:
            break
        tally.oai_fields += _xml_fields(response.data)
        next_token = etree.fromstring(response.data).findtext(".//{http://www.openarchives.org/OAI/2.0/}resumptionToken")
        url = f"/oai?verb=ListRecords&resumptionToken={next_token}" if next_token else None
    tally.get(client, f"/api/v1/export?set={set_spec}&format=iso2709", headers={"X-API-Key": api_key})
    response = tally.get(client, f"/api/v1/export?set={set_spec}&format=marcxml", headers={"X-API-Key": api_key})
    if response.status_code == 200:
        tally.api_fields = _xml_fields(response.data)
    return tally
