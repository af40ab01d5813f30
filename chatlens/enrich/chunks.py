"""Tokens and features of a column of normalised texts, with Python work per *new* chunk only.

A chunk is a whitespace-separated piece of text (``границе,``). No token, emoji, mention,
hashtag or homoglyph-folded word spans whitespace, and each of those regexes sees a chunk's edge
as it sees the whitespace around it, so a text's results are its chunks' results in order.
Each distinct chunk is worked out once per process (folded, tokenised with ``TOKEN_RE``, its
emoji, mentions and hashtags found) and kept in Arrow arrays; a batch splits its texts on
whitespace, finds its chunks in the cache with one hash lookup (``index_in``) and gathers the
lists with ``take``. Lemmas are looked up per distinct token of the batch (:func:`lemmas_for`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from chatlens.enrich.morph import MORPH_LANGS, lemmatize_tokens, morph_dict
from chatlens.enrich.text import HASHTAG_RE, MENTION_RE, find_emoji, fold_homoglyphs, tokenize_fast

CHUNK_LIMIT = 1_000_000  # distinct chunks kept per process; the cache starts over past this
FEATURES = ("tokens", "emoji", "mentions", "hashtags")
_STR_LIST = pa.list_(pa.string())
Ints = NDArray[np.int64]


def _features(chunk: str) -> tuple[bool, tuple[list[str], ...]]:
    folded = fold_homoglyphs(chunk)
    return folded != chunk, (
        tokenize_fast(folded), find_emoji(folded),
        MENTION_RE.findall(folded) if "@" in folded else [],
        HASHTAG_RE.findall(folded) if "#" in folded else [])


@dataclass(slots=True)
class _Store:
    """Per feature, the distinct chunks' lists laid end to end: values, start and length."""

    keys: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    folded: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    values: dict[str, pa.Array] = field(
        default_factory=lambda: {f: pa.array([], pa.string()) for f in FEATURES})
    lengths: dict[str, Ints] = field(
        default_factory=lambda: {f: np.zeros(0, dtype=np.int64) for f in FEATURES})
    starts: dict[str, Ints] = field(
        default_factory=lambda: {f: np.zeros(0, dtype=np.int64) for f in FEATURES})

    def add(self, chunks: list[str]) -> None:
        done = [_features(c) for c in chunks]
        self.keys = pa.concat_arrays([self.keys, pa.array(chunks, pa.string())])
        self.folded = np.concatenate([self.folded, np.fromiter((d[0] for d in done), bool,
                                                               len(done))])
        for k, name in enumerate(FEATURES):
            lists = [d[1][k] for d in done]
            lens = np.fromiter(map(len, lists), np.int64, len(lists))
            base = len(self.values[name])
            self.values[name] = pa.concat_arrays(
                [self.values[name], pa.array([x for xs in lists for x in xs], pa.string())])
            self.starts[name] = np.concatenate(
                [self.starts[name], base + np.cumsum(lens) - lens])
            self.lengths[name] = np.concatenate([self.lengths[name], lens])


_STORE = _Store()


@dataclass(frozen=True, slots=True)
class ChunkFeatures:
    """Per text: list arrays of tokens, emoji, mentions and hashtags, and whether homoglyph
    folding changed the text."""

    tokens: pa.ListArray
    emoji: pa.ListArray
    mentions: pa.ListArray
    hashtags: pa.ListArray
    folded: NDArray[np.bool_]


def chunk_features(norms: pa.Array) -> ChunkFeatures:
    """The features of each (unfolded) normalised text, from the process's chunk cache."""
    global _STORE
    chunks = pc.utf8_split_whitespace(norms)
    row_offs = np.asarray(chunks.offsets, dtype=np.int64)
    row_offs = row_offs - row_offs[0]
    enc = pc.dictionary_encode(chunks.flatten())
    distinct = enc.dictionary
    ids = pc.index_in(distinct, value_set=_STORE.keys)
    if ids.null_count:
        new = distinct.filter(pc.is_null(ids))
        if len(_STORE.keys) + len(new) > CHUNK_LIMIT:
            _STORE = _Store()
        _STORE.add(new.to_pylist())
        ids = pc.index_in(distinct, value_set=_STORE.keys)
    occ = np.asarray(ids, dtype=np.int64)[np.asarray(enc.indices, dtype=np.int64)]
    st = _STORE
    lists = {f: _gather(occ, row_offs, st.lengths[f], st.starts[f], st.values[f])
             for f in FEATURES}
    return ChunkFeatures(**lists, folded=_any_per_row(st.folded[occ], row_offs))


def _gather(occ: Ints, row_offs: Ints, lengths: Ints, starts: Ints,
            values: pa.Array) -> pa.ListArray:
    """Per row, the lists of its chunk occurrences ``occ`` (entry ids) joined in order."""
    occ_len = lengths[occ]
    occ_end = np.cumsum(occ_len)
    total = int(occ_end[-1]) if occ_end.size else 0
    pos = np.arange(total, dtype=np.int64)
    pos += np.repeat(starts[occ] - (occ_end - occ_len), occ_len)
    bounds = np.concatenate([[0], occ_end])[row_offs]
    return pa.ListArray.from_arrays(pa.array(bounds, pa.int32()), values.take(pa.array(pos)))


def _any_per_row(flags: NDArray[np.bool_], offsets: Ints) -> NDArray[np.bool_]:
    cum = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    return np.asarray(cum[offsets[1:]] - cum[offsets[:-1]] > 0)


@dataclass(slots=True)
class _Lemmas:
    """One dictionary's lemmas of the tokens seen so far, as two aligned Arrow arrays."""

    tokens: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    lemmas: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))

    def of(self, tokens: pa.Array, dict_lang: str) -> pa.Array:
        at = pc.index_in(tokens, value_set=self.tokens)
        if at.null_count:
            new = tokens.filter(pc.is_null(at))
            if len(self.tokens) + len(new) > LEMMA_LIMIT:
                self.tokens, self.lemmas = pa.array([], pa.string()), pa.array([], pa.string())
            words = new.to_pylist()
            self.tokens = pa.concat_arrays([self.tokens, new])
            self.lemmas = pa.concat_arrays(
                [self.lemmas, pa.array(lemmatize_tokens(words, dict_lang), pa.string())])
            at = pc.index_in(tokens, value_set=self.tokens)
        return self.lemmas.take(at)


LEMMA_LIMIT = 1_000_000  # tokens kept per dictionary and process
_LEMMAS: dict[str, _Lemmas] = {}


def lemmas_for(tokens: pa.ListArray, langs: pa.Array) -> pa.ListArray:
    """One lemma per token, each message read with its language's dictionary (see
    :func:`~chatlens.enrich.morph.morph_dict`): per dictionary, the distinct tokens of its
    messages are looked up in the process's lemma table, and only new ones go to pymorphy3."""
    offs = np.asarray(tokens.offsets, dtype=np.int64)
    flat = tokens.flatten()
    fallback = morph_dict("und")
    dict_enc = pc.dictionary_encode(pc.if_else(
        pc.is_in(langs, value_set=pa.array(MORPH_LANGS)), langs, fallback))
    groups = dict_enc.dictionary.to_pylist()
    if len(groups) <= 1:
        g = groups[0] if groups else fallback
        return pa.ListArray.from_arrays(tokens.offsets, _lemmas_of(flat, g))
    parent = np.repeat(np.asarray(dict_enc.indices, dtype=np.int64), np.diff(offs))
    order = np.argsort(parent, kind="stable")
    parts = []
    for k, g in enumerate(groups):
        parts.append(_lemmas_of(flat.take(pa.array(order[parent[order] == k])), g))
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    return pa.ListArray.from_arrays(tokens.offsets, pa.concat_arrays(parts).take(pa.array(back)))


def _lemmas_of(flat: pa.Array, dict_lang: str) -> pa.Array:
    enc = pc.dictionary_encode(flat)
    table = _LEMMAS.setdefault(dict_lang, _Lemmas())
    return table.of(enc.dictionary, dict_lang).take(enc.indices)
