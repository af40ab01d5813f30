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

from chatlens.enrich.columnar import put
from chatlens.enrich.morph import MORPH_LANGS, lemmatize_tokens, morph_dict
from chatlens.enrich.text import HASHTAG_RE, MENTION_RE, find_emoji, fold_homoglyphs, tokenize_fast
from chatlens.search_words import encode

CHUNK_LIMIT = 1_000_000  # distinct chunks kept per process; the cache starts over past this
FEATURES = ("tokens", "emoji", "mentions", "hashtags")
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
    extras: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: per dictionary, a lemma for each token in ``values["tokens"]`` (null until needed), and
    #: per entry whether its tokens have them
    lemmas: dict[str, pa.Array] = field(default_factory=dict)
    lemmatised: dict[str, NDArray[np.bool_]] = field(default_factory=dict)
    #: the same lemmas as codes into :attr:`vocab` (-1 until needed)
    lemma_codes: dict[str, NDArray[np.int64]] = field(default_factory=dict)
    vocab: Vocab = field(default_factory=lambda: Vocab())

    def add(self, chunks: list[str]) -> None:
        done = [_features(c) for c in chunks]
        n_tok = sum(len(d[1][0]) for d in done)
        for g in self.lemmas:
            self.lemmas[g] = pa.concat_arrays([self.lemmas[g], pa.nulls(n_tok, pa.string())])
            self.lemmatised[g] = np.concatenate([self.lemmatised[g], np.zeros(len(done), bool)])
            self.lemma_codes[g] = np.concatenate([self.lemma_codes[g],
                                                  np.full(n_tok, -1, dtype=np.int64)])
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
        self.extras = np.asarray(sum(self.lengths[f] for f in FEATURES[1:]) > 0, dtype=bool)

    def lemma_values(self, dict_lang: str, entries: Ints) -> tuple[pa.Array, Ints]:
        """The lemmas aligned with ``values["tokens"]``, as strings and as :attr:`vocab` codes,
        with those of ``entries`` (ascending) filled in: pymorphy3 is asked (through its
        per-token cache) only for new entries."""
        n_tok = len(self.values["tokens"])
        lem = self.lemmas.get(dict_lang, pa.nulls(n_tok, pa.string()))
        codes = self.lemma_codes.setdefault(dict_lang, np.full(n_tok, -1, dtype=np.int64))
        done = self.lemmatised.setdefault(dict_lang, np.zeros(len(self.keys), dtype=bool))
        todo = entries[~done[entries]]
        if todo.size:
            _, pos = _positions(todo, np.array([0, todo.size]), self.lengths["tokens"],
                                self.starts["tokens"])
            words = self.values["tokens"].take(pa.array(pos)).to_pylist()
            found = lemmatize_tokens(words, dict_lang)
            lem = put(lem, pos, pa.array(found, pa.string()))
            codes[pos] = self.vocab.codes(found)
            done[todo] = True
        self.lemmas[dict_lang] = lem
        return lem, codes


class Vocab:
    """The distinct lemmas of a process's cache, each with a code."""

    def __init__(self) -> None:
        self.code: dict[str, int] = {}
        self.words = pa.array([], pa.string())

    def codes(self, lemmas: list[str]) -> Ints:
        new: list[str] = []
        out = np.empty(len(lemmas), dtype=np.int64)
        for i, lemma in enumerate(lemmas):
            c = self.code.get(lemma)
            if c is None:
                c = self.code[lemma] = len(self.code)
                new.append(lemma)
            out[i] = c
        if new:
            self.words = pa.concat_arrays([self.words, pa.array(new, pa.string())])
        return out


_STORE = _Store()


@dataclass(frozen=True, slots=True)
class ChunkFeatures:
    """Per text: list arrays of tokens, emoji, mentions and hashtags, and whether homoglyph
    folding changed the text; and where its chunks and tokens are in the cache."""

    tokens: pa.ListArray
    emoji: pa.ListArray
    mentions: pa.ListArray
    hashtags: pa.ListArray
    folded: NDArray[np.bool_]
    store: _Store
    occ: Ints  # cache entry of each chunk occurrence
    row_offs: Ints  # per text, its first chunk occurrence (n + 1)
    token_pos: Ints  # per token, its position in the cache's token values


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
            _STORE, new = _Store(), distinct  # the emptied cache needs every chunk again
        _STORE.add(new.to_pylist())
        ids = pc.index_in(distinct, value_set=_STORE.keys)
    occ = np.asarray(ids, dtype=np.int64)[np.asarray(enc.indices, dtype=np.int64)]
    st = _STORE
    bounds, token_pos = _positions(occ, row_offs, st.lengths["tokens"], st.starts["tokens"])
    lists = {"tokens": pa.ListArray.from_arrays(pa.array(bounds, pa.int32()),
                                                st.values["tokens"].take(pa.array(token_pos)))}
    # emoji, mentions and hashtags are rare: gather them from the occurrences that have any
    some = np.flatnonzero(st.extras[occ])
    cum = np.concatenate([[0], np.cumsum(st.extras[occ], dtype=np.int64)])
    for f in FEATURES[1:]:
        bounds, pos = _positions(occ[some], cum[row_offs], st.lengths[f], st.starts[f])
        lists[f] = pa.ListArray.from_arrays(pa.array(bounds, pa.int32()),
                                            st.values[f].take(pa.array(pos)))
    return ChunkFeatures(**lists, folded=_any_per_row(st.folded[occ], row_offs), store=st,
                         occ=occ, row_offs=row_offs, token_pos=token_pos)


def _positions(occ: Ints, row_offs: Ints, lengths: Ints, starts: Ints) -> tuple[Ints, Ints]:
    """Per row the bounds, and per item the position in the cache's values, of the lists of
    the row's chunk occurrences ``occ`` (entry ids) joined in order."""
    occ_len = lengths[occ]
    occ_end = np.cumsum(occ_len)
    total = int(occ_end[-1]) if occ_end.size else 0
    pos = np.arange(total, dtype=np.int64)
    pos += np.repeat(starts[occ] - (occ_end - occ_len), occ_len)
    return np.concatenate([[0], occ_end])[row_offs], pos


def _any_per_row(flags: NDArray[np.bool_], offsets: Ints) -> NDArray[np.bool_]:
    cum = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    return np.asarray(cum[offsets[1:]] - cum[offsets[:-1]] > 0)


def lemmas_for(feats: ChunkFeatures, langs: pa.Array) -> tuple[pa.ListArray, pa.ListArray]:
    """One lemma per token, each message read with its language's dictionary (see
    :func:`~chatlens.enrich.morph.morph_dict`); the cache keeps them per chunk and dictionary,
    so only chunks new to a dictionary go to pymorphy3. Also the same lemmas dictionary-encoded
    (:func:`~chatlens.search_words.encode`), from the cache's codes."""
    st = feats.store
    fallback = morph_dict("und")
    dict_enc = pc.dictionary_encode(pc.if_else(
        pc.is_in(langs, value_set=pa.array(MORPH_LANGS)), langs, fallback))
    groups = dict_enc.dictionary.to_pylist() or [fallback]
    offsets = feats.tokens.offsets
    if len(groups) == 1:
        vals, codes = st.lemma_values(groups[0], _entry_set(feats.occ, len(st.keys)))
        take = feats.token_pos
    else:
        row_group = np.asarray(dict_enc.indices, dtype=np.int64)
        occ_group = np.repeat(row_group, np.diff(feats.row_offs))
        found = [st.lemma_values(g, _entry_set(feats.occ[occ_group == k], len(st.keys)))
                 for k, g in enumerate(groups)]
        vals = pa.concat_arrays([v for v, _ in found])
        codes = np.concatenate([c for _, c in found])
        tok_group = np.repeat(row_group,
                              np.diff(np.asarray(offsets, dtype=np.int64)).astype(np.int64))
        take = feats.token_pos + tok_group * len(st.values["tokens"])
    encoded = encode(np.asarray(offsets, dtype=np.int64), codes[take], st.vocab.words)
    return pa.ListArray.from_arrays(offsets, vals.take(pa.array(take))), encoded


def _entry_set(occ: Ints, n: int) -> Ints:
    """The distinct entry ids of ``occ``, ascending (no sort: a mark per entry)."""
    seen = np.zeros(n, dtype=bool)
    seen[occ] = True
    return np.flatnonzero(seen)
