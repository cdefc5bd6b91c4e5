"""Mutated real records through the normaliser and every MARC path out (issue 19 item 8; the small
version of ``bench/fuzz.py``): no uncaught exception, no silently dropped field.

One part calls the functions every path shares (``normalise``, ``publish.marc.item_marc`` and the
writers); the other harvests a member dump of mutants into a built catalogue and asks the web
app for each entry the way readers and harvesters do — the record page exports, the basket, OAI-PMH
and the API export — with the Flask test client.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import yaml

from corpus import corpus_dir
from demo.loc import loc_file
from fuzz_marc import MUTATIONS, Tally, check, mutants, seeds_from, walk_web
from peers.provider_fixtures import app_for
from services import cache_dir
from unioncat.catalogue import Catalogue
from unioncat.pipeline import build, harvest, select_sources
from unioncat.settings import load_settings

pytestmark = pytest.mark.corpus

KEY = "k-" + "9" * 30


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    loc = loc_file(cache_dir("."), log=lambda *a: None)  # the LoC file sits at the cache root, as for the demo
    return seeds_from([corpus_dir("marc21"), corpus_dir("unimarc")], loc, 1500)


@pytest.fixture(autouse=True)
def quiet():
    """pymarc warns about every odd subfield code and the publisher logs each rebuilt record."""
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    logging.disable(logging.NOTSET)


def test_2000_mutants_through_normalise_and_every_writer(seeds):
    tally = Tally()
    for number, (name, payload) in enumerate(mutants(seeds, 2000)):
        check(name, payload, tally, number)
    assert tally.crashes == 0, tally.failures
    assert tally.dropped == 0, tally.failures
    assert tally.records == 2000 and set(tally.by_mutation) == {m.__name__ for m in MUTATIONS}
    assert tally.published == 2000  # quarantined or not, every record has a MARC to go out as
    assert tally.quarantined > 0 and tally.with_replacements > 0  # the fuzz reached both


def test_the_mutations_are_deterministic(seeds):
    assert list(mutants(seeds, 50, seed=7)) == list(mutants(seeds, 50, seed=7))
    assert list(mutants(seeds, 50, seed=7)) != list(mutants(seeds, 50, seed=8))


@pytest.fixture(scope="module")
def fuzzed(seeds, tmp_path_factory):
    """A catalogue built from a member dump of 300 mutants (the harvester quarantines what is no record)."""
    root = tmp_path_factory.mktemp("fuzzed")
    dump = b"".join(payload if payload.endswith(b"\x1d") else payload + b"\x1d"
                    for _, payload in mutants(seeds, 300, seed=1919))
    (root / "fuzz.mrc").write_bytes(dump)
    (root / "sources.yaml").write_text(yaml.safe_dump({
        "consortium": {"name": "Fuzz"}, "regions": ["East"],
        "sources": [{"id": "fuzz", "name": "Fuzzed member", "region": "East", "protocol": "file",
                     "path": "fuzz.mrc", "holdings": "marc852"}]}), encoding="utf-8")
    logging.disable(logging.WARNING)
    cat = Catalogue(load_settings(env={}, sources_path=root / "sources.yaml", data_dir=root / "var",
                                  cache_dir=root / "cache"))
    harvest(cat, select_sources(cat))
    build(cat)
    logging.disable(logging.NOTSET)
    yield cat, app_for(cat, API_KEYS=[KEY]).test_client()
    cat.close()


def test_every_web_path_answers_every_fuzzed_entry_without_losing_a_field(fuzzed):
    cat, client = fuzzed
    clusters = sum(1 for _ in cat.clusters.iter_live())
    assert clusters > 100

    tally = walk_web(cat, client, KEY, "members:fuzz")

    assert tally.server_errors == 0, tally.failures
    assert tally.dropped == 0  # record and member downloads: every field of the published MARC
    assert tally.basket_records == min(clusters, 100)
    # OAI-PMH and the API export carry every member field (plus the 035 (UNIONCAT) of each record)
    assert tally.oai_fields >= tally.member_fields and tally.api_fields >= tally.member_fields
    assert tally.requests > 5 * clusters
