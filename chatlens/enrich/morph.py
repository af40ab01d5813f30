"""Lemmatisation with pymorphy3, cached per (dictionary, token), and negation words.

Which dictionary: ``ru`` messages use the Russian dictionary, ``uk`` the Ukrainian one. Messages in
``und`` or any other language (``be``, ``kk``, …) use the Russian dictionary as a fallback for
their Cyrillic words: better than nothing for Belarusian/surzhyk, harmless for names. Tokens with
outside the dictionary's alphabet are their own lemma: Latin words, numbers, punctuation, emoji,
``<url>``, and Cyrillic words with foreign letters (``қазақстан``, ``ўсе``; ``ы``/``э`` words in a
Ukrainian message, ``і``/``ї`` words in a Russian one).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from chatlens.enrich.text import fold_homoglyphs, prepare, tokenize_fast, tokenize_razdel

#: Words a dictionary is asked about: written in that language's alphabet (hyphen, apostrophe ok).
_WORD_RE = {
    "ru": re.compile("[а-яё][а-яё'-]*"),
    "uk": re.compile("[а-щьюяіїєґ][а-щьюяіїєґ'-]*"),
}
MORPH_LANGS = ("ru", "uk")
CACHE_LIMIT = 400_000  # entries per dictionary; the cache is cleared when it grows past this

NEGATIONS: dict[str, frozenset[str]] = {
    "ru": frozenset(
        [
            "не",
            "ни",
            "нет",
            "никогда",
            "никто",
            "ничто",
            "ничего",
            "нигде",
            "никуда",
            "никак",
            "нельзя",
            "без",
            "отнюдь",
            "неа",
            "нету",
        ]
    ),
    "uk": frozenset(
        [
            "не",
            "ні",
            "нема",
            "немає",
            "ніколи",
            "ніхто",
            "ніщо",
            "нічого",
            "ніде",
            "нікуди",
            "ніяк",
            "без",
            "неа",
        ]
    ),
    "en": frozenset(
        [
            "not",
            "no",
            "never",
            "nobody",
            "nothing",
            "none",
            "neither",
            "nor",
            "nowhere",
            "without",
            "n't",
            "cannot",
            "don't",
            "doesn't",
            "didn't",
            "isn't",
            "aren't",
            "wasn't",
            "weren't",
            "won't",
            "wouldn't",
            "can't",
            "couldn't",
            "shouldn't",
            "haven't",
            "hasn't",
            "hadn't",
            "ain't",
        ]
    ),
}


def negation_words(lang: str) -> frozenset[str]:
    """Negation cue words (normalised, lowercase) for ``ru``, ``uk``, ``en``; empty otherwise."""
    return NEGATIONS.get(lang, frozenset())


def morph_dict(lang: str) -> str:
    """The pymorphy3 dictionary used for a message language (see the module doc)."""
    return lang if lang in MORPH_LANGS else "ru"


@lru_cache(maxsize=2)
def _analyzer(lang: str) -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang=lang)


_CACHES: dict[str, dict[str, str]] = {}


def lemma_lookup(dict_lang: str) -> tuple[dict[str, str], Any]:
    """The (cache, analyzer) pair for one dictionary."""
    cache = _CACHES.setdefault(dict_lang, {})
    return cache, _analyzer(dict_lang)


V = TypeVar("V")


def _cached(keys: list[str], cache: dict[str, V], compute: Callable[[str], V]) -> list[V]:
    """``compute`` of every key through ``cache`` (hits cost one dict lookup; the cache is
    emptied when it outgrows ``CACHE_LIMIT``)."""
    get = cache.get
    out = [get(k) for k in keys]
    if None in out:
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        for i, v in enumerate(out):
            if v is None:
                out[i] = cache[keys[i]] = compute(keys[i])
    return out  # type: ignore[return-value]


def lemmatize_tokens(tokens: list[str], lang: str) -> list[str]:
    """One lemma per token (same length); only the dictionary's words go to pymorphy3; cached."""
    dict_lang = morph_dict(lang)
    cache, analyzer = lemma_lookup(dict_lang)
    check = _WORD_RE[dict_lang].fullmatch

    def lemma(t: str) -> str:
        return str(analyzer.parse(t)[0].normal_form).replace("ё", "е") if check(t) else t

    return _cached(tokens, cache, lemma)


#: A whitespace-separated chunk's tokens, lemmas, whether homoglyph folding changed it, and
#: whether any of its tokens or lemmas can start a place name.
_Chunk = tuple[tuple[str, ...], tuple[str, ...], bool, bool]
_CHUNKS: dict[str, dict[str, _Chunk]] = {}


def _chunk_entry(chunk: str, dict_lang: str) -> _Chunk:
    from chatlens.enrich.places import gazetteer_keys

    folded = fold_homoglyphs(chunk)
    toks = tokenize_fast(folded)
    lems = lemmatize_tokens(toks, dict_lang)
    keys = gazetteer_keys("fast")
    return (tuple(toks), tuple(lems), folded != chunk,
            not (keys.isdisjoint(toks) and keys.isdisjoint(lems)))


def _chunks_for(dict_lang: str) -> tuple[dict[str, _Chunk], Callable[[str], _Chunk]]:
    return _CHUNKS.setdefault(dict_lang, {}), lambda c: _chunk_entry(c, dict_lang)


def analyze(norm: str, lang: str) -> tuple[list[str], list[str], bool]:
    """Tokens, lemmas and "was folded" of unfolded normalised text, ``fast`` tokenizer.

    Homoglyph folding, tokenising and lemmatising are cached per whitespace-separated chunk
    (``границе,``), which removes nearly all per-token Python work on real text. The result is what
    :func:`fold_homoglyphs`, :func:`tokenize_fast` and :func:`lemmatize_tokens` give, since neither
    a token nor a word spans whitespace. When the flag is true the caller folds ``norm`` too.
    """
    cache, entry = _chunks_for(morph_dict(lang))
    done = _cached(norm.split(), cache, entry)
    tokens = [t for e in done for t in e[0]]
    lemmas = [t for e in done for t in e[1]]
    return tokens, lemmas, any(e[2] for e in done)


@dataclass(frozen=True, slots=True)
class BatchAnalysis:
    """:func:`analyze` of many messages: list arrays of tokens and lemmas, and per message
    whether folding changed it and whether it may name a place."""

    tokens: pa.ListArray
    lemmas: pa.ListArray
    folded: NDArray[np.bool_]
    may_name_place: NDArray[np.bool_]


def analyze_batch(norms: list[str], langs: list[str]) -> BatchAnalysis:
    """:func:`analyze` for a batch, with Python work only per *distinct* chunk of the batch.

    Arrow splits the texts on whitespace (exactly as ``str.split``) and dictionary-encodes the
    chunks; each distinct chunk is looked up in the per-dictionary chunk cache once; the
    messages' token and lemma lists are then gathered from the distinct chunks' lists.
    """
    dicts = [morph_dict(x) for x in langs]
    groups = sorted(set(dicts))
    if len(groups) <= 1:
        return _analyze_group(norms, groups[0] if groups else "ru")
    order = sorted(range(len(norms)), key=dicts.__getitem__)  # stable: per group, in order
    parts = []
    start = 0
    for g in groups:
        size = dicts.count(g)
        parts.append(_analyze_group([norms[i] for i in order[start:start + size]], g))
        start += size
    back = np.empty(len(order), dtype=np.int64)
    back[np.asarray(order)] = np.arange(len(order))
    take = pa.array(back)
    return BatchAnalysis(
        tokens=pa.concat_arrays([p.tokens for p in parts]).take(take),
        lemmas=pa.concat_arrays([p.lemmas for p in parts]).take(take),
        folded=np.concatenate([p.folded for p in parts])[back],
        may_name_place=np.concatenate([p.may_name_place for p in parts])[back])


def _per_message_any(flags: NDArray[np.bool_], offsets: NDArray[np.int64]) -> NDArray[np.bool_]:
    cum = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    return np.asarray(cum[offsets[1:]] - cum[offsets[:-1]] > 0)


def _analyze_group(norms: list[str], dict_lang: str) -> BatchAnalysis:
    chunks = pc.utf8_split_whitespace(pa.array(norms, pa.string()))
    offsets = np.asarray(chunks.offsets, dtype=np.int64)
    enc = pc.dictionary_encode(chunks.flatten())
    codes = np.asarray(enc.indices, dtype=np.int64)
    cache, entry = _chunks_for(dict_lang)
    done = _cached(enc.dictionary.to_pylist(), cache, entry)
    n_tok = np.fromiter((len(e[0]) for e in done), np.int64, len(done))
    starts = np.concatenate([[0], np.cumsum(n_tok)[:-1]]).astype(np.int64)
    # the token positions (in the distinct chunks' concatenated lists) of every occurrence
    occ_len = n_tok[codes]
    occ_end = np.cumsum(occ_len)
    pos = np.arange(int(occ_end[-1]) if occ_end.size else 0, dtype=np.int64)
    pos += np.repeat(starts[codes] - (occ_end - occ_len), occ_len)
    take = pa.array(pos)
    bounds = pa.array(np.concatenate([[0], occ_end])[offsets], pa.int32())
    flat_tokens = pa.array([t for e in done for t in e[0]], pa.string()).take(take)
    flat_lemmas = pa.array([t for e in done for t in e[1]], pa.string()).take(take)
    folded = np.fromiter((e[2] for e in done), np.bool_, len(done))[codes]
    place = np.fromiter((e[3] for e in done), np.bool_, len(done))[codes]
    return BatchAnalysis(
        tokens=pa.ListArray.from_arrays(bounds, flat_tokens),
        lemmas=pa.ListArray.from_arrays(bounds, flat_lemmas),
        folded=_per_message_any(folded, offsets),
        may_name_place=_per_message_any(place, offsets))


class Lemmatizer:
    """The enrichment text pipeline for one string: normalise, tokenise, lemmatise.

    Use it to compile codebook lexicon phrases so that terms and messages are processed the same
    way. Holds no state of its own (caches are per process), so it pickles cheaply.
    """

    def __init__(self, tokenizer: str = "fast") -> None:
        self.tokenizer = tokenizer

    def tokens(self, text: str) -> list[str]:
        norm, _ = prepare(text)
        return tokenize_razdel(norm) if self.tokenizer == "razdel" else tokenize_fast(norm)

    def lemmas(self, text: str, lang: str) -> list[str]:
        """Lemmas of every token of ``text`` read as language ``lang`` (punctuation included)."""
        return lemmatize_tokens(self.tokens(text), lang)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Lemmatizer, (self.tokenizer,))
