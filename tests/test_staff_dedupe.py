"""Dedupe from the web: an operator splits a member record out of a merged entry and joins entries back,
the corrections survive ``unioncat build --full``, a viewer is refused (403), every action is audited,
and the CLI's ``dedupe split|join|undo`` have the same effect through the same functions."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dedupe.evidence import EvidenceStore
from dedupe.members import MemberStore
from marc_fixtures import iso2709, make_record
from staff_env import PASSWORD, login
from unioncat.cli import main
from unioncat.pipeline import Catalogue
from unioncat.settings import load_settings
from web import create_app
from web.accounts import Accounts

ISBN = "9787100000011"  # checksum wrong on purpose: the title-author-year rule joins them


@pytest.fixture
def merged(tmp_path: Path):
    """Three members holding one book (same ISBN and title), each with one book of its own; built."""
    sources = []
    own = {"lib-a": ("Mountain birds of Yunnan", "Zhao, Min", "2011"), "lib-b": ("Tax law in practice", "Qian, Bo", "2015"),
           "lib-c": ("Silk weaving in Suzhou", "Sun, Hua", "2018")}
    for member, (title, author, year) in own.items():
        recs = [make_record(f"{member}-1", title="The shared history of rivers", author="Wang, Li", isbn=ISBN),
                make_record(f"{member}-2", title=title, author=author, year=year)]
        (tmp_path / f"{member}.mrc").write_bytes(b"".join(iso2709(r) for r in recs))
        sources.append({"id": member, "name": f"Library {member[-1].upper()}", "region": "Nanjing",
                        "protocol": "file", "path": f"{member}.mrc"})
    sources_path = tmp_path / "sources.yaml"
    sources_path.write_text(yaml.safe_dump({"consortium": {"name": "T"}, "sources": sources}), encoding="utf-8")
    args = ["--sources", str(sources_path), "--data", str(tmp_path / "var")]
    assert CliRunner().invoke(main, [*args, "harvest"]).exit_code == 0
    assert CliRunner().invoke(main, [*args, "build"]).exit_code == 0
    cat = Catalogue(load_settings(env={}, sources_path=str(sources_path), data_dir=str(tmp_path / "var")))
    accounts = Accounts(cat.engine)
    accounts.add("viewer-1", PASSWORD, "viewer")
    accounts.add("operator-1", PASSWORD, "operator")
    try:
        yield cat, args
    finally:
        cat.close()


def _app(cat):
    return create_app({"SOURCES": cat.sources, "DB_ENGINE": cat.engine, "SEARCH_BACKEND": cat.index,
                       "SECRET_KEY": "test", "TESTING": True})


def _entry(cat, source: str) -> str:
    return MemberStore(cat.engine).cluster_of(source, f"{source}-1")


def _cli(args, *more):
    result = CliRunner().invoke(main, [*args, *more], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_split_from_the_web_survives_a_full_rebuild(merged):
    cat, args = merged
    entry = _entry(cat, "lib-a")
    assert entry == _entry(cat, "lib-b") == _entry(cat, "lib-c")
    client = _app(cat).test_client()
    token = login(client, "operator-1")
    page = client.get(f"/staff/record/{entry}")
    assert page.status_code == 200
    explained = client.get(f"/staff/record/{entry}.json").get_json()
    assert len(explained["joined_by"]) == 3 and {p["rule"] for p in explained["joined_by"]} == {"title-author-year"}
    assert all(p["score"] > 0 for p in explained["joined_by"])
    assert "Library B" in page.text and "lib-b:lib-b-1" in page.text and "title-author-year" in page.text

    done = client.post(f"/staff/record/{entry}/split",
                       data={"csrf_token": token, "record": "lib-b:lib-b-1", "note": "a different printing"})
    assert done.status_code == 302
    flashed = client.get(f"/staff/record/{entry}").text
    assert "will be split out" in flashed and "It applies at the next build." in flashed
    assert [o.kind for o in EvidenceStore(cat.engine).overrides()] == ["never", "never"]

    _cli(args, "build", "--full")
    assert _entry(cat, "lib-a") == _entry(cat, "lib-c") != _entry(cat, "lib-b")
    after = client.get(f"/staff/record/{_entry(cat, 'lib-a')}.json").get_json()
    assert [(m["source"], m["local_id"]) for m in after["members"]] == [("lib-a", "lib-a-1"), ("lib-c", "lib-c-1")]
    assert {o["note"] for o in after["overrides"]} == {"a different printing"}
    audit = client.get("/staff/audit.json").get_json()["audit"]
    assert (audit[0]["user"], audit[0]["action"], audit[0]["target"]) == ("operator-1", "dedupe-split", entry)
    assert "lib-b:lib-b-1" in audit[0]["detail"] and "a different printing" in audit[0]["detail"]


def test_a_viewer_sees_the_evidence_but_cannot_correct(merged):
    cat, _args = merged
    entry = _entry(cat, "lib-a")
    client = _app(cat).test_client()
    token = login(client, "viewer-1")
    page = client.get(f"/staff/record/{entry}")
    assert page.status_code == 200 and "title-author-year" in page.text and "split-out" not in page.text
    refused = client.post(f"/staff/record/{entry}/split", data={"csrf_token": token, "record": "lib-b:lib-b-1"})
    assert refused.status_code == 403
    assert client.post(f"/staff/record/{entry}/join", data={"csrf_token": token, "other": "x"}).status_code == 403
    assert EvidenceStore(cat.engine).overrides() == []
    assert client.get("/staff/audit.json").get_json()["audit"][0]["action"] == "refused"


def test_join_and_undo_from_the_web_list_and_errors(merged):
    cat, args = merged
    client = _app(cat).test_client()
    token = login(client, "operator-1")
    lone_a = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-2")
    lone_b = MemberStore(cat.engine).cluster_of("lib-b", "lib-b-2")
    assert lone_a != lone_b
    client.post(f"/staff/record/{lone_a}/join", data={"csrf_token": token, "other": lone_b, "note": "same set"})
    _cli(args, "build")
    assert MemberStore(cat.engine).cluster_of("lib-a", "lib-a-2") == MemberStore(cat.engine).cluster_of("lib-b", "lib-b-2")
    listed = client.get("/staff/overrides.json").get_json()["overrides"]
    assert [(o["kind"], o["note"]) for o in listed] == [("always", "same set")]
    page = client.get("/staff/overrides").text
    assert "same set" in page and "always merge" in page

    client.post(f"/staff/override/{listed[0]['id']}/undo", data={"csrf_token": token})
    _cli(args, "build", "--full")
    assert MemberStore(cat.engine).cluster_of("lib-a", "lib-a-2") != MemberStore(cat.engine).cluster_of("lib-b", "lib-b-2")
    assert client.get("/staff/overrides.json").get_json()["overrides"] == []
    actions = [e["action"] for e in client.get("/staff/audit.json").get_json()["audit"][:2]]
    assert actions == ["dedupe-undo", "dedupe-join"]

    entry = _entry(cat, "lib-a")
    client.post(f"/staff/record/{entry}/split", data={"csrf_token": token, "record": "nosuch:1"})
    assert "is not a member record of entry" in client.get(f"/staff/record/{entry}").text
    client.post(f"/staff/record/{entry}/join", data={"csrf_token": token, "other": entry})
    assert re.search(r"is this entry", client.get(f"/staff/record/{entry}").text)
    assert client.get("/staff/record/no-such-entry").status_code == 404


def test_cli_split_join_undo_have_the_same_effect(merged):
    cat, args = merged
    entry = _entry(cat, "lib-a")
    assert "split out of" in _cli(args, "dedupe", "split", entry, "lib-c:lib-c-1", "--note", "cli")
    assert _entry(cat, "lib-c") != _entry(cat, "lib-a") == _entry(cat, "lib-b")
    found = EvidenceStore(cat.engine).overrides()
    for o in found:
        _cli(args, "dedupe", "undo", str(o.id), "--no-build")
    _cli(args, "build")
    assert _entry(cat, "lib-c") == _entry(cat, "lib-a")
    bad = CliRunner().invoke(main, [*args, "dedupe", "split", entry, "lib-a:nope"])
    assert bad.exit_code != 0 and "is not a member record" in bad.output
