"""What pairwise matching compares, extracted once per record.

A record's *features* are a small JSON-ready dict (title forms, author
surnames, year, edition, pages, volume, publisher, series numbers,
identifiers, format): stored per member record so an incremental dedupe
compares a changed record with its block without re-reading full records.
Its *blocking keys* say which records it is compared with; *signature*
entries (``sig:…``) carry what the clustering's compatibility check needs
(format, year, edition, volume), so no chain of accepted pairs can join two
records one of those attributes keeps apart.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz import fuzz

from normaliser.manifestation import PRINTING, carrier_in_text
from normaliser.model import Record
from normaliser.text import has_han, match_key, pinyin

Features = dict

#: Changed whenever what is extracted, how records are keyed or how pairs are decided (``score``) changes:
#: stored features, keys and pairs of an older version are stale, and the next build scores every record
#: again (``pipeline.dedupe_stage``).
MATCHER_VERSION = 2026120214   # 14: rows written through orjson (jsoncodec)
SIGNATURE = "sig:"
#: Signature kinds that must have at most one value inside a cluster.  Not the year: a printing a year
#: later, or an unchanged reprint, is the same manifestation (the pairwise year veto still stops chains).
SINGLE_VALUED = ("fmt", "ed", "vol")
#: Formats of text on another carrier: a book-template record with that carrier meets records typed so.
_CARRIER_FORMAT = {"audio": "recording", "microform": "microform", "large-print": "large-print",
                   "braille": "braille"}



@lru_cache(maxsize=1 << 15)
def _key(text: str, language: str | None = None) -> str:
    """``match_key``, remembered: a record asks for its title's key up to four times (features, volume,
    work key, its entry's work key), and names, publishers and the titles of one book's copies at other
    members recur record after record (50,000 member records asked 383,043 times for 26,899 keys).  Not
    larger: 2^18 entries, enough to keep a book's copies a member's whole catalogue apart, saved 1.1 CPU-s of
    features at 200k but held 80 MB more at 1M (397 against 316 MB) for no gain measurable there (full passes
    over one catalogue, 2026-12-05, BENCHMARKS.md)."""
    return match_key(text, language)


#: ``pinyin``, remembered likewise (Han titles and surnames recur as keys do).
_pinyin = lru_cache(maxsize=1 << 14)(pinyin)
#: Entries of each memo below.  The copies of one book at dozens of members repeat its edition statement,
#: extent, publisher and names, so the pure string functions of ``record_features`` are remembered too:
#: over 100,010 member records, 299 distinct edition statements for 200,020 calls, 6,843 extents, 2,558
#: publishers, 12,322 names; ``record_features`` + ``blocking_keys`` 9.8 → 7.9 CPU-s, the same features.
_MEMO = 1 << 14
#: ``carrier_in_text``, remembered (four regular expressions over the extent and edition of each record).
_carrier_in_text = lru_cache(maxsize=_MEMO)(carrier_in_text)


_NUMBER_WORDS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "erste": 1, "zweite": 2, "dritte": 3, "premiere": 1, "deuxieme": 2,
    "i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10,
}
_CJK_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_DIGITS = re.compile(r"\d+")
_ORDINAL = re.compile(r"(\d+)\s*(?:st|nd|rd|th|e|er|re|\.)?\b")
_CJK_ORDINAL = re.compile(r"第\s*([0-9一二三四五六七八九十]+)\s*[版卷册辑部分编集]")
_VOLUME = re.compile(r"\b(?:v|vol|volume|volumes|bd|band|t|tome|tomo|pt|part|no|book|livre|teil)\b\.?\s*"
                     r"([0-9]+|[ivxlc]+|one|two|three|four|five|six|seven|eight|nine|ten)\b", re.I)
_PAGES = re.compile(r"(\d+)\s*(?:p\b|pp\b|pages?\b|s\.|leaves|页|頁)", re.I)
_LEADING_NUMBER = re.compile(r"^\s*\[?(\d+)")
_PUBLISHER_NOISE = frozenset("""
    the inc ltd co company corp corporation publishing publishers publisher publications publication pub pubs
    pubns press verlag
    editions edition editorial et and sons son limited gmbh llc plc books book group international
    chubanshe 出版社 出版 有限公司 公司
""".split())
_ROMAN = re.compile(r"^[ivxlc]+$")


def _number(token: str) -> int | None:
    token = token.lower().strip(".")
    if token.isdigit():
        return int(token)
    if token in _NUMBER_WORDS:
        return _NUMBER_WORDS[token]
    if _ROMAN.match(token):
        return _roman(token)
    if token and all(ch in _CJK_DIGITS for ch in token):
        if token == "十":
            return 10
        if len(token) == 2 and token[0] == "十":
            return 10 + _CJK_DIGITS[token[1]]
        if len(token) >= 2 and token[1] == "十":
            return _CJK_DIGITS[token[0]] * 10 + (_CJK_DIGITS[token[2]] if len(token) > 2 else 0)
        return _CJK_DIGITS[token[0]]
    return None


def _roman(text: str) -> int | None:
    values = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
    total, prev = 0, 0
    for ch in reversed(text):
        v = values[ch]
        total += -v if v < prev else v
        prev = max(prev, v)
    return total or None


@lru_cache(maxsize=_MEMO)
def edition_number(statement: str) -> str:
    """'2nd ed.' / 'Second edition' / 'Rev. ed.' / '第2版' → '2', '2', 'rev', '2'; '' when none."""
    if not statement:
        return ""
    text = unicodedata.normalize("NFKC", statement).casefold()
    if PRINTING.search(text) or _carrier_in_text("", text):
        return ""       # "3rd printing", "Reprinted 2014", "Large print ed.": not another edition
    m = _CJK_ORDINAL.search(text)
    if m:
        n = _number(m.group(1))
        return str(n) if n else ""
    m = _ORDINAL.search(text)
    if m:
        return str(int(m.group(1)))
    for word in re.findall(r"[a-zà-ÿ]+", text):
        if word in _NUMBER_WORDS and len(word) > 2:
            return str(_NUMBER_WORDS[word])
    key = _key(text)
    if not key:
        return ""
    # "Rev. ed.", "New ed.", "Reprint": the first word tells the edition apart
    first = key.split()[0]
    return "" if first in ("ed", "edition", "1st") else first[:12]


@lru_cache(maxsize=_MEMO)
def volume_number(*texts: str) -> str:
    """The volume or part a record describes ('v. 2', 'Part three', '第二卷'), '' for none."""
    for text in texts:
        if not text:
            continue
        text = unicodedata.normalize("NFKC", text)
        m = _CJK_ORDINAL.search(text)
        if m:
            n = _number(m.group(1))
            if n:
                return str(n)
        m = _VOLUME.search(text)
        if m:
            n = _number(m.group(1))
            if n:
                return str(n)
    return ""


def part_volume(record: Record) -> str:
    """Volume from the part statement ($n $p), else from a bare number there, else from the title."""
    if record.part:
        v = volume_number(record.part)
        if v:
            return v
        m = _LEADING_NUMBER.match(record.part)
        if m:
            return str(int(m.group(1)))
        roman = record.part.strip(" .").lower()
        if _ROMAN.match(roman):
            return str(_roman(roman))
        # a named part compares in one script: "文物志" and "Wen wu zhi" are both "wenwuzhi"
        key = _key(record.part)
        return re.sub(r"\s+", "", _pinyin(key) if has_han(key) else key)[:20]
    if record.format == "article":
        # "vol. 4, no. 2" in an article's title cites the journal issue it appeared in, not a part of it
        return ""
    return volume_number(record.title, record.subtitle)


_EXTENT_VOLUME = re.compile(r"^\s*v\.\s*(\d+)\b", re.I)


def record_volume(record: Record) -> str:
    """The volume a record describes: 245 $n/$p or the title, else 490/830 $v of the set itself, 300, ISBN.

    A record for volume 2 may say so only in its series statement (the set's title ; v. 2) or in its
    extent ("v. 3 (304 p.)"); the record for the whole set ("4 v.") has no volume, so the two stay apart
    (ISBN qualifiers: ``qualified_volume``).
    """
    found = part_volume(record)
    if found:
        return found
    title = _key(record.title)
    for entry in record.series:
        name, sep, number = entry.rpartition(";")
        if sep and title and fuzz.ratio(_key(name), title) >= 90:
            found = volume_number(number) or (number.strip() if number.strip().isdigit() else "")
            if found:
                return str(int(found))
    m = _EXTENT_VOLUME.match(record.extent or "")
    return str(int(m.group(1))) if m else ""


def qualified_volume(record: Record) -> str:
    """The volume the ISBN qualifiers name ("(v. 2)" beside the set's "(set)"), '' for none or several.

    Compared only when both records say (``score.vetoes``): a copy without ISBNs, or with the
    qualifiers dropped, is still the same volume.
    """
    volumes = {p.split(" ", 1)[1] for p in record.isbn_parts} - {"set"}
    return volumes.pop() if len(volumes) == 1 and len(record.isbn_parts) <= 2 else ""


def record_format(record: Record) -> str:
    """The format dedupe compares; '' when unknown (a blank leader/06 is compatible with anything).

    Text on another carrier catalogued on the book template (007 ``sd``, "2 audio discs", "Large
    print ed.") is that carrier, whatever leader/06 says.
    """
    fmt = "" if record.format in ("other", "") else record.format
    if fmt in ("book", ""):
        carrier = record.carrier or _carrier_in_text(record.extent, record.edition)
        fmt = _CARRIER_FORMAT.get(carrier, fmt)
    return fmt


@lru_cache(maxsize=_MEMO)
def page_count(extent: str) -> int | None:
    """The largest page number of an extent statement: 'xii, 345 p. : ill.' and '345 pages' → 345."""
    if not extent:
        return None
    found = [int(n) for n in _PAGES.findall(unicodedata.normalize("NFKC", extent))]
    return max(found) if found else None


@lru_cache(maxsize=_MEMO)
def surname(name: str, kind: str = "person") -> str:
    """The folded surname of a heading ('Mackay, D. Scott' and 'D. Scott Mackay' → 'mackay')."""
    if not name:
        return ""
    name = name.replace("?", "")   # a lost non-ASCII letter ("B?hm"): the rest still compares
    if has_han(name):
        # a Han name meets its romanisation ("廖修广" ~ "Liao, Xiuguang") as the surname's pinyin
        han = _key(re.sub(r"[\s,，.·・]", "", name.split("(")[0]))
        return _pinyin(han[:1]) if kind == "person" and han else han
    if kind != "person":
        return _key(name)[:40]
    head, sep, _rest = name.partition(",")
    key = _misdecoded_out(_key(head if sep else name))
    words = key.split()
    if not words:
        return ""
    return words[0] if sep else words[-1]


def _misdecoded_out(key: str) -> str:
    """Drop letters of another script inside a Latin word: a letter lost to a wrong character set.

    "Schöning" read in the wrong code page comes out "schіning" (a Cyrillic і); with the stray letter
    out it compares like "B?hm" does with its '?' out ('schning' ~ 'schijning').
    """
    if key.isascii():
        return key
    return " ".join(w if w.isascii() or not any(c.isascii() for c in w)
                    else "".join(c for c in w if c.isascii() or _latin(c)) for w in key.split())


def _latin(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("LATIN")


@lru_cache(maxsize=_MEMO)
def publisher_key(publisher: str) -> str:
    words = [w for w in _key(publisher).split() if w not in _PUBLISHER_NOISE]
    return " ".join(words[:2])


def _han_title(record: Record) -> str:
    for p in record.parallel:
        if p.tag == "245" and has_han(p.text):
            return re.split(r"\s+/|\s*／", p.text, 1)[0]
    if has_han(record.title):
        # with the part, as an 880 of 245 carries $n/$p: "贵州省志 : 文物志" meets "贵州省志. 文物志"
        parts = [record.title] + [p for p in (record.subtitle, record.part) if p and has_han(p)]
        return " : ".join(parts)
    return ""


def _spaceless(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text)


def record_features(record: Record) -> Features:
    """The features of one record (small and JSON-ready)."""
    language = record.languages[0] if record.languages else None
    full = _key(record.full_title, language)
    short = _key(record.title, language)
    han = _han_title(record)
    romanised = ""
    if han:
        # Han titles and their romanisation meet as toneless pinyin without spaces
        romanised = _spaceless(_pinyin(_key(han)))
    elif language == "chi" or (record.title and not record.title.isascii()):
        romanised = _spaceless(_key(record.full_title))
    authors = sorted({s for s in (surname(c.name, c.kind) for c in record.contributors
                                  if c.kind == "person" or c.primary) if s})
    if not authors:
        authors = sorted({s for s in (surname(c.name, c.kind) for c in record.contributors) if s})
    series_numbers = sorted({n for s in record.series for n in _DIGITS.findall(s.rsplit(";", 1)[-1])
                             if ";" in s or "v." in s})
    return {
        "src": record.source,
        "fmt": record_format(record),
        "t": full,
        "s": short,
        "han": _key(han) if han else "",
        "hs": _key(re.split(r"\s+/|\s*[:：/]|\.\s", han, 1)[0]) if han else "",   # the Han title proper
        "py": romanised,
        "a": authors[:12],
        "y": record.year,
        "ed": edition_number(record.edition),
        "vol": record_volume(record),
        "pg": page_count(record.extent),
        "pub": publisher_key(record.publisher),
        "ser": series_numbers[:4],
        "isbn": sorted(set(record.isbns)),
        "oclc": sorted(set(record.oclc_numbers)),
        "lccn": sorted(set(record.lccns)),
        "issn": sorted(set(record.issns)),
        "ys": [y for y in record.years if y != record.year][:6],
        "rp": bool(record.printing),
        "lg": record.languages[:3],
        "qv": qualified_volume(record),
    }


_STOP = frozenset("a an the of and in on for to at by with from de la le les des der die das und el los".split())


def blocking_keys(f: Features) -> list[str]:
    """Keys whose records are compared pairwise, most specific first; then the signature.

    Identifiers; a short-title key (the title proper's first 20 letters,
    spaces out: survives words run together); a key of the title's longest
    words (survives a different first word or a subtitle); a CJK-aware
    pinyin key (a Han title meets its romanisation); surname + year for
    every author (survives a rewritten title); pairs of
    co-authors (survive a rewritten title without a year); for articles,
    surname + one of the title's two longest words (the cataloguer's
    author/title key: survives a lost year, a single author or an author's
    name run into the title; books have identifiers and dated imprints).
    """
    keys = [f"isbn:{i}" for i in f["isbn"]] + [f"oclc:{n}" for n in f["oclc"]] + [f"lccn:{n}" for n in f["lccn"]]
    keys += [f"issn:{i}" for i in f["issn"]]
    short = f["s"] or f["t"]
    # the title's words longest first (ties alphabetical): the "words:" key and the articles' author/title key
    ranked = sorted({w for w in f["t"].split() if w not in _STOP}, key=lambda w: (-len(w), w))
    if short:
        # the first 20 letters, spaces out: survives words run together ("asystemforflexible…", "redorecovery")
        keys.append("title:" + short.replace(" ", "")[:20])
        long_words = sorted(ranked[:3])
        if len(long_words) >= 2:
            keys.append("words:" + " ".join(long_words))
    if f["han"]:
        keys.append("han:" + f["han"].replace(" ", "")[:8])
    if f["py"]:
        keys.append("py:" + f["py"][:16])
    if f["y"]:
        keys += [f"author:{a}|{f['y']}" for a in f["a"][:3]]
    # two co-authors meet without a year (a citation that lost it, a title reworded)
    keys += [f"authors:{x}|{y}" for i, x in enumerate(f["a"][:3]) for y in f["a"][i + 1:3] if len(x) > 2 < len(y)]
    if f["fmt"] == "article":
        # an article has no ISBN and its citations often lose the year: the author/title key stands in
        rare = [w for w in ranked if len(w) > 3][:2]
        keys += [f"aw:{a}|{w}" for a in f["a"][:3] if len(a) > 1 for w in rare]
    keys = list(dict.fromkeys(keys))
    keys += signature(f)
    return keys


def signature(f: Features) -> list[str]:
    """``sig:kind:value`` entries the clustering checks for compatibility."""
    out = [f"{SIGNATURE}fmt:{f['fmt']}"] if f["fmt"] else []
    if f["y"]:
        out.append(f"{SIGNATURE}year:{f['y']}")
    if f["ed"]:
        out.append(f"{SIGNATURE}ed:{f['ed']}")
    if f["vol"]:
        out.append(f"{SIGNATURE}vol:{f['vol']}")
    return out


def ids_conflict(x: list[dict[str, set[str]]], y: list[dict[str, set[str]]]) -> str:
    """Why two clusters' identifiers keep them apart ('' when they do not); each list holds one dict per record.

    OCLC numbers and LCCNs conflict record by record (both have some and share none).  ISBNs are
    compared cluster-wide: the ISBNs that appear together on any record of a cluster (hardback and
    paperback) are one edition's, so a copy with only the paperback ISBN joins a cluster holding a
    record with both — and a cluster whose ISBNs share none with the other's stays apart.
    """
    isbn_x = set().union(*(ids["isbn"] for ids in x if "isbn" in ids))
    isbn_y = set().union(*(ids["isbn"] for ids in y if "isbn" in ids))
    if isbn_x and isbn_y and not isbn_x & isbn_y:
        return "isbn-conflict"
    for ia in x:
        for ib in y:
            for kind, values in ia.items():
                other = ib.get(kind)
                if kind != "isbn" and other and not values & other:
                    return f"{kind}-conflict"
    return ""


def work_key(record: Record) -> str:
    """Shared by every edition of a work: the title proper and the first author's surname, folded.

    Never used to merge (editions stay apart), only to link "other editions".
    """
    han = _han_title(record)
    title = _key(re.split(r"\s*[:：]", han, 1)[0]) if han else _key(
        record.title, record.languages[0] if record.languages else None)
    if not title:
        return ""
    main = record.main_author
    kind = next((c.kind for c in record.contributors if c.name == main), "person")
    return f"{title[:150]}|{surname(main, kind)}"[:200]
