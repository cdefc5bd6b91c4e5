"""Why a cluster holds what it holds, and what each member holds twice — from stored evidence.

``explain`` reads the pairs scored when the records last changed (no
recomputation): for every pair of members that was accepted, the rule and the
feature scores; the staff overrides touching the members; and the pairs that
looked alike but were kept apart (vetoed, or accepted yet not applied because
they would chain records a veto keeps apart), with the cluster the other
record is in.  ``internal_duplicates`` lists, per member library, the records
it holds twice: scored like any pair, reported instead of merged.
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy.engine import Engine

from .evidence import EvidenceStore
from .score import MATCH
from .members import MemberStore
from .store import ClusterStore

RecordKey = tuple[str, str]


def N_(text: str) -> str:
    """Marks English for translation: ``scripts/i18n.py`` extracts it, the staff pages translate it."""
    return text


#: Each rule and veto in a cataloguer's words (the staff record page shows the same sentences translated).
WORDS = {
    "identifier": N_("the same ISBN, OCLC number or LCCN, and a similar title (or the same author and year)"),
    "title-author-year": N_("the same title (give or take a typo, a subtitle, or names or a source run into "
                            "it), the same authors, and the same year or a year on one side only"),
    "near-year": N_("versions of one article by the same two or more authors: the same title (or the same with "
                    "a subtitle more), a year apart (a conference and its proceedings) or up to three years apart "
                    "(preprint, conference paper, journal)"),
    "title-year": N_("the same long, specific title and year, with one copy missing its author or garbling it"),
    "generic-title-exact": N_("a title that says little (\"Annual report\"): title, year, authors and publisher "
                              "all exactly the same"),
    "format": N_("different formats: print, e-book, audiobook, large print, microform or braille "
                 "(a blank leader/06 counts as any)"),
    "year": N_("different years, and no printing, reprint or article's later version explains it"),
    "reprint-publisher": N_("another publisher's reprint carrying the original's ISBN: another manifestation"),
    "edition": N_("different edition statements (a printing or reprint statement is not an edition)"),
    "volume": N_("different volumes or parts, or one volume against the record for the whole set"),
    "language": N_("different languages (008/35-37, 041): a translation"),
    "isbn-conflict": N_("no ISBN in common; they meet only if a record of the entry carries both "
                        "(hardback and paperback of one edition)"),
    "oclc-conflict": N_("OCLC numbers that differ: WorldCat holds them as different manifestations"),
    "lccn-conflict": N_("Library of Congress control numbers that differ"),
    "pages": N_("page counts more than 10 apart"),
    "series-number": N_("different numbers in the same series"),
}


def words(name: str) -> str:
    """A rule or veto in a cataloguer's words (the name itself when unknown)."""
    return WORDS.get(name, name)


def accepted_pair_rules(engine: Engine) -> dict[frozenset, str]:
    """``{a, b}`` → rule for every accepted cross-member pair (what ``evaluate --by-rule`` counts)."""
    return {frozenset((a, b)): rule for a, b, _decision, rule, _score in EvidenceStore(engine).all_pairs((MATCH,))}


def explain(engine: Engine, cluster_id: str) -> dict | None:
    """The evidence behind one cluster (any id ever published; redirects are followed), or None."""
    clusters = ClusterStore(engine)
    live = clusters.resolve(cluster_id)
    if live is None:
        return None
    cluster = clusters.get(live)
    evidence = EvidenceStore(engine)
    members = set(cluster.members)
    feats = evidence.features(members)
    pairs = evidence.pairs_touching(members)
    outside = {x for p in pairs for x in (p.a, p.b) if x not in members}
    where = MemberStore(engine).clusters_of(outside)
    joined, apart = [], []
    for p in pairs:
        if p.a in members and p.b in members:
            joined.append(p.as_dict())
        else:
            other = p.b if p.a in members else p.a
            entry = p.as_dict()
            entry["other_cluster"] = where.get(other)
            if p.decision == MATCH:
                entry["why_apart"] = N_("accepted, but joining would put records a veto keeps apart in one cluster")
            elif p.decision == "internal":
                entry["why_apart"] = N_("both records are from one member: reported as its internal duplicate")
            else:
                entry["vetoes"] = p.evidence.get("vetoes", [p.rule])
                entry["why_apart"] = "vetoed: " + "; ".join(map(words, entry["vetoes"]))
            apart.append(entry)
    overrides = [o.as_dict() for o in evidence.overrides() if o.a in members or o.b in members]
    return {
        "cluster": live,
        "requested": cluster_id,
        "title": cluster.record.full_title,
        "work_key": cluster.work_key,
        "members": [{"source": s, "local_id": l, "title": feats.get((s, l), {}).get("t", ""),
                     "year": feats.get((s, l), {}).get("y")} for s, l in cluster.members],
        "joined_by": joined,
        "overrides": overrides,
        "kept_apart": apart,
    }


def explain_text(data: dict) -> str:
    """The explanation as lines a librarian reads."""
    lines = [f"cluster {data['cluster']}" + (f" (asked for {data['requested']}, which redirects here)"
                                             if data["requested"] != data["cluster"] else ""),
             f"  {data['title']}", f"  {len(data['members'])} member record(s):"]
    for m in data["members"]:
        lines.append(f"    {m['source']}:{m['local_id']}  {m['title']} ({m['year'] or 'no year'})")
    if data["joined_by"]:
        lines.append("  joined by:")
        for p in data["joined_by"]:
            lines.append(f"    {_pair(p)}  rule {p['rule']}: {words(p['rule'])}")
            lines.append(f"      score {p['score']:.3f}  {_features(p['features'])}")
    elif len(data["members"]) > 1:
        lines.append("  joined by staff override only")
    if data["overrides"]:
        lines.append("  overrides:")
        for o in data["overrides"]:
            lines.append(f"    #{o['id']} {o['kind']}-merge {o['a']} {o['b']}" + (f"  ({o['note']})" if o["note"] else ""))
    if data["kept_apart"]:
        lines.append("  kept apart:")
        for p in data["kept_apart"]:
            lines.append(f"    {_pair(p)}  → {p['other_cluster'] or 'no cluster'}: {p['why_apart']}  "
                         f"{_features(p['features'])}")
    return "\n".join(lines)


def _pair(p: dict) -> str:
    return f"{p['a'][0]}:{p['a'][1]} ~ {p['b'][0]}:{p['b'][1]}"


def _features(f: dict) -> str:
    parts = [f"title {f.get('title')}", f"authors {f.get('authors')}", f"year {f.get('year')}"]
    if f.get("shared_ids"):
        parts.append("shared " + "/".join(f["shared_ids"]))
    if f.get("pages"):
        parts.append(f"pages {f['pages']}")
    if f.get("publisher") is not None:
        parts.append(f"publisher {f['publisher']}")
    return "; ".join(parts)


def internal_duplicates(engine: Engine, source: str | None = None) -> dict[str, list[dict]]:
    """Per member library, the pairs of its own records that describe one edition."""
    evidence = EvidenceStore(engine)
    pairs = evidence.internal_duplicates(source)
    feats = evidence.features({x for p in pairs for x in (p.a, p.b)})
    out: dict[str, list[dict]] = defaultdict(list)
    for p in pairs:
        fa, fb = feats.get(p.a, {}), feats.get(p.b, {})
        out[p.a[0]].append({"a": p.a[1], "b": p.b[1], "rule": p.rule, "score": p.score,
                            "title": fa.get("t") or fb.get("t", ""), "year": fa.get("y") or fb.get("y"),
                            "features": p.evidence})
    return dict(out)
