"""JSON text of the dedupe's stored rows — features, blocking keys, pair evidence — through orjson.

A full pass writes a features row and a key list per member record and an evidence dict per kept
pair (~12 per record on the synthetic consortium), and reads the features back a batch of blocks at a
time: with the standard library's ``json`` that encoding and decoding was ~14% of the dedupe's CPU.
orjson writes the same JSON (compact, UTF-8) and reads it back into equal values, except integers
beyond 64 bits, which it refuses to write and would read back as floats: such a value (a page count
of twenty digits) is written by ``json`` behind a leading space, which tells :func:`loads` to read
it with ``json`` too.
"""
from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:   # orjson.JSONEncodeError: an integer beyond 64 bits
        return " " + json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> Any:
    """The value :func:`dumps` wrote (or the standard library's ``json`` did, in rows of older versions)."""
    return json.loads(text) if text[:1] == " " else orjson.loads(text)
