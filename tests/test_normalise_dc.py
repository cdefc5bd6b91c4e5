"""Simple Dublin Core (oai_dc) → Record."""
from __future__ import annotations

import pytest

from consortium.presets import HOLDINGS_PRESETS
from harvester.raw import RawRecord
from normaliser import normalise
from normaliser.errors import RecordError
from normaliser.model import Contributor

OAI_DC = ('<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
          'xmlns:dc="http://purl.org/dc/elements/1.1/">{}</oai_dc:dc>')


def dc(*elements: tuple[str, str], fmt: str = "oai_dc"):
    body = "".join(f"<dc:{name}>{value}</dc:{name}>" for name, value in elements)
    raw = RawRecord(source="repo", local_id="oai:repo:1", payload=OAI_DC.format(body).encode(), syntax="xml",
                    format=fmt)
    return normalise(raw, [HOLDINGS_PRESETS["koha952"]])


def test_full_dc_record():
    rec = dc(("title", "Warehouses : a history /"), ("creator", "Klar, Jochen"), ("creator", "Schröder, Max"),
             ("contributor", "Pilori, Dario"), ("contributor", "Klar, Jochen"),
             ("subject", "Architecture."), ("subject", "Architecture"), ("subject", "Storage"),
             ("publisher", "Zenodo"), ("date", "2023-12-11"), ("language", "en"), ("language", "ger"),
             ("language", "English"), ("identifier", "URN:ISBN:0-306-40615-2"),
             ("identifier", "urn:issn:0024-9319"), ("identifier", "ISBN 0-306-40615-3"),
             ("identifier", "https://example.org/rec/1"), ("identifier", "doi:10.5281/zenodo.1"),
             ("identifier", "12345"), ("type", "Text"), ("format", "application/pdf"),
             ("description", "&amp;lt;p&amp;gt;A &amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt; summary.&amp;lt;/p&amp;gt;"))
    assert rec.record_format == "oai_dc" and rec.source == "repo" and rec.local_id == "oai:repo:1"
    assert (rec.title, rec.subtitle) == ("Warehouses", "a history")
    assert rec.contributors == [Contributor("Klar, Jochen", primary=True), Contributor("Schröder, Max", primary=True),
                                Contributor("Pilori, Dario")]
    assert rec.main_author == "Klar, Jochen"
    assert rec.subjects == ["Architecture", "Storage"]
    assert (rec.publisher, rec.year) == ("Zenodo", 2023)
    assert rec.languages == ["eng", "ger"]
    assert rec.isbns == ["9780306406157"] and rec.invalid_isbns == ["0-306-40615-3"]
    assert rec.issns == ["0024-9319"]
    assert rec.urls == ["https://example.org/rec/1"]
    assert rec.other_ids == ["doi:10.5281/zenodo.1"]
    assert rec.format == "ebook"
    assert rec.summary == "A bold summary"
    assert rec.holdings == []          # DC carries no holdings, whatever the mappings


@pytest.mark.parametrize("types, expected", [
    ((), "book"),
    (("Text",), "book"),
    (("info:eu-repo/semantics/article",), "article"),
    (("StillImage",), "image"),
    (("Sound",), "recording"),
    (("MovingImage",), "video"),
    (("Dataset",), "other"),
    (("Something odd", "Image"), "image"),
    (("Something odd",), "other"),
])
def test_type_to_format(types, expected):
    rec = dc(("title", "T"), *[("type", t) for t in types])
    assert rec.format == expected


def test_dc_with_auto_format_is_sniffed():
    assert dc(("title", "Sniffed"), fmt="auto").title == "Sniffed"


def test_dc_without_title_is_rejected():
    with pytest.raises(RecordError, match="no dc:title"):
        dc(("creator", "Nobody"))
    with pytest.raises(RecordError, match="empty dc:title"):
        dc(("title", " / "))


def test_dc_not_well_formed():
    raw = RawRecord(source="repo", local_id="1", payload=b"<oai_dc:dc>", syntax="xml", format="oai_dc")
    with pytest.raises(RecordError, match="not well-formed"):
        normalise(raw)
