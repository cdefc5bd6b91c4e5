"""The authority store: every form of every name, and which entity (person, body, title…) it belongs to.

One row per form of an authority record — its heading, each see-from
(4XX, CNMARC pinyin) and each linking entry (7XX) — with the folded key
(:func:`normaliser.authority.heading_key`) and the entity the record
describes.  Records of one entity from several sources (the national
centre's file and a member's) share an identifier, so the entity is the
record's first identifier (its LCCN, else the first ``scheme:value`` of
024/035/001+003), else the record itself: deduplication by identifier,
never by name.

Search uses the forms of the entities whose *heading* (or linking entry)
is a bibliographic record's author — never an entity found only through a
see-from, because one see-from ("Wang, Li") can belong to two people; the
author page lists every entity a name leads to, so a shared variant shows
both people and merges neither.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import Column, Index, String, Table, Text, delete, select, tuple_
from sqlalchemy.engine import Engine

from storage.db import chunks, metadata, write_lock

from .authority import heading_key
from .model import Record

__all__ = ["AuthorityStore", "entity_of"]

RecordKey = tuple[str, str]

authority_forms = Table(
    "authority_forms",
    metadata,
    Column("source", String(64), nullable=False),
    Column("local_id", String(255), nullable=False),
    Column("entity", String(255), nullable=False),
    Column("role", String(16), nullable=False),          # heading | see_from | see_also | linked
    Column("key", String(255), nullable=False),           # heading_key(form)
    Column("form", Text, nullable=False),
    Column("record", Text, nullable=False, default=""),   # on the heading row: the record's JSON summary
)
Index("ix_authority_forms_record", authority_forms.c.source, authority_forms.c.local_id)
Index("ix_authority_forms_key", authority_forms.c.key)
Index("ix_authority_forms_entity", authority_forms.c.entity)


def entity_of(record: Record) -> str:
    """The entity an authority record describes: its identifier (deduplication by identifier)."""
    if record.lccns:
        return f"lccn:{record.lccns[0]}"
    if record.other_ids:
        return sorted(record.other_ids)[0]
    return f"{record.source}:{record.local_id}"


def _summary(record: Record) -> str:
    return json.dumps({"source": record.source, "local_id": record.local_id, "heading": record.heading,
                       "heading_type": record.heading_type, "dates": record.dates, "see_from": record.see_from,
                       "see_also": record.see_also, "linked": record.linked_headings,
                       "ids": [f"lccn:{n}" for n in record.lccns] + record.other_ids}, ensure_ascii=False)


def _rows(key: RecordKey, record: Record) -> list[dict]:
    entity = entity_of(record)
    forms = [("heading", record.heading)] + [("see_from", f) for f in record.see_from] + \
        [("see_also", f) for f in record.see_also] + [("linked", f) for f in record.linked_headings]
    rows = [dict(source=key[0], local_id=key[1], entity=entity, role=role, key=heading_key(form)[:255], form=form,
                 record=_summary(record) if role == "heading" else "")
            for role, form in forms if heading_key(form)]
    # its identifiers, which a bibliographic heading's $0/$1 cites: keyed as they are ("lccn:n80094057")
    return rows + [dict(source=key[0], local_id=key[1], entity=entity, role="id", key=i[:255], form=i, record="")
                   for i in record_ids(record)]


def record_ids(record: Record) -> list[str]:
    """Every identifier of an authority record, as its headings' $0/$1 would cite it."""
    return [f"lccn:{n}" for n in record.lccns] + list(record.other_ids)


class AuthorityStore:
    """Forms of names by folded key and by entity; updated by the dedupe stage from changed records."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)

    def update(self, changed: Iterable[tuple[RecordKey, Record | None]]) -> int:
        """Replace the forms of changed records (authority records; others and deletions only clear);
        returns how many authority records were stored or removed."""
        changed = list(changed)
        rows = [r for key, rec in changed if rec is not None and rec.kind == "authority" for r in _rows(key, rec)]
        keys = [k for k, rec in changed if rec is None or rec.kind == "authority"]  # a bib never had forms
        touched = 0
        with self._lock, self.engine.begin() as conn:
            for part in chunks(keys):
                touched += conn.execute(delete(authority_forms).where(
                    tuple_(authority_forms.c.source, authority_forms.c.local_id).in_(part),
                    authority_forms.c.role == "heading")).rowcount or 0
                conn.execute(delete(authority_forms).where(
                    tuple_(authority_forms.c.source, authority_forms.c.local_id).in_(part)))
            if rows:
                conn.execute(authority_forms.insert(), rows)
        return touched + sum(1 for r in rows if r["role"] == "heading")

    def variants(self, names: Iterable[str]) -> dict[str, list[str]]:
        """Every form of the entities whose heading or linking entry is one of ``names``, by the name's key."""
        return self._forms_by_key(sorted({k for k in map(heading_key, names) if k}), ("heading", "linked"))

    def identified(self, ids: Iterable[str]) -> dict[str, list[str]]:
        """Every form of the entities an identifier (a heading's $0/$1, see ``authority.identifier_of``) names,
        by identifier: the link that holds when two people share a heading's spelling."""
        return self._forms_by_key(sorted(set(ids)), ("id",))

    def _forms_by_key(self, wanted: list[str], roles: tuple[str, ...]) -> dict[str, list[str]]:
        by_key: dict[str, set[str]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(wanted):
                rows = conn.execute(select(authority_forms.c.key, authority_forms.c.entity).where(
                    authority_forms.c.key.in_(chunk), authority_forms.c.role.in_(roles)))
                for key, entity in rows:
                    by_key.setdefault(entity, set()).add(key)
            out: dict[str, list[str]] = {}
            entities = sorted(by_key)
            for chunk in chunks(entities):
                rows = conn.execute(select(authority_forms.c.entity, authority_forms.c.form).where(
                    authority_forms.c.entity.in_(chunk),
                    authority_forms.c.role.in_(("heading", "see_from", "linked")))
                    .order_by(authority_forms.c.entity, authority_forms.c.form))
                for entity, form in rows:
                    for key in by_key[entity]:
                        forms = out.setdefault(key, [])
                        if form not in forms:
                            forms.append(form)
        return out

    def entities(self, name: str) -> list[dict]:
        """Every entity a name leads to (as heading, see-from or linking entry), each with its records'
        summaries merged: heading, dates, variants, identifiers and the sources that sent it."""
        key = heading_key(name)
        with self.engine.connect() as conn:
            ids = sorted({r[0] for r in conn.execute(select(authority_forms.c.entity).where(
                authority_forms.c.key == key, authority_forms.c.role != "id"))}) if key else []
            out = []
            for entity in ids:
                records = [json.loads(r[0]) for r in conn.execute(select(authority_forms.c.record).where(
                    authority_forms.c.entity == entity, authority_forms.c.role == "heading")
                    .order_by(authority_forms.c.source, authority_forms.c.local_id))]
                out.append(_merge(entity, records))
        return out


    def problems(self, source: str | None = None) -> dict[str, list[str]]:
        """Per source: see-froms two entities share ("Wang, L." → two people; listed, never merged) and 4XX loops
        (A's see-from is B's heading and B's see-from is A's)."""
        query = select(authority_forms.c.source, authority_forms.c.entity, authority_forms.c.role,
                       authority_forms.c.key, authority_forms.c.form).where(
            authority_forms.c.role.in_(("heading", "see_from")))
        if source is not None:
            query = query.where(authority_forms.c.source == source)
        headings: dict[str, set[str]] = {}
        see_from: dict[str, dict[str, set[str]]] = {}
        sources: dict[str, str] = {}
        forms: dict[str, str] = {}
        with self.engine.connect() as conn:
            for src, entity, role, key, form in conn.execute(query):
                sources.setdefault(entity, src)
                forms.setdefault(key, form)
                if role == "heading":
                    headings.setdefault(entity, set()).add(key)
                else:
                    see_from.setdefault(key, {}).setdefault(entity, set()).add(src)
        out: dict[str, list[str]] = {}
        for key, entities in sorted(see_from.items()):
            if len(entities) > 1:
                for src in sorted({s for ss in entities.values() for s in ss}):
                    out.setdefault(src, []).append(f"shared see-from {forms[key]!r}: {', '.join(sorted(entities))}")
        owner = {k: e for e, keys in headings.items() for k in keys}
        for key, entities in see_from.items():
            for a in entities:
                b = owner.get(key)
                if b and b != a and any(k in see_from and b in see_from[k] for k in headings.get(a, ())) and a < b:
                    out.setdefault(sources[a], []).append(f"4XX loop between {a} and {b}")
        return out


def _merge(entity: str, records: list[dict]) -> dict:
    """One entity from the records that describe it (the first source's heading leads)."""
    first = records[0]
    seen: list[str] = []
    for r in records:
        for form in [r["heading"], *r["see_from"], *r["linked"]]:
            if form not in seen and form != first["heading"]:
                seen.append(form)
    return {"entity": entity, "heading": first["heading"], "heading_type": first["heading_type"],
            "dates": next((r["dates"] for r in records if r["dates"]), ""), "variants": seen,
            "see_also": sorted({f for r in records for f in r["see_also"]}),
            "identifiers": sorted({i for r in records for i in r["ids"]}),
            "records": [{"source": r["source"], "local_id": r["local_id"]} for r in records]}
