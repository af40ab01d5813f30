""":func:`~chatlens.enrich.places.find_places` for a batch, on the few tokens that can matter.

A place name starts at a token that is (or whose lemma is) a gazetteer key and is at most as
long as the longest name, so ``find_places`` is asked only about windows of tokens from each
such position; overlapping windows are merged. Its results, window by window in text order and
each place once, are what it gives for the whole message. A window seen before (``в россии``)
is answered from a per-process cache.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chatlens.enrich.columnar import STR_LIST
from chatlens.enrich.places import find_places, gazetteer, gazetteer_keys

CACHE_LIMIT = 200_000
_CACHE: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}


@lru_cache(maxsize=4)
def _keys(tokenizer: str) -> pa.Array:
    return pa.array(sorted(gazetteer_keys(tokenizer)), pa.string())


@lru_cache(maxsize=4)
def _longest(tokenizer: str) -> int:
    return max((len(seq) for entries in gazetteer(tokenizer).values() for seq, _ in entries),
               default=1)


def _window_places(tokens: list[str], lemmas: list[str], tokenizer: str) -> list[str]:
    key = (tuple(tokens), tuple(lemmas))
    found = _CACHE.get(key)
    if found is None:
        if len(_CACHE) > CACHE_LIMIT:
            _CACHE.clear()
        found = _CACHE[key] = find_places(tokens, lemmas, tokenizer)
    return found


def place_lists(tokens: pa.ListArray, lemmas: pa.ListArray,
                tokenizer: str = "fast") -> pa.ListArray:
    """Per message, ``find_places(tokens, lemmas, tokenizer)`` (lists aligned one to one)."""
    n = len(tokens)
    offs = np.asarray(tokens.offsets, dtype=np.int64)
    offs = offs - offs[0]
    flat_t, flat_l = tokens.flatten(), lemmas.flatten()
    keys = _keys(tokenizer)
    hit = np.flatnonzero(np.asarray(pc.or_(pc.is_in(flat_t, value_set=keys),
                                           pc.is_in(flat_l, value_set=keys)), dtype=bool))
    out: list[list[str]] = [[] for _ in range(n)]
    if hit.size:
        row = np.searchsorted(offs, hit, side="right") - 1
        w_end = np.minimum(hit + _longest(tokenizer), offs[row + 1])  # ascending within a row
        first = np.ones(hit.size, dtype=bool)
        first[1:] = (row[1:] != row[:-1]) | (hit[1:] >= w_end[:-1])
        at = np.flatnonzero(first)
        starts, ends, rows = hit[at], np.maximum.reduceat(w_end, at), row[at]
        lens = ends - starts
        cum = np.cumsum(lens)
        idx = pa.array(np.repeat(starts - (cum - lens), lens) + np.arange(int(cum[-1])))
        toks, lems = flat_t.take(idx).to_pylist(), flat_l.take(idx).to_pylist()
        for r, a, b in zip(rows.tolist(), (cum - lens).tolist(), cum.tolist(), strict=True):
            seen = out[r]
            for pid in _window_places(toks[a:b], lems[a:b], tokenizer):
                if pid not in seen:
                    seen.append(pid)
    return pa.array(out, STR_LIST)
