"""A bounded memo for the normaliser's per-value helpers.

Member copies of one manifestation, and the editions of one work, repeat the same names, subjects,
publishers, places and ISBNs; the normalise stage cleans and checks each value again for every copy.
``functools.lru_cache`` was measured slower than the clean-up it saves (its bookkeeping per call), so
this is a plain dict, emptied whole when it reaches its size: bounded, and one lookup a hit.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

__all__ = ["memoised"]

T = TypeVar("T")
_MISSING = object()


def memoised(size: int) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """Memoise a pure one-argument function of a string in a dict of at most ``size`` answers."""
    def wrap(fn: Callable[[str], T]) -> Callable[[str], T]:
        memo: dict[str, T] = {}

        @functools.wraps(fn)
        def cached(text: str) -> T:
            out = memo.get(text, _MISSING)
            if out is _MISSING:
                if len(memo) >= size:
                    memo.clear()
                out = memo[text] = fn(text)
            return out  # type: ignore[return-value]

        cached.cache_clear = memo.clear  # type: ignore[attr-defined]
        return cached
    return wrap
