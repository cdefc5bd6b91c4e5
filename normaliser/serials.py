"""Serial holdings statements: 866–868 textual summaries and 853–855/863–865 captions and enumeration.

A reader asking "which library has volume 12 (2001)?" needs one line per
library — "v.1 (1990) – v.25 (2014); lacks v.12" — and interlibrary loan
needs the years a library covers.  Members send either a textual summary
(866 basic unit, 867 supplements, 868 indexes) or coded pairs: a caption
field (853/854/855) naming the levels ("v.", "no.", "(year)") and
enumeration/chronology fields (863/864/865) whose ``$8`` "link.sequence"
points at their caption.  The textual summary wins when both are present
(it is what the library chose to show); otherwise the pairs are turned into
a summary by the MARC 21 holdings format's display rules: a caption in
parentheses is not displayed, chronology follows enumeration in
parentheses, a value "1-25" is a range, ``$w g`` marks a gap (";") and
``$w n`` a non-gap break (",").  Consecutive single issues are compressed
into ranges and missing first-level numbers between ranges are listed as
"lacks …".
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pymarc import Field

from .text import normalize_space

__all__ = ["summary_and_coverage", "coverage_of", "covers", "ONGOING"]

#: The "last year" of an open range ("v.1 (1990)-").
ONGOING = 9999
_ENUM = "abcdef"
_CHRON = "ijkl"
_TEXT = {"866": "", "867": "Suppl.: ", "868": "Indexes: "}
_PAIRS = (("853", "863"), ("854", "864"), ("855", "865"))
_PAIR_LABEL = {"853": "", "854": "Suppl.: ", "855": "Indexes: "}
_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")
_MONTHS = {f"{i:02d}": m for i, m in enumerate(
    ("Jan.", "Feb.", "Mar.", "Apr.", "May", "June", "July", "Aug.", "Sept.", "Oct.", "Nov.", "Dec."), 1)}
_MONTHS.update({"21": "Spring", "22": "Summer", "23": "Autumn", "24": "Winter"})
_MAX_LACKS = 6


def _subs(field: Field, codes: str) -> list[tuple[str, str]]:
    return [(s.code, normalize_space(s.value)) for s in field.subfields if s.code in codes and s.value.strip()]


def _textual(by_tag: dict[str, list[Field]]) -> list[tuple[str, str]]:
    """``(statement shown, text its coverage is read from)``: a ``$z`` note ("Missing v.124 (1999)") is shown
    but never counted as held."""
    out = []
    for tag, label in _TEXT.items():
        for field in by_tag.get(tag, ()):
            text = "; ".join(v for _, v in _subs(field, "a"))
            note = "; ".join(v for _, v in _subs(field, "z"))
            if text or note:
                out.append((label + (f"{text} ({note})" if text and note else text or note), label + text))
    return out


@dataclass
class _Unit:
    """One 863/864/865 statement: its first/last values per level, in caption order."""

    seq: float
    start: list[tuple[str, str, str]]   # (code, caption, value)
    end: list[tuple[str, str, str]]
    gap: str                            # "g" gap, "n" non-gap, "" unknown

    @property
    def first_number(self) -> int | None:
        return _number(self.start[0][2]) if self.start else None

    @property
    def last_number(self) -> int | None:
        return _number(self.end[0][2]) if self.end else None


def _number(value: str) -> int | None:
    m = re.match(r"\d+", value)
    return int(m.group()) if m else None


def _units(captions: list[Field], values: list[Field]) -> list[_Unit]:
    by_link: dict[str, dict[str, str]] = {}
    for field in captions:
        link = next((v for c, v in _subs(field, "8")), "")
        by_link[link.split(".")[0]] = dict(_subs(field, _ENUM + _CHRON))
    units = []
    for field in values:
        link = next((v for c, v in _subs(field, "8")), "")
        head, _, seq = link.partition(".")
        caps = by_link.get(head)
        if caps is None:
            continue
        start, end = [], []
        for code, value in _subs(field, _ENUM + _CHRON):
            first, _, last = value.partition("-")
            start.append((code, caps.get(code, ""), first))
            end.append((code, caps.get(code, ""), last or first))
        if start:
            gap = next((v for c, v in _subs(field, "w")), "")
            units.append(_Unit(float(seq) if re.fullmatch(r"\d+(\.\d+)?", seq) else 0.0, start, end, gap))
    units.sort(key=lambda u: (u.first_number if u.first_number is not None else 1 << 30, u.seq))
    return units


def _display(parts: list[tuple[str, str, str]]) -> str:
    """``v.1:no.2 (1990:Jan.)``: enumeration with its captions, chronology in parentheses."""
    enum = [(cap, val) for code, cap, val in parts if code in _ENUM and val]
    chron = [(cap, val) for code, cap, val in parts if code in _CHRON and val]

    def show(cap: str, val: str) -> str:
        if cap.startswith("("):
            return _MONTHS.get(val, val) if "month" in cap or "season" in cap else val
        return f"{cap}{val}"

    text = ":".join(show(c, v) for c, v in enum)
    when = ":".join(show(c, v) for c, v in chron)
    if text and when:
        return f"{text} ({when})"
    return text or when


def _compress(units: list[_Unit]) -> list[_Unit]:
    """Join a unit onto the previous one when its first-level number follows on (single issues → a range)."""
    out: list[_Unit] = []
    for unit in units:
        prev = out[-1] if out else None
        if (prev is not None and len(unit.start) == 1 and len(prev.start) == 1 and unit.gap != "g"
                and prev.last_number is not None and unit.first_number is not None
                and unit.first_number - prev.last_number in (0, 1)):
            prev.end = unit.end
        else:
            out.append(_Unit(unit.seq, list(unit.start), list(unit.end), unit.gap))
    return out


def _lacks(units: list[_Unit]) -> list[str]:
    missing: list[str] = []
    for a, b in zip(units, units[1:]):
        if a.last_number is None or b.first_number is None or not a.end or not a.end[0][1]:
            continue
        caption = a.end[0][1]
        if caption.startswith("("):
            continue
        gap = range(a.last_number + 1, b.first_number)
        if 0 < len(gap) <= _MAX_LACKS:
            missing.extend(f"{caption}{n}" for n in gap)
        elif len(gap) > _MAX_LACKS:
            missing.append(f"{caption}{gap.start}–{caption}{gap.stop - 1}")
    return missing


def _generated(by_tag: dict[str, list[Field]]) -> list[str]:
    out = []
    for caption_tag, value_tag in _PAIRS:
        units = _compress(_units(by_tag.get(caption_tag, []), by_tag.get(value_tag, [])))
        if not units:
            continue
        text = ""
        for i, unit in enumerate(units):
            first, last = _display(unit.start), _display(unit.end)
            piece = first if first == last else f"{first} – {last}"
            text += ("" if i == 0 else (", " if unit.gap == "n" else "; ")) + piece
        lacks = _lacks(units)
        if lacks:
            text += "; lacks " + ", ".join(lacks)
        out.append(_PAIR_LABEL[caption_tag] + text)
    return out


def coverage_of(statements: Sequence[str]) -> list[list[int]]:
    """``[first, last]`` year pairs a summary covers; an open range ("1990-") runs to ``ONGOING``.

    Read from the text, so it works the same for a library's own 866 and
    for a generated summary.  Supplements and indexes are left out: a
    library holding only the index of 2001 does not lend 2001's issues.
    """
    ranges: list[list[int]] = []
    for statement in statements:
        if statement.startswith(("Suppl.", "Indexes")):
            continue
        for piece in re.split(r"[;,]", statement):
            years = [int(y) for y in _YEAR.findall(piece)]
            if not years:
                continue
            open_end = bool(re.search(r"[-–]\s*$", piece.strip()))
            ranges.append([min(years), ONGOING if open_end else max(years)])
    return sorted(ranges)


def covers(coverage: Sequence[Sequence[int]], year: int) -> bool:
    """Whether a holding with this coverage has ``year``; no coverage known means it may (monographs)."""
    return not coverage or any(first <= year <= last for first, last in coverage)


def summary_and_coverage(by_tag: dict[str, list[Field]]) -> tuple[str, list[list[int]]]:
    """The holdings summary of a record's holdings fields and the years it covers ("" and [] if none)."""
    if "866" in by_tag:
        statements = _textual(by_tag)
    else:
        statements = [(text, text) for text in _generated(by_tag)] + _textual(by_tag)
    return "; ".join(shown for shown, _ in statements), coverage_of([held for _, held in statements])
