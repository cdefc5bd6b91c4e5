"""MARC out: the catalogue's records as MARC again, for cataloguers and downstream services.

Copy cataloguing is what a union catalogue is for (CALIS served ≈1.3M record
downloads a month), so every outward interface — record downloads, the
basket, OAI-PMH, the published Zebra, file exports — needs the same answers
to two questions, answered here once:

* **A member's own record** (:func:`member_marc`): the member's raw payload
  decoded with the normaliser's readers (so MARC-8, GBK and double-encoded
  UTF-8 come out repaired, as UTF-8), otherwise untouched — MARC 21 stays
  MARC 21, UNIMARC/CNMARC stays UNIMARC.  The byte-for-byte original is
  ``raw.payload`` itself.
* **The merged record** (:func:`merged_marc`): MARC 21 for a cluster.  When
  the display record's base member sent MARC 21, its own fields are kept (a
  cataloguer's record is richer than our model); otherwise the record is
  built from the model (:func:`record_to_marc21`).  Either way 001 is the
  cluster id, each member gets a 035 ``(source)local_id`` so libraries can
  reconcile, ISBNs found in any member are added, and the members' holdings
  fields are replaced by one 852 per holding of every member, and an 866 with each library's serial
  holdings summary.

Which of these an item leaves as is decided once, in :mod:`publish.marc`;
the bytes are written by :mod:`publish.writers`.  :func:`to_dc` gives simple
Dublin Core from the model (OAI-PMH ``oai_dc``).
"""
from __future__ import annotations

from pymarc import Field, Indicators, Subfield
from pymarc import Record as MarcRecord
from pymarc.leader import Leader

from dedupe.model import Cluster
from harvester.raw import RawRecord
from normaliser import iso2709, marcxml, unimarc
from normaliser.detect import unimarc_evidence
from normaliser.errors import RecordError
from normaliser.identifiers import isbn13
from normaliser.marc21 import group_fields
from normaliser.model import Contributor, Holding, Record

__all__ = ["member_marc", "member_family", "merged_marc", "record_to_marc21", "to_dc", "UNIMARC_FORMATS"]

#: Fields that carry one member's copies or local data; a merged record replaces them with 852s.
_LOCAL_TAGS = frozenset({"001", "003", "005", "852", "863", "864", "865", "866", "867", "868",
                         "876", "877", "878", "AVA", "AVE", "AVD", "HOL", "ITM", "H52"})
#: Source formats of the UNIMARC family (consortium.config.FORMATS).
UNIMARC_FORMATS = ("unimarc", "cnmarc")

#: Model format → leader/06 type of record and leader/07 bibliographic level.
_LEADER_TYPE = {
    "book": "am", "ebook": "am", "serial": "as", "eserial": "as", "article": "ab", "map": "em",
    "score": "cm", "recording": "im", "music-recording": "jm", "video": "gm", "image": "km",
    "kit": "om", "manuscript": "tm", "software": "mm", "microform": "am", "mixed": "pc", "other": "am",
}
_FORM_OF_ITEM = {"ebook": "o", "eserial": "o", "microform": "b"}


def member_family(raw: RawRecord) -> str:
    """``"marc21"``, ``"unimarc"`` or ``"dc"``: which family a member's raw record belongs to."""
    if raw.syntax == "xml" and (raw.format or "").lower() not in ("marc21", "unimarc", "cnmarc", "auto"):
        return "dc"
    fmt = (raw.format or "auto").lower()
    if fmt in UNIMARC_FORMATS:
        return "unimarc"
    if fmt == "marc21":
        return "marc21"
    if raw.syntax == "xml":
        return "dc" if _xml_root(raw.payload) == "dc" else _marc_family_xml(raw.payload)
    if raw.syntax == "marcxml":
        return _marc_family_xml(raw.payload)
    _leader, entries, _w = iso2709.read_directory(raw.payload)
    evidence = unimarc_evidence({t for t, _ in entries}, iso2709.first_subfield(entries, "100", "a"))
    return "unimarc" if evidence else "marc21"


def member_marc(raw: RawRecord) -> MarcRecord:
    """A member's own record as a pymarc Record with repaired, decoded (Unicode) text.

    Raises :class:`normaliser.errors.RecordError` for records that are not
    MARC (Dublin Core) or cannot be read.
    """
    if raw.deleted or not raw.payload:
        raise RecordError(f"{raw.source}:{raw.local_id} has no payload (deleted)")
    family = member_family(raw)
    if family == "dc":
        raise RecordError(f"{raw.source}:{raw.local_id} is Dublin Core, not MARC")
    if raw.syntax in ("marcxml", "xml"):
        record, _w = marcxml.parse(raw.payload)
    else:
        leader, entries, warnings = iso2709.read_directory(raw.payload)
        if family == "unimarc":
            record, _w = unimarc.decode(leader, entries, warnings, iso2709.first_subfield(entries, "100", "a"))
        else:
            record, _w = iso2709.decode(leader, entries, warnings)
    if family == "unimarc":
        _declare_unimarc_utf8(record)
    else:
        record.leader = Leader(str(record.leader)[:9] + "a" + str(record.leader)[10:])
    return record


def _declare_unimarc_utf8(record: MarcRecord) -> None:
    """UNIMARC says its character set in 100 $a/26-29; once decoded, the record is Unicode (``50``)."""
    record.force_utf8 = True
    for f in record.get_fields("100"):
        for i, sub in enumerate(f.subfields):
            if sub.code == "a" and len(sub.value) >= 30:
                f.subfields[i] = Subfield("a", sub.value[:26] + "50  " + sub.value[30:])
                return


def merged_marc(cluster: Cluster, base_raw: RawRecord | None = None, organisation: str = "") -> MarcRecord:
    """MARC 21 for a cluster: the base member's MARC 21 fields when there are some, else the model's.

    ``base_raw`` is the raw record of the display record's member
    (``cluster.record.source`` / ``local_id``); ``organisation`` (a MARC
    organisation code) goes in 003 when given.
    """
    record = cluster.record
    marc: MarcRecord | None = None
    if base_raw is not None and not base_raw.deleted and base_raw.payload:
        try:
            if member_family(base_raw) == "marc21":
                marc = member_marc(base_raw)
        except RecordError:
            marc = None
    if marc is None:
        marc = record_to_marc21(record)
    else:
        marc.fields = [f for f in marc.fields if f.tag not in _LOCAL_TAGS and not f.tag.startswith("9")]
        _add_missing_isbns(marc, record)
    head = [Field("001", data=cluster.id)]
    if organisation:
        head.append(Field("003", data=organisation))
    marc.fields = head + marc.fields
    present_035 = {s.value for f in marc.get_fields("035") for s in f.subfields if s.code == "a"}
    for source, local_id in cluster.members:
        value = f"({source}){local_id}"
        if value not in present_035:
            marc.add_ordered_field(Field("035", Indicators(" ", " "), [Subfield("a", value)]))
    summaries: set[tuple[str, str, str]] = set()
    for holding in record.holdings:
        marc.add_ordered_field(_holding_852(holding))
        marker = (holding.source, holding.local_id, holding.summary)
        if holding.summary and marker not in summaries:
            summaries.add(marker)
            marc.add_ordered_field(_holding_866(holding))
    return marc


def _holding_866(holding: Holding) -> Field:
    """The library's serial holdings summary (textual holdings, non-standard notation), linked to its 852
    (which names the library in $a) by the same ``$8``, the member's record id."""
    subfields = [Subfield("8", holding.local_id)] if holding.local_id else []
    subfields.append(Subfield("a", holding.summary))
    return Field("866", Indicators(" ", "0"), subfields)


def _holding_852(holding: Holding) -> Field:
    subfields = [Subfield("a", holding.source)]
    for code, value in (("b", holding.library), ("c", holding.location), ("h", holding.call_number),
                        ("p", holding.barcode), ("3", holding.volume), ("z", holding.note or holding.status)):
        if value:
            subfields.append(Subfield(code, value))
    if holding.local_id:
        subfields.append(Subfield("8", holding.local_id))
    return Field("852", Indicators(" ", " "), subfields)


def _add_missing_isbns(marc: MarcRecord, record: Record) -> None:
    have = {isbn13(s.value) for f in marc.get_fields("020") for s in f.subfields if s.code == "a"}
    for isbn in record.isbns:
        if isbn not in have:
            marc.add_ordered_field(Field("020", Indicators(" ", " "), [Subfield("a", isbn)]))


def record_to_marc21(record: Record) -> MarcRecord:
    """A MARC 21 record built from the model (for members that sent UNIMARC or Dublin Core)."""
    kind = _LEADER_TYPE.get(record.format, "am")
    marc = MarcRecord(force_utf8=True)
    marc.leader = Leader(f"00000n{kind} a2200000 i 4500")
    marc.add_field(Field("008", data=_field_008(record)))
    for tag, ind, subs in _model_fields(record):
        marc.add_ordered_field(Field(tag, Indicators(ind[0], ind[1]), [Subfield(c, v) for c, v in subs if v]))
    return marc


def _field_008(record: Record) -> str:
    """Fixed-length data: date type and year (07-10), form of item (23), language (35-37)."""
    lang = (record.languages[0] if record.languages else "und")[:3].ljust(3)
    year = f"{record.year:04d}" if record.year else "uuuu"
    f008 = list(f"000000{'s' if record.year else 'n'}{year}    xx " + " " * 17 + f"{lang} d")
    if record.format in _FORM_OF_ITEM:
        f008[23] = _FORM_OF_ITEM[record.format]
    return "".join(f008)[:40]


_Spec = tuple[str, str, list[tuple[str, str]]]


def _model_fields(record: Record) -> list[_Spec]:
    """``(tag, indicators, subfields)`` for every variable field the model fills, in MARC 21 order."""
    data: list[_Spec] = [("020", "  ", [("a", isbn)]) for isbn in record.isbns]
    data += [("022", "  ", [("a", issn)]) for issn in record.issns]
    data += [("035", "  ", [("a", f"(OCoLC){number}")]) for number in record.oclc_numbers]
    data += [("010", "  ", [("a", lccn)]) for lccn in record.lccns]
    for c in record.classifications:
        tag = {"lcc": "050", "ddc": "082"}.get(c.scheme)
        data.append((tag, " 4", [("a", c.value)]) if tag else ("084", "  ", [("a", c.value), ("2", c.scheme)]))
    primary = next((c for c in record.contributors if c.primary), None)
    if primary is not None:
        tag = {"organisation": "110", "meeting": "111"}.get(primary.kind, "100")
        data.append((tag, "1 " if tag == "100" else "2 ", _name(primary)))
    data += _description_fields(record, primary is not None)
    for c in record.contributors:
        if c is not primary:
            tag = {"organisation": "710", "meeting": "711"}.get(c.kind, "700")
            data.append((tag, "1 " if tag == "700" else "2 ", _name(c)))
    data += [("856", "40", [("u", url)]) for url in record.urls]
    return data


def _description_fields(record: Record, has_primary: bool) -> list[_Spec]:
    """Title, edition, publication, extent, series, notes, summary and subjects (245-653)."""
    title = [("a", record.title + (" :" if record.subtitle else ""))]
    title += [(code, value) for code, value in (("b", record.subtitle), ("p", record.part),
                                                ("c", record.responsibility)) if value]
    data: list[_Spec] = [("245", ("1" if has_primary else "0") + "0", title)]
    data += [("246", "3 ", [("a", other)]) for other in record.other_titles]
    if record.edition:
        data.append(("250", "  ", [("a", record.edition)]))
    pub = [(code, value) for code, value in (("a", record.place), ("b", record.publisher),
                                             ("c", str(record.year) if record.year else "")) if value]
    if pub:
        data.append(("264", " 1", pub))
    if record.extent:
        data.append(("300", "  ", [("a", record.extent)]))
    data += [("490", "0 ", [("a", series)]) for series in record.series]
    data += [("500", "  ", [("a", note)]) for note in record.notes]
    if record.summary:
        data.append(("520", "  ", [("a", record.summary)]))
    data += [("653", "  ", [("a", subject)]) for subject in record.subjects]
    return data


def _name(contributor: Contributor) -> list[tuple[str, str]]:
    subs = [("a", contributor.name)]
    if contributor.role:
        subs.append(("e" if not contributor.role.isalpha() or len(contributor.role) != 3 else "4", contributor.role))
    return subs


def to_dc(record: Record) -> dict[str, list[str]]:
    """Simple Dublin Core (the 15 elements, as lists) from the model."""
    creators = [c.name for c in record.contributors if c.primary] or [c.name for c in record.contributors[:1]]
    contributors = [c.name for c in record.contributors if c.name not in creators]
    identifiers = ([f"urn:isbn:{i}" for i in record.isbns] + [f"urn:issn:{i}" for i in record.issns]
                   + [f"(OCoLC){n}" for n in record.oclc_numbers] + list(record.urls))
    dc = {
        "title": [record.full_title] if record.full_title else [],
        "creator": creators,
        "contributor": contributors,
        "subject": list(record.subjects) + [c.value for c in record.classifications],
        "description": ([record.summary] if record.summary else []) + list(record.notes[:3]),
        "publisher": [record.publisher] if record.publisher else [],
        "date": [str(record.year)] if record.year else [],
        "type": [record.format],
        "format": [record.extent] if record.extent else [],
        "identifier": identifiers,
        "language": list(record.languages),
        "relation": list(record.series),
    }
    return {k: [v for v in values if v] for k, values in dc.items() if any(values)}


def _xml_root(payload: bytes) -> str:
    root = marcxml.parse_xml(payload)
    return root.tag.rpartition("}")[2] if isinstance(root.tag, str) else ""


def _marc_family_xml(payload: bytes) -> str:
    record, _w = marcxml.parse(payload)
    by_tag = group_fields(record)
    a100 = next((s.value for f in by_tag.get("100", ()) for s in f.subfields if s.code == "a"), None)
    return "unimarc" if unimarc_evidence(by_tag.keys(), a100) else "marc21"
