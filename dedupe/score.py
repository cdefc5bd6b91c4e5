"""Pairwise scoring: explicit features, vetoes first, then a rule that accepts the pair.

Read like a cataloguer's checklist (after NatLibFi RecordManager's
DedupHandler and Melinda's feature points, re-derived, not copied):

* **vetoes** — different format (print / e-book / microform…); both give a
  year and they differ; different edition statements; different volume or
  part; conflicting identifiers of one kind (both have ISBNs and share none,
  likewise OCLC numbers and LCCNs); page counts more than 10 apart;
  different series numbers.  A vetoed pair is never merged, whatever else
  agrees, and no chain of other pairs may join it either.
* **features** — title similarity (rapidfuzz, best of full title, title
  proper, Han script and pinyin forms), author overlap (order-insensitive
  surnames), year, shared identifiers, publisher, pages.
* **rules** — ``identifier``: a shared ISBN/OCLC/LCCN with a similar title
  (a wrong ISBN printed in another book does not merge); ``title-author-year``:
  near-identical title, overlapping authors, same year; ``near-year``: an
  article's versions — the same title and all of two or more authors, a year
  apart (a conference and its proceedings) or up to three years (preprint,
  conference paper, journal version); ``title-year``: an
  identical, specific title with no authors on either side.

Both records from one member: scored the same, but reported as the
member's internal duplicate instead of merged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from .features import Features

MATCH = "match"
INTERNAL = "internal"
VETO = "veto"
#: Title similarity from which a vetoed pair is kept as evidence (it looked like a match).
EVIDENCE_TITLE = 85.0
#: Below this title similarity a pair with no shared identifier and neither title inside the other meets
#: no rule (``compare`` stops early); ``dedupe.prefilter`` skips such pairs before calling it.
NO_RULE_BELOW = 70.0
#: The identifier kinds a pair shares or conflicts on (an ISSN names a serial, not an edition).
ID_KINDS = ("isbn", "oclc", "lccn")
GENERIC_TITLES = frozenset({"proceedings", "annual report", "report", "frontmatter", "front matter",
                              "editorial", "editor s notes", "editors notes", "introduction", "preface",
                              "foreword", "letters", "index", "abstracts", "programme", "program", "contents",
                              "errata", "bibliography", "minutes", "newsletter", "bulletin", "yearbook",
                              "catalogue", "catalog", "guide", "handbook", "collected works", "works", "poems",
                              "selected works", "in memoriam", "obituary", "book reviews", "reviews",
                              "call for papers", "news", "announcements", "chair s message", "message from the chair"})


@dataclass(slots=True)
class Verdict:
    """The outcome of comparing two records, with the evidence (what explain shows)."""

    decision: str                    # match | internal | veto | no
    rule: str = ""                   # the accepting rule, or the veto's name
    score: float = 0.0               # 0..1, higher is surer; orders merges
    features: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"decision": self.decision, "rule": self.rule, "score": self.score, "features": self.features}


def title_similarity(a: Features, b: Features) -> float:
    """0..100: the best agreement between the title forms both records have."""
    best = 0.0
    if a["t"] and b["t"]:
        best = fuzz.ratio(a["t"], b["t"])
        if best == 100:
            return 100.0        # no form scores more (the copies of one book, most pairs compared)
        if a["s"] and b["s"] and (a["s"] == a["t"] or b["s"] == b["t"]):
            # one side has no subtitle: compare the titles proper, a little below an exact full match
            best = max(best, fuzz.ratio(a["s"], b["s"]) - 3)
    if a["han"] and b["han"]:
        best = max(best, fuzz.ratio(a["han"], b["han"]))
        if best < 100 and a.get("hs") and b.get("hs"):
            # the Han title proper alone (an 880 may carry the part after the statement of responsibility)
            best = max(best, fuzz.ratio(a["hs"], b["hs"]) - 3)
    if a["py"] and b["py"]:
        best = max(best, fuzz.ratio(a["py"], b["py"]) - 2)
    return float(best)


def author_overlap(a: list[str], b: list[str]) -> float | None:
    """Share of the shorter author list found in the other (surnames, fuzzy); None if a side has none."""
    if not a or not b:
        return None
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    found = 0
    for name in small:
        if name in large or any(fuzz.ratio(name, other) >= 85 or _initial_of(name, other) for other in large):
            found += 1
    return found / len(small)


def _contained(x: str, y: str) -> bool:
    """Whether every word of one title occurs in the other (one is the other plus a tag)."""
    wx, wy = set(x.split()), set(y.split())
    return bool(wx and wy) and (wx <= wy or wy <= wx)


def _prefix(x: str, y: str) -> bool:
    """One title is the start of the other, give or take a typo (cut short, or a source appended)."""
    short, long_ = (x, y) if len(x) <= len(y) else (y, x)
    return fuzz.ratio(short, long_[:len(short)]) >= 95


def _inside(x: str, y: str) -> bool:
    """The shorter title stands, give or take a typo, inside the longer: a citation whose title field
    also caught the end of the author list before it and the start of the source after it."""
    short = x if len(x) <= len(y) else y
    return len(short.split()) >= 4 and fuzz.partial_ratio(x, y) >= 95


def _initial_of(x: str, y: str) -> bool:
    """A surname cut short by a lost letter ('b' for 'bohm') still counts."""
    short, long_ = (x, y) if len(x) <= len(y) else (y, x)
    return len(short) <= 2 and long_.startswith(short)


def _ids(a: Features, b: Features) -> tuple[list[str], list[str]]:
    """The identifier kinds both records give, split into those they share a value of and the others."""
    shared, conflicting = [], []
    for kind in ID_KINDS:
        x = a.get(kind)
        if x:
            y = b.get(kind)
            if y:
                (conflicting if set(x).isdisjoint(y) else shared).append(kind)
    return shared, conflicting


def years_agree(a: Features, b: Features) -> bool:
    """The same year, or one record's year among the other's ("[2001], c2000" agrees with 2000)."""
    x, y = a["y"], b["y"]
    return x == y or bool(b.get("ys")) and x in b["ys"] or bool(a.get("ys")) and y in a["ys"]


def _publishers_differ(a: Features, b: Features) -> bool:
    return bool(a["pub"] and b["pub"]) and fuzz.token_set_ratio(a["pub"], b["pub"]) < 60


def year_veto(a: Features, b: Features, shared: list[str], strong: bool = False) -> str:
    """Why two given years keep the records apart, '' when they do not.

    With a shared identifier a year apart is a printing against the publication year, and a later
    year whose record says it is a printing ("Reprinted 2014") is an unchanged reprint — by the same
    publisher: another publisher's reprint carrying the original's ISBN is another manifestation.
    """
    if not (a["y"] and b["y"]) or years_agree(a, b):
        return ""
    if not shared:
        # without an identifier only a near-certain match survives a year's difference (the year of a
        # conference against the year of its proceedings, a printing year; a paper's versions): same
        # title and authors
        return "" if strong and _near_years(a, b) and not _publishers_differ(a, b) else "year"
    if _publishers_differ(a, b):
        return "reprint-publisher"
    later = a if a["y"] > b["y"] else b
    if abs(a["y"] - b["y"]) <= 1 or later.get("rp") or "oclc" in shared:
        # a WorldCat number names one manifestation: libraries attached to it only date it differently
        return ""
    return "year"


#: How far apart a paper's versions may be dated: a preprint or report, the conference paper and the
#: journal version usually appear within three years (the usual journal publication lag).
VERSION_YEARS = 3


def _near_years(a: Features, b: Features) -> bool:
    """Years one apart (a printing, a conference and its proceedings), or up to ``VERSION_YEARS`` for
    the versions of one article by the same two or more authors — a component part is not reprinted,
    and a single author's recurring column ("Book reviews", 1998 and 2000) stays apart."""
    gap = abs(a["y"] - b["y"])
    if gap <= 1:
        return True
    return (gap <= VERSION_YEARS and a["fmt"] == b["fmt"] == "article" and min(len(a["a"]), len(b["a"])) >= 2
            and not (_generic(a) or _generic(b)))


def _languages_differ(a: Features, b: Features) -> bool:
    """A translation: both say their language and share none (008/35-37, 041)."""
    x, y = a.get("lg"), b.get("lg")
    return bool(x and y) and x[0] != y[0] and set(x).isdisjoint(y)


def vetoes(a: Features, b: Features, conflicting_ids: list[str], shared: list[str] = (),
           strong: bool = False) -> list[str]:
    """Why ``a`` and ``b`` cannot be one edition whatever else agrees (checked before any rule).

    ``strong``: the titles are the same (or one is the other plus a subtitle or a word) and every
    author of the shorter list is in the other (``_same_paper``); read only when both records give a
    year, the years disagree and no identifier is shared (see ``compare``).
    """
    out = []
    if a["fmt"] != b["fmt"] and a["fmt"] and b["fmt"]:
        out.append("format")        # an unknown format (blank leader/06) is compatible with anything
    year = year_veto(a, b, shared, strong)
    if year:
        out.append(year)
    ed_a, ed_b = a["ed"], b["ed"]
    if ed_a != ed_b and (ed_a and ed_b or (ed_a or ed_b) != "1"):
        # "2nd ed." vs "3rd ed.", and "2nd ed." vs no statement (a first edition seldom says so)
        out.append("edition")
    if a["vol"] != b["vol"] or (a.get("qv") and b.get("qv") and a["qv"] != b["qv"]):
        # v. 1 vs v. 2, a single volume vs the record for the whole set, ISBNs qualified "(v. 1)" / "(v. 2)"
        out.append("volume")
    if _languages_differ(a, b):
        out.append("language")
    # ISBNs that share nothing are not a veto: hardback and paperback ISBNs of one edition meet in the
    # cluster through a record carrying both (see ``ids_conflict``)
    for kind in conflicting_ids:
        if kind != "isbn":
            out.append(f"{kind}-conflict")
    pg_a, pg_b = a["pg"], b["pg"]
    if pg_a and pg_b and abs(pg_a - pg_b) > 10 and "oclc" not in shared:
        out.append("pages")
    if a["ser"] and b["ser"] and set(a["ser"]).isdisjoint(b["ser"]):
        out.append("series-number")
    return out


def compare(a: Features, b: Features) -> Verdict:
    """Score a pair of records; deterministic and symmetric.

    Called for every candidate pair of every block (most end vetoed or matched), so what only one
    branch reads is computed in that branch: whether the years agree once, ``_same_paper`` only when
    the year veto asks.
    """
    shared, conflicting = _ids(a, b)
    title = title_similarity(a, b)
    if not shared and title < NO_RULE_BELOW and not _contained(a["t"], b["t"]):
        # most pairs of a block (same author and year, other books): no rule can accept them
        return Verdict("no", "", 0.0, {"title": round(title, 1)})
    authors = author_overlap(a["a"], b["a"])
    ya, yb = a["y"], b["y"]
    feats = {"title": _rounded(title, 1), "authors": None if authors is None else _rounded(authors, 2),
             "year": [ya, yb], "shared_ids": shared}
    if a["pg"] and b["pg"]:
        feats["pages"] = [a["pg"], b["pg"]]
    if a["pub"] and b["pub"]:
        feats["publisher"] = _rounded(fuzz.token_set_ratio(a["pub"], b["pub"]), 1)
    same_year = bool(ya and yb and years_agree(a, b))
    # the year veto reads ``strong`` only for two different years and no shared identifier
    strong = bool(ya and yb) and not same_year and not shared and _same_paper(a, b, title, authors)
    veto = vetoes(a, b, conflicting, shared, strong=strong)
    if veto:
        feats["vetoes"] = veto
        return Verdict(VETO, veto[0], 0.0, feats)
    if "isbn" in conflicting and not shared:
        # other ISBNs: joined only in a cluster where a record carries both
        return Verdict("no", "isbn-conflict", 0.0, feats)
    rule, score = _rule(a, b, title, authors, same_year, shared)
    if not rule:
        return Verdict("no", "", round(score, 4), feats)
    decision = INTERNAL if a["src"] == b["src"] else MATCH
    return Verdict(decision, rule, round(score, 4), feats)


def _rounded(x: float, digits: int) -> float:
    """``round(x, digits)``, skipped for a whole number (100.0, 1.0: most scores), which it leaves as is."""
    return x if x.is_integer() else round(x, digits)


def _same_paper(a: Features, b: Features, title: float, authors: float | None) -> bool:
    """Near-certain without a year: every author of the shorter list in the other, and the same title
    or one title the other plus a subtitle or a word ("… kernel", "Design and evaluation of …")."""
    if authors != 1.0:
        return False
    short = min(len(a["t"].split()), len(b["t"].split()))
    return title >= 95 or (title >= 80 and short >= 4 and _contained(a["t"], b["t"]))


def _generic(f: Features) -> bool:
    s = f["s"] or f["t"]
    # a very short title says little — but four Han characters are a whole title
    return s in GENERIC_TITLES or len(s) < (6 if s.isascii() else 3)


def _typo_apart(a: Features, b: Features) -> bool:
    """Titles a slip of the keys apart (a letter dropped, added, changed or two swapped; two in a title of
    eight letters or more) — not another word: "A walk in the tundra" and "A walk in the desert", one
    series' books by one author, publisher, year and extent, are as similar by ratio as a typo is."""
    limit = 2 if min(len(a["t"]), len(b["t"])) >= 8 else 1
    return OSA.distance(a["t"], b["t"], score_cutoff=limit) <= limit


def _corroborated(a: Features, b: Features, both: bool = False) -> bool:
    """The same publisher and/or the same extent (both when ``both``); a long title counts alone."""
    publisher = bool(a["pub"] and b["pub"]) and fuzz.token_set_ratio(a["pub"], b["pub"]) >= 80
    pages = bool(a["pg"] and b["pg"]) and abs(a["pg"] - b["pg"]) <= 2
    if both:
        return publisher and pages
    return publisher or pages or min(len(a["t"]), len(b["t"])) >= 25


def _rule(a: Features, b: Features, title: float, authors: float | None, same_year: bool,
          shared: list[str]) -> tuple[str, float]:
    author_points = 0.5 if authors is None else authors
    score = 0.55 * title / 100 + 0.25 * author_points + 0.1 * same_year + 0.1 * bool(shared)
    if shared and ((title >= 70 and (authors is None or authors > 0 or title >= 90))
                   or (authors is not None and authors >= 0.5 and same_year)):
        # a shared identifier with a similar title, or with the same author and year (a translated
        # or romanised title); a wrong ISBN printed in another book agrees on neither
        return "identifier", score
    if _generic(a) or _generic(b):
        # "Annual report", "Editor's notes": the title says little, so everything else must agree
        # exactly — same title, year and authors (or none), same publisher when both give one
        if (a["t"] == b["t"] and same_year and a["a"] == b["a"]
                and (not (a["pub"] and b["pub"]) or a["pub"] == b["pub"])):
            return "generic-title-exact", score
        if (a["s"] not in GENERIC_TITLES and b["s"] not in GENERIC_TITLES and authors == 1.0 and same_year
                and a["pg"] and a["pg"] == b["pg"] and a["pub"] and a["pub"] == b["pub"] and title >= 95):
            # a short title ("Jesus") with every other detail the same: author, year, pages, publisher
            return "title-author-year", score
        return "", score
    years_ok = same_year or not a["y"] or not b["y"]     # a year on one side only does not block
    if not years_ok and a["fmt"] == b["fmt"] == "article" and min(len(a["a"]), len(b["a"])) >= 2 \
            and _same_paper(a, b, title, authors) and _near_years(a, b):
        # an article's versions, which the year veto let through (a book a year apart with nothing else
        # in common but title and author may be a reissue, a single author's column a year's next one)
        return "near-year", score
    if title >= 88 and authors is not None and authors >= 0.5 and years_ok:
        return "title-author-year", score
    if title >= 96 and authors is not None and authors > 0 and years_ok:
        return "title-author-year", score
    if authors is None and (a["a"] or b["a"]) and title >= 95 and same_year and _corroborated(a, b):
        # one copy lost its author: the same title and year, and the same publisher or extent
        return "title-year", score
    if title >= 75 and authors == 1.0 and same_year and _corroborated(a, b, both=True) and _typo_apart(a, b):
        # a typo in a short title: author, year, publisher and extent all the same
        return "title-author-year", score
    if authors is not None and years_ok and min(len(a["a"]), len(b["a"])) >= 1:
        # one title is the other plus a tag ("… book review", "Tutorial: …") or cut short, or with a
        # source appended ("… acm sigmod intl"); a year on one side only does not block
        if authors >= 0.5 and min(len(a["t"]), len(b["t"])) >= 20 and (
                _contained(a["t"], b["t"]) or fuzz.token_set_ratio(a["t"], b["t"]) >= 97
                or _prefix(a["t"], b["t"]) or _inside(a["t"], b["t"])):
            return "title-author-year", score
        # the same two or more authors in the same year under a reworded title
        if title >= 80 and authors >= 0.99 and min(len(a["a"]), len(b["a"])) >= 2:
            return "title-author-year", score
    if title >= 97 and authors is None and not (a["a"] or b["a"]) and same_year and len(a["t"]) >= 20:
        return "title-year", score
    if title >= 98 and years_ok and len(a["t"]) >= 40 and len(a["t"].split()) >= 6 and not _publishers_differ(a, b):
        # a long, specific title word for word: the authors are garbled on one side ("anthology", lost letters)
        return "title-year", score
    return "", score
