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
from functools import lru_cache
from typing import Any, TypeVar

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
    """``compute`` of every key through ``cache`` (hits cost one dict lookup, a key repeated in
    ``keys`` is computed once; the cache is emptied when it outgrows ``CACHE_LIMIT``)."""
    get = cache.get
    out = [get(k) for k in keys]
    if None in out:
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        for i, v in enumerate(out):
            if v is None:  # a key repeated in ``keys`` is computed once
                k = keys[i]
                hit = cache.get(k)
                out[i] = cache[k] = compute(k) if hit is None else hit
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
