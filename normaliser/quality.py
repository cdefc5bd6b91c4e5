"""Data-quality report per member source — pure computation over records and quarantine rows.

What a data-centre operator needs to talk to a member library about its
export: how many records lack a title or any standard identifier, carry
invalid ISBNs, needed their character encoding repaired (``Record.warnings``),
and how many were quarantined, by reason.  Reasons are grouped into a short
category (the text before the first colon, with numbers and quoted values
folded) so "ISO 2709: directory entry 7 (245) …" and "… entry 9 (100) …"
count together; one full example is kept per category.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from pymarc import Record as MarcRecord

from .model import Record

__all__ = ["SourceQuality", "quality_report", "reason_category", "warning_category", "XML_FORBIDDEN",
           "XML_UNSAFE", "all_xml_safe", "exchange_tag", "structural_ok", "texts_xml_safe", "xml_unsafe_warning"]

#: What XML 1.0 cannot carry: C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF.  The MARC
#: writers (``publish.writers``) replace these on every way out; the normaliser counts them here first.
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: The warning's fixed text, which is also its category in the report.
XML_UNSAFE = "characters MARCXML or ISO 2709 cannot carry"


def exchange_tag(tag: str | None, control: bool) -> str:
    """``tag`` as MARCXML and ISO 2709 can carry it: three ASCII graphics (any other character becomes
    ``?``), and a data field never under a control field's tag (00X, which every reader takes for a
    control field and so would lose the subfields): ``000`` on a data field goes out as ``?00``."""
    out = ("".join(c if "!" <= c <= "~" else "?" for c in tag or "") + "???")[:3]
    if not control and out.isdigit() and out < "010":
        out = "?" + out[1:]
    return out


def structural_ok(value: str | None, kind: str) -> bool:
    """Can MARCXML and ISO 2709 carry ``value`` as a ``tag`` (3 ASCII graphics), an ``indicator`` (one
    ASCII graphic or blank) or a subfield ``code`` (one ASCII graphic)?  A damaged record's decoded
    bytes can be anything (a control character, U+FFFD): the writers replace what fails this."""
    if not value:
        return False
    low = " " if kind == "indicator" else "!"
    return len(value) == (3 if kind == "tag" else 1) and all(low <= c <= "~" for c in value)

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\([^)]*\)")
_NUMBER = re.compile(r"\d+")


def reason_category(reason: str) -> str:
    """A quarantine reason without its record-specific details."""
    text = (reason or "").strip() or "unknown"
    head, sep, rest = text.partition(":")
    if sep and head.strip() in ("ISO 2709", "XML is not well-formed"):
        head = f"{head}: {rest.strip()}"
    head = _QUOTED.sub("…", head)
    head = _NUMBER.sub("N", head)
    return " ".join(head.split())[:120]


#: A blank or unusual leader/06 (an export bug; pymarc's default leader has it blank): format unknown.
BLANK_LEADER_06 = "leader/06 blank or unusual"


def warning_category(warning: str) -> str:
    """A repair warning without the list of fields: "fields 200, 210 read as GB18030 …" → "read as GB18030"."""
    text = warning or ""
    for marker in (XML_UNSAFE, "double-encoded UTF-8", "undecodable characters replaced", "non-ASCII bytes in the leader",
                   "undecodable 880", "leader record length", "not a MARC 21 character coding scheme", "no leader",
                   "leader is", BLANK_LEADER_06):
        if marker in text:
            return marker
    m = re.search(r"read as ([A-Z0-9_\- ]+?)(?: \(| although|$)", text)
    if m:
        return f"read as {m.group(1).strip()}"
    return reason_category(text)


def xml_unsafe_warning(marc: MarcRecord) -> str | None:
    """The repair warning for a record whose tags, indicators, subfield codes or values hold characters
    XML cannot carry (a damaged record: a control character as an indicator), or None.

    Every MARCXML path out (OAI-PMH, exports, Zebra) replaces them rather than failing or dropping the
    field; this warning is what makes the replacement visible, counted in the member's quality report.
    """
    if all_xml_safe(marc):
        return None
    fields: list[str] = []
    for f in marc.fields:
        if f.control_field:
            bad = bool(XML_FORBIDDEN.search(f.data or ""))
        else:
            bad = not (structural_ok(f.indicator1, "indicator") and structural_ok(f.indicator2, "indicator")) or any(
                not structural_ok(s.code, "code") or XML_FORBIDDEN.search(s.value or "") for s in f.subfields)
        if bad or exchange_tag(f.tag, f.control_field) != f.tag:
            fields.append(exchange_tag(f.tag, f.control_field))
    if not fields:
        return None
    listed = ", ".join(dict.fromkeys(fields))
    return f"{XML_UNSAFE} in field(s) {listed}: replaced on the way out (U+FFFD in values, blank indicators, " \
           "'?' in tags and codes)"


#: Every field's head, each followed by ``\x01``: ``\x02`` and a control field's tag as :func:`exchange_tag`
#: keeps it (three ASCII graphics), or a data field's tag, indicators and subfield codes joined by NULs, as
#: :func:`exchange_tag` and :func:`structural_ok` keep them: the NULs pin each part's length, so no two parts
#: can trade characters; ``\x02`` keeps the two kinds apart, and ``\x01`` (counted: in no part) ends a head.
_SAFE_HEADS = re.compile("(?:(?:\x02[!-~]{3}|(?!00[0-9]\x00)[!-~]{3}\x00[ -~]\x00[ -~](?:\x00[!-~])*)\x01)*")


def all_xml_safe(marc: MarcRecord) -> bool:
    """True when nothing in the record needs replacing on the way out — nearly every record.

    The field-by-field check of :func:`xml_unsafe_warning` cost ~47 µs a record (an eighth of
    normalising one); this one asks one regex of all the heads and one of all the values.  It
    answers True only where that check finds nothing, and anything unusual (a value or indicator
    that is not a string) is left to it: ``str.join`` and ``+`` raise on those.
    """
    heads: list[str] = []
    values: list[str] = []
    try:
        for f in marc.fields:
            if f.control_field:
                heads.append("\x02" + f.tag)
                values.append(f.data or "")
                continue
            ind1, ind2 = f.indicators
            subfields = f.subfields
            codes, texts = zip(*subfields) if subfields else ((), ())
            heads.append("\x00".join((f.tag, ind1, ind2, *codes)))
            values += texts
        heads.append("")
        joined = "\x01".join(heads)
        return (joined.count("\x01") == len(heads) - 1 and _SAFE_HEADS.fullmatch(joined) is not None
                and not XML_FORBIDDEN.search("\n".join(values)))
    except (TypeError, ValueError):
        return False


_UNSAFE_CHARS = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"     # XML_FORBIDDEN's class
#: Every field as ISO 2709 gives it to ``iso2709.decoded_field``, tag and text each followed by ``\x1e``
#: (counted: no part holds one, so none can pass as two): a control field (001-009) whose data XML can carry,
#: or a data field under a tag :func:`exchange_tag` keeps, whose first two characters (the indicators,
#: blank-padded; the rest before the first ``\x1f`` is dropped) are ASCII graphics or blanks and whose every
#: non-empty ``\x1f`` part is an ASCII graphic code and a value XML can carry — what :func:`all_xml_safe` asks.
#: Possessive throughout (the grammar is unambiguous, so nothing it accepts needs backtracking): with plain
#: ``*`` the engine kept its backtracking state and took 19 µs a record on average, some records ~1 ms; 8.3.
_SAFE_TEXTS = re.compile(f"(?:(?:00[1-9]\x1e[^{_UNSAFE_CHARS}]*+|(?!00[0-9])[!-~]{{3}}\x1e"
                         f"(?>[ -~]{{2}}[^\x1e\x1f]*+|[ -~]?)(?:\x1f(?:[!-~][^{_UNSAFE_CHARS}]*+)?)*+)\x1e)*+")


def texts_xml_safe(texts: list[str]) -> bool:
    """True when the record decoded from ``texts`` (tag, text, tag, text…: what ``iso2709.decode`` and
    ``unimarc.decode`` fill) holds nothing :func:`xml_unsafe_warning` would report.

    One regex over the decoded texts instead of :func:`all_xml_safe`'s walk over the pymarc fields it
    builds them into: 8.3 against 19–24 µs a MARC 21 ISO 2709 record, measured alone.  It answers True only
    where that check finds nothing; False means "ask it" (tests: ``tests/test_xml_safe_texts.py``).
    """
    joined = "\x1e".join(texts) + "\x1e"
    return joined.count("\x1e") == len(texts) and _SAFE_TEXTS.fullmatch(joined) is not None


@dataclass
class SourceQuality:
    source: str
    records: int = 0
    without_title: int = 0
    without_identifier: int = 0          # no ISBN, ISSN, OCLC number, LCCN or other id
    with_invalid_isbn: int = 0
    invalid_isbns: int = 0               # how many invalid numbers in all
    with_repairs: int = 0                # records with at least one warning
    repairs: dict[str, int] = field(default_factory=dict)       # warning category → records
    quarantined: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)   # "stage: category" → count
    examples: dict[str, str] = field(default_factory=dict)      # category → one full reason or warning
    record_formats: dict[str, int] = field(default_factory=dict)
    holdings_records: int = 0            # separate holdings records (MFHD) stored
    holdings_without_852: int = 0        # MFHD with no location or call number
    orphan_holdings: int = 0             # MFHD whose 004 names no bibliographic record of this source
    orphan_examples: list[str] = field(default_factory=list)   # "holdings id → 004", the first few
    authority_records: int = 0           # authority records stored (headings and their forms)
    authority_problems: list[str] = field(default_factory=list)  # shared see-froms, 4XX loops (first few)

    def as_dict(self) -> dict:
        return asdict(self)


def _identified(rec: Record) -> bool:
    return bool(rec.isbns or rec.issns or rec.oclc_numbers or rec.lccns or rec.other_ids)


_MAX_ORPHAN_EXAMPLES = 10


def _counted_apart(q: SourceQuality, rec: Record) -> bool:
    """Holdings and authority records have no title or identifier by nature: counted on their own."""
    if rec.kind == "holdings":
        q.holdings_records += 1
        q.holdings_without_852 += not any(h.library or h.location or h.call_number for h in rec.holdings)
        return True
    if rec.kind == "authority":
        q.authority_records += 1
        return True
    return False


def _orphan(q: SourceQuality, local_id: str, bib: str) -> None:
    q.orphan_holdings += 1
    if len(q.orphan_examples) < _MAX_ORPHAN_EXAMPLES:
        q.orphan_examples.append(f"{local_id} → 004 {bib}")


def quality_report(records: Iterable[Record], quarantined: Iterable[Mapping] = (),
                   sources: Iterable[str] = (),
                   orphans: Iterable[tuple[str, str, str]] = (),
                   authority_problems: Mapping[str, list[str]] | None = None) -> dict[str, SourceQuality]:
    """Per-source quality from live records and quarantine rows (mappings with source, stage, reason[, count]).

    ``sources`` lists members to report even when they have nothing stored yet; ``orphans`` are
    ``(source, holdings local id, 004)`` of holdings records whose bibliographic record is missing
    (``normaliser.links.LinkStore.orphans``); ``authority_problems`` what
    ``normaliser.authorities.AuthorityStore.problems`` found.  Holdings records are counted apart: they have no
    title or identifier by nature.
    """
    out: dict[str, SourceQuality] = {s: SourceQuality(s) for s in sources}
    counters: dict[str, tuple[Counter, Counter, Counter]] = {}

    def get(source: str) -> SourceQuality:
        if source not in out:
            out[source] = SourceQuality(source)
        return out[source]

    for rec in records:
        q = get(rec.source)
        repairs, reasons, formats = counters.setdefault(rec.source, (Counter(), Counter(), Counter()))
        if _counted_apart(q, rec):
            continue
        q.records += 1
        formats[rec.record_format] += 1
        if not rec.title.strip():
            q.without_title += 1
        if not _identified(rec):
            q.without_identifier += 1
        if rec.invalid_isbns:
            q.with_invalid_isbn += 1
            q.invalid_isbns += len(rec.invalid_isbns)
        if rec.warnings:
            q.with_repairs += 1
            for category in dict.fromkeys(warning_category(w) for w in rec.warnings):
                repairs[category] += 1
                q.examples.setdefault(category, next(w for w in rec.warnings if warning_category(w) == category))
    for row in quarantined:
        q = get(row["source"])
        repairs, reasons, formats = counters.setdefault(row["source"], (Counter(), Counter(), Counter()))
        n = int(row.get("count", 1) or 1)
        category = f"{row.get('stage') or 'normalise'}: {reason_category(row.get('reason') or '')}"
        reasons[category] += n
        q.quarantined += n
        q.examples.setdefault(category, row.get("reason") or "")
        if reason_category(row.get("reason") or "").startswith("no title"):
            q.without_title += n
    for source, local_id, bib in orphans:
        _orphan(get(source), local_id, bib)
    for source, found in (authority_problems or {}).items():
        get(source).authority_problems = found[:_MAX_ORPHAN_EXAMPLES * 2]
    for source, q in out.items():
        repairs, reasons, formats = counters.get(source, (Counter(), Counter(), Counter()))
        q.repairs = dict(repairs.most_common())
        q.quarantined_by_reason = dict(reasons.most_common())
        q.record_formats = dict(formats.most_common())
    return dict(sorted(out.items()))
