"""A small built catalogue for the downstream-interface tests (OAI-PMH, API, exports, Zebra).

Three members over file dumps — a MARC 21 library with 852 holdings, a
MARC 21 library with 949 items and a Huiwen-style CNMARC library with 905s —
in two regions and one group, with overlapping editions, so merged records
carry holdings of several members and one cluster's base record is CNMARC.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pymarc import Field, Indicators, Subfield

from marc_fixtures import make_record
from demo.cnmarc import to_cnmarc
from unioncat.pipeline import Catalogue, build, harvest, select_sources
from unioncat.settings import load_settings

BOOKS = [
    # (key, title, author, isbn, year, subject)
    ("01", "Dream of the red chamber", "Cao, Xueqin", "9787020002207", "1982", "Chinese fiction"),
    ("02", "Historical atlas of China", "Tan, Qixiang", "9787503118555", "1996", "China -- Maps"),
    ("03", "Personal rights and the domestic relations", "Chadman, Charles E.", "9780306406157", "1899",
     "Domestic relations"),
    ("04", "Annual report of the librarian", "Library of Congress", None, "2001", "Libraries"),
    ("05", "The art of computer programming", "Knuth, Donald E.", "9780201896831", "1997", "Computer programming"),
    ("06", "Water margin", "Shi, Nai'an", "9787020008735", "1975", "Chinese fiction"),
    ("07", "Journey to the west", "Wu, Cheng'en", "9787020015016", "1980", "Chinese fiction"),
    ("08", "A brief history of time", "Hawking, Stephen", "9780553380163", "1998", "Cosmology"),
    ("09", "Structure and interpretation of computer programs", "Abelson, Harold", "9780262510875", "1996",
     "Computer programming"),
    ("10", "The analects", "Confucius", "9780140443486", "1979", "Philosophy, Chinese"),
    ("11", "Journal of Asian studies", None, None, "1941", "Asia -- Periodicals"),   # a serial (ISSN, 710)
    ("12", "Untitled pamphlet", None, None, "2001", "Pamphlets"),   # no 1XX/7XX, no 300: below the quality bar
]


def field(tag: str, ind: str = "  ", **sub: str) -> Field:
    return Field(tag=tag, indicators=Indicators(ind[0], ind[1]), subfields=[Subfield(k, v) for k, v in sub.items()])


def book(control: str, key: str, extra: list[Field]):
    _, title, author, isbn, year, subject = next(b for b in BOOKS if b[0] == key)
    rec = make_record(control, title=title, author=author, isbn=isbn, year=year,
                      extra=([] if key == "12" else [field("300", a="300 p.")]) + [field("650", " 0", a=subject),
                                                                                    *extra])
    rec.leader = "00000nam a2200000 a 4500"
    return rec


def write_consortium(root: Path) -> Path:
    """Write the dumps and ``sources.yaml`` under ``root``; return the sources path."""
    dumps = root / "dumps"
    dumps.mkdir(parents=True, exist_ok=True)
    lib_a = [book(f"A-{k}", k, [field("852", b="MAIN", c="Stacks", h=f"PL{k}", p=f"A{k}")])
             for k in ("01", "02", "03", "04", "05", "06", "07", "08")]
    lib_a.append(book("A-11", "11", [field("022", a="0021-9118"), field("710", "2 ", a="Association for Asian Studies"),
                                     field("852", b="MAIN", c="Periodicals", h="DS1", p="A11")]))
    lib_a.append(book("A-12", "12", [field("852", b="MAIN", c="Stacks", h="Z12", p="A12")]))
    lib_b = [book(f"B-{k}", k, [field("949", a=f"QA{k}", i=f"B{k}", l="GEN", m="SCI")])
             for k in ("01", "05", "08", "09", "10")]
    (dumps / "lib-a.mrc").write_bytes(b"".join(r.as_marc() for r in lib_a))
    (dumps / "lib-b.mrc").write_bytes(b"".join(r.as_marc() for r in lib_b))
    cn_only = book("x", "06", [])
    cn_only.get_fields("245")[0].subfields[0] = Subfield("a", "水浒传")
    cn_only.remove_fields("020")
    (dumps / "cn.iso").write_bytes(to_cnmarc(book("x", "01", []), "CN0001", library="NJU")
                                   + to_cnmarc(cn_only, "CN0002", library="NJU"))
    sources = {
        "consortium": {"name": "Provider Test Consortium"},
        "regions": ["Nanjing", "Su zhou"],
        "groups": [{"id": "west", "name": "Western-style libraries", "members": ["lib-a", "lib-b"]}],
        "sources": [
            {"id": "lib-a", "name": "Library A", "region": "Nanjing", "protocol": "file", "path": "dumps/lib-a.mrc",
             "format": "marc21", "holdings": "marc852"},
            {"id": "lib-b", "name": "Library B", "region": "Nanjing", "protocol": "file", "path": "dumps/lib-b.mrc",
             "format": "marc21", "holdings": "generic949"},
            {"id": "cn", "name": "Huiwen Library", "region": "Su zhou", "protocol": "file", "path": "dumps/cn.iso",
             "format": "cnmarc", "holdings": ["cnmarc905"]},
        ],
    }
    path = root / "sources.yaml"
    path.write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")
    return path


def built_catalogue(root: Path) -> Catalogue:
    """Write the consortium under ``root``, harvest and build it; the caller closes the catalogue."""
    path = write_consortium(root)
    cat = Catalogue(load_settings(env={}, sources_path=path, data_dir=root / "var", cache_dir=root / "cache"))
    harvest(cat, select_sources(cat))
    build(cat)
    return cat


def app_for(cat: Catalogue, **config):
    from web import create_app

    return create_app({"SOURCES": cat.sources, "DB_ENGINE": cat.engine, "INDEX_PATH": str(cat.settings.index_dir),
                       "SECRET_KEY": "test", **config})


@pytest.fixture(scope="module")
def cat(tmp_path_factory):
    """The built test consortium, one per test module (tests that change it build their own)."""
    cat = built_catalogue(tmp_path_factory.mktemp("provider"))
    yield cat
    cat.close()
