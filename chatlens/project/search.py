"""Lemma-aware search: find messages with every query word in any inflected form."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from chatlens.enrich import Lemmatizer
from chatlens.enrich.morph import lemmatize_tokens
from chatlens.errors import UsageError
from chatlens.store import Store
from chatlens.store import stages as db

_WORD = re.compile(r"\w", re.UNICODE)
_LANGS = ("ru", "uk", "en")  # a query is read in each: lemmas of any of them match


def query_lemmas(query: str) -> list[list[str]]:
    """Lemma sets for the query read as Russian and as Ukrainian (duplicates removed)."""
    lem = Lemmatizer()
    sets: list[list[str]] = []
    for lang in _LANGS:
        lemmas = sorted({x for x in lem.lemmas(query, lang) if _WORD.search(x)})
        if lemmas and lemmas not in sets:
            sets.append(lemmas)
    if not sets:
        raise UsageError(f"The query {query!r} has no words to search for.")
    return sets


def highlight_spans(text: str, tokens: list[str], lemmas: list[str], wanted: set[str],
                    ) -> list[tuple[int, int]]:
    """Character spans in ``text`` of the tokens whose lemma is wanted (case and ё-insensitive)."""
    spans: list[tuple[int, int]] = []
    for surface in {t for t, lemma in zip(tokens, lemmas, strict=False) if lemma in wanted}:
        pattern = "".join("[её]" if ch in "её" else re.escape(ch) for ch in surface)
        for m in re.finditer(rf"(?<!\w){pattern}(?!\w)", text, re.IGNORECASE):
            spans.append(m.span())
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def search(store: Store, query: str, codebook: str | None, measure: str | None,
           value: str | None, limit: int, offset: int = 0,
           mask: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
           ) -> list[dict[str, Any]]:
    """Messages with every query word in any inflected form, newest first, with the character
    spans to highlight; ``offset`` skips that many (the next page starts at offset + limit).
    Each row goes through ``mask`` (see :class:`chatlens.privacy.Masker`) before its spans are
    found, so they fit the text shown."""
    if limit < 1 or offset < 0:
        raise UsageError("limit must be at least 1 and offset at least 0.")
    sets = query_lemmas(query)
    if store.read_only:
        if db.unindexed_count(store):
            raise UsageError("The search index is not up to date; run `chatlens enrich` once.")
    else:
        db.index_lemmas(store)  # catches up a project whose index lags; nothing to do otherwise
    rows = db.search(store, sets, codebook, measure, value, limit, offset)
    wanted = {x for s in sets for x in s}
    lem = Lemmatizer()
    for r in rows:  # a few dozen rows: re-analysed in every language the query was read in
        if mask is not None:
            mask(r)
        tokens = lem.tokens(r["text"])
        lemmas = [x for lang in _LANGS for x in lemmatize_tokens(tokens, lang)]
        r["highlights"] = highlight_spans(r["text"], tokens * len(_LANGS), lemmas, wanted)
    return rows
