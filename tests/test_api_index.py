"""``/api/v1`` answers an index: the API's name and version, and links to its OpenAPI description and to
every endpoint that description lists — so a client (or a newcomer with curl) can start at the top."""
from __future__ import annotations

import pytest

from peers.provider_fixtures import app_for, cat  # noqa: F401 - fixture


@pytest.mark.parametrize("path", ["/api/v1", "/api/v1/"])
def test_the_api_root_links_its_description_and_endpoints(cat, path):
    client = app_for(cat).test_client()
    answer = client.get(path)
    assert answer.status_code == 200 and answer.is_json
    index = answer.get_json()
    assert index["name"] == "unioncat union catalogue API" and index["version"] and index["api_version"] == "1.0.0"
    links = index["links"]
    assert links["self"] == "http://localhost/api/v1" and links["openapi"] == "http://localhost/api/v1/openapi.json"
    described = client.get("/api/v1/openapi.json").get_json()
    assert described["info"]["version"] == index["api_version"]
    assert {url.removeprefix("http://localhost/api/v1") for name, url in links.items() if name != "self"} \
        == (set(described["paths"]) - {"/"}) | {"/openapi.json"}
    assert client.get(links["search"].removeprefix("http://localhost") + "?q=x").status_code == 200
