"""A batch's lemmas dictionary-encoded (``lemma_codes``: per message a list of codes into the
batch's distinct lemmas), and which of them the search index keeps: its words (lemmas holding
a letter, a digit or ``_``).

The enrich stage makes them from its chunk cache's codes (no string hashing), and hands them to
the code stage's lexicons and to the search index; the store makes them from stored lemma lists
when it catches up on enrichment not indexed yet. One place, so either way gives the same.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

Ints = NDArray[np.int64]


def word_mask(lemmas: pa.Array) -> NDArray[np.bool_]:
    """Which lemmas the search index keeps: those with a letter, a digit or ``_``."""
    return np.asarray(pc.fill_null(pc.match_substring_regex(lemmas, r"[\pL\pN_]"), False),
                      dtype=bool)


def encode(offsets: Ints, codes: Ints, dictionary: pa.Array) -> pa.ListArray:
    """``lemma_codes`` from per-message ``offsets`` into ``codes`` (one per lemma) into
    ``dictionary``, which is cut down to the entries used."""
    used = np.zeros(len(dictionary), dtype=bool)
    used[codes] = True
    local = np.cumsum(used) - 1
    return pa.ListArray.from_arrays(
        pa.array(offsets - offsets[0], pa.int32()),
        pa.DictionaryArray.from_arrays(pa.array(local[codes], pa.int32()),
                                       dictionary.filter(pa.array(used))))


def encode_lemmas(lemmas: pa.ListArray) -> pa.ListArray:
    """``lemma_codes`` of lemma lists (a null list holds no lemmas; a null lemma is "")."""
    if lemmas.null_count:
        lemmas = pc.fill_null(lemmas, pa.scalar([], lemmas.type))
    flat = lemmas.flatten()
    if flat.null_count:
        flat = pc.fill_null(flat, "")
    enc = pc.dictionary_encode(flat)
    return encode(np.asarray(lemmas.offsets, dtype=np.int64),
                  np.asarray(enc.indices, dtype=np.int64), enc.dictionary)
