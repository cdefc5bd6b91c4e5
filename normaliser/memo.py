"""A bounded memo for the normaliser's per-value helpers.

Member copies of one manifestation, and the editions of one work, repeat the same names, subjects,
publishers, places and ISBNs; the normalise stage cleans and checks each value again for every copy.
``functools.lru_cache`` was measured slower than the clean-up it saves (its bookkeeping per call), so
this is a plain dict, emptied whole when it reaches its size: bounded, and one lookup a hit.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import TypeVar

__all__ = ["memoised"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
_MISSING = object()


def memoised(size: int) -> Callable[[Callable[[K], T]], Callable[[K], T]]:
    """Memoise a pure one-argument function of a string (or of a tuple of them) in a dict of at most
    ``size`` answers."""
    def wrap(fn: Callable[[K], T]) -> Callable[[K], T]:
        memo: dict[K, T] = {}

        @functools.wraps(fn)
        def cached(text: K) -> T:
            out = memo.get(text, _MISSING)
            if out is _MISSING:
                if len(memo) >= size:
                    memo.clear()
                out = memo[text] = fn(text)
            return out  # type: ignore[return-value]

        cached.cache_clear = memo.clear  # type: ignore[attr-defined]
        return cached
    return wrap
