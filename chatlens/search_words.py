"""What the search index keeps of a message's lemmas: its words (lemmas holding a letter, a
digit or ``_``), in token order, dictionary-encoded per batch.

Both the enrich stage (from its chunk cache's lemma codes, no string hashing) and the store
(from stored lemma lists, when it catches up on enrichment not indexed yet) make them here, so
the index is the same whichever way a message reached it.
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


def index_words(offsets: Ints, codes: Ints, dictionary: pa.Array,
                is_word: NDArray[np.bool_] | None = None) -> pa.ListArray:
    """Per message the lemmas the search index keeps, in token order, dictionary-encoded
    against the distinct ones among them: from the lemma ``codes`` into ``dictionary``
    (``is_word``: :func:`word_mask` of it) and the messages' ``offsets`` into ``codes``."""
    keep = (word_mask(dictionary) if is_word is None else is_word)[codes]
    used = np.zeros(len(dictionary), dtype=bool)
    used[codes[keep]] = True
    local = np.cumsum(used) - 1
    cum = np.concatenate([[0], np.cumsum(keep)])
    return pa.ListArray.from_arrays(
        pa.array(cum[offsets - offsets[0]], pa.int32()),
        pa.DictionaryArray.from_arrays(pa.array(local[codes[keep]], pa.int32()),
                                       dictionary.filter(pa.array(used))))


def lemma_index_words(lemmas: pa.ListArray) -> pa.ListArray:
    """:func:`index_words` of stored lemma lists (a null list holds no lemmas)."""
    if lemmas.null_count:
        lemmas = pc.fill_null(lemmas, pa.scalar([], lemmas.type))
    offsets = np.asarray(lemmas.offsets, dtype=np.int64)
    flat = lemmas.flatten()
    if flat.null_count:  # a null lemma is no word
        flat = pc.fill_null(flat, "")
    enc = pc.dictionary_encode(flat)
    return index_words(offsets, np.asarray(enc.indices, dtype=np.int64), enc.dictionary)

