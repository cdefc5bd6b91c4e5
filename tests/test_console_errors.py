"""One readable line per error on the staff pages (web.plain_errors), from the texts requests, urllib3,
YAZ and the OAI client really produce; the raw text itself is kept and shown one click away."""
from __future__ import annotations

import pytest
import requests

from web.plain_errors import plain_error

NAME = ("HTTPConnectionPool(host='opac.nju.edu.cn', port=80): Max retries exceeded with url: /opac/item.php?"
        "marc_no=1 (Caused by NameResolutionError(\"<urllib3.connection.HTTPConnection object at 0x7f>: Failed to "
        "resolve 'opac.nju.edu.cn' ([Errno -2] Name or service not known)\"))")


@pytest.mark.parametrize("raw, plain", [
    (NAME, "name not found: opac.nju.edu.cn"),
    ("http://lib.example.edu.cn:8080/oai?verb=Identify: ConnectionError: [Errno 111] Connection refused",
     "connection refused: lib.example.edu.cn:8080"),
    ("http://lib.example.edu.cn/oai?verb=ListRecords: HTTP 503 Service Unavailable (gave up after 3 attempts)",
     "HTTP 503 after 3 tries: lib.example.edu.cn"),
    ("https://lib.example.edu.cn/oai: ReadTimeout: Read timed out. (read timeout=10)",
     "no answer in time: lib.example.edu.cn"),
    ("z3950://127.0.0.1:9999/Default: Connect failed (10000)", "connection refused: 127.0.0.1:9999"),
    ("/data/dumps/broken.mrc: no such file or folder", "/data/dumps/broken.mrc: no such file or folder"),
    ("", ""),
    (None, ""),
])
def test_known_texts_become_one_line(raw, plain):
    assert plain_error(raw) == plain


def test_a_real_refused_connection_and_a_long_unknown_text():
    try:
        requests.get("http://127.0.0.1:9/opac", timeout=2)
    except requests.RequestException as exc:
        assert plain_error(str(exc)) == "connection refused: 127.0.0.1:9"
    long = "something odd happened " * 20 + "\nsecond line"
    shown = plain_error(long)
    assert len(shown) == 120 and shown.endswith("…") and "second line" not in shown
