"""``enrich_table``: one pass over an Arrow table of (uid, text)."""

from __future__ import annotations

import gc
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chatlens.enrich.chunks import chunk_features, lemmas_for
from chatlens.enrich.columnar import STR_LIST, prepare_column, put
from chatlens.enrich.lid import detect, detect_batch, detect_column
from chatlens.enrich.morph import MORPH_LANGS, analyze, lemmatize_tokens
from chatlens.enrich.place_batch import place_lists
from chatlens.enrich.places import find_places
from chatlens.enrich.settings import EnrichSettings
from chatlens.enrich.text import (
    HASHTAG_RE,
    MENTION_RE,
    find_emoji,
    fold_homoglyphs,
    prepare,
    tokenize_razdel,
)
from chatlens.search_words import encode_lemmas

ENRICH_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),  # ISO 639-1 or "und"
        pa.field("lang_score", pa.float32(), nullable=False),
        pa.field("norm", pa.string(), nullable=False),
        # one per token of the normalised text; the tokens themselves are not kept, since
        # Lemmatizer(tokenizer).tokens(text) gives them again (see :func:`enrich_text`)
        pa.field("lemmas", STR_LIST, nullable=False),
        pa.field("urls", STR_LIST, nullable=False),
        pa.field("mentions", STR_LIST, nullable=False),
        pa.field("hashtags", STR_LIST, nullable=False),
        pa.field("emoji", STR_LIST, nullable=False),
        pa.field("places", STR_LIST, nullable=False),  # country:GE, checkpoint:upper_lars, …
    ]
)


def enrich_text(text: str, settings: EnrichSettings) -> dict[str, Any]:
    """Enrich one message: the columns of :data:`ENRICH_SCHEMA` except ``uid``, and ``tokens``
    (equal to ``Lemmatizer(settings.tokenizer).tokens(text)``, one per lemma)."""
    norm, urls = prepare(text or "", fold=False)
    lang, score = detect(norm, settings.languages, settings.min_chars, settings.lid_chars)
    if settings.tokenizer == "razdel":
        norm = fold_homoglyphs(norm)
        tokens = tokenize_razdel(norm)
        lemmas = lemmatize_tokens(tokens, lang)
    else:
        tokens, lemmas, folded = analyze(norm, lang)
        if folded:
            norm = fold_homoglyphs(norm)
    places = find_places(tokens, lemmas, settings.tokenizer) if settings.places else []
    return {
        "lang": lang,
        "lang_score": score,
        "norm": norm,
        "tokens": tokens,
        "lemmas": lemmas,
        "urls": urls,
        "mentions": MENTION_RE.findall(norm) if "@" in norm else [],
        "hashtags": HASHTAG_RE.findall(norm) if "#" in norm else [],
        "emoji": find_emoji(norm),
        "places": places,
    }


def warm_up(settings: EnrichSettings | None = None) -> None:
    """Load now what enrichment loads on its first batches (the pymorphy3 dictionaries,
    py3langid, the gazetteer, the character classes of :mod:`.columnar`), so that worker
    processes forked after this share them instead of each loading its own."""
    settings = settings or EnrichSettings()
    enrich_table(pa.table({"uid": ["warm"], "text": ["Едем в Тбилиси, http://x.org"]}), settings)
    detect_batch(["a sentence for the language model"], ("en", "de"), 5, 300)
    for lang in MORPH_LANGS:
        lemmatize_tokens(["дом"], lang)


def _list_array(rows: list[list[str]]) -> pa.ListArray:
    offsets = [0]
    flat: list[str] = []
    for r in rows:
        flat.extend(r)
        offsets.append(len(flat))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, pa.string()))


def enrich_table(table: pa.Table | pa.RecordBatch, settings: EnrichSettings,
                 timings: dict[str, float] | None = None, with_codes: bool = False) -> pa.Table:
    """Enrich a table with ``uid`` and ``text`` columns: one output row per input row, same order.

    Pure and picklable (module-level; caches and models are loaded lazily per process), so it can
    run in a process pool or Spark ``mapInArrow`` over record batches. Null text counts as "".
    The result equals :func:`enrich_text` row by row (``lang_score`` to float32 rounding). With
    the ``fast`` tokenizer the work is columnar: :func:`~.columnar.prepare_column`, language ID
    once per distinct text, :func:`~.chunks.chunk_features` (Python per new whitespace chunk
    only), :func:`~.chunks.lemmas_for` (cached per chunk and dictionary) and
    :func:`~.place_batch.place_lists` (only around tokens that can start a place name).
    ``timings``, when given, gets the seconds of each of those steps added to it.
    ``with_codes``: also a column ``lemma_codes``, the lemmas dictionary-encoded (see
    :mod:`chatlens.search_words`; the ``fast`` tokenizer has the codes from its cache).
    """
    texts = table.column("text")
    uid = table.column("uid")
    if isinstance(uid, pa.ChunkedArray):
        uid = uid.combine_chunks()
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of short lists, no cycles: the cyclic GC would only rescan them
    try:
        if settings.tokenizer == "fast":
            arrays, codes = _enrich_fast(texts, settings, timings if timings is not None else {})
        else:
            arrays = _enrich_rows(texts.to_pylist(), settings)
            codes = encode_lemmas(arrays[ENRICH_SCHEMA.names.index("lemmas") - 1])
    finally:
        if gc_was_on:
            gc.enable()
    out = pa.Table.from_arrays([uid, *arrays], schema=ENRICH_SCHEMA)
    return out.append_column("lemma_codes", codes) if with_codes else out


def _enrich_rows(texts: list[str | None], settings: EnrichSettings) -> list[pa.Array]:
    names = ENRICH_SCHEMA.names[1:]
    cols: dict[str, list[Any]] = {name: [] for name in names}
    appenders = [cols[n].append for n in names]
    for text in texts:
        row = enrich_text(text or "", settings)
        for name, append in zip(names, appenders, strict=True):
            append(row[name])
    return [_list_array(cols[f.name]) if f.name in _LIST_COLS else pa.array(cols[f.name], f.type)
            for f in ENRICH_SCHEMA if f.name != "uid"]


def _enrich_fast(texts: pa.Array | pa.ChunkedArray, settings: EnrichSettings,
                 timings: dict[str, float]) -> tuple[list[pa.Array], pa.ListArray]:
    clock = _Clock(timings)
    norms, urls = prepare_column(texts)
    clock("prepare")
    langs, scores = _detect(norms, settings)
    clock("language")
    feats = chunk_features(norms)
    clock("chunks")
    lemmas, codes = lemmas_for(feats, langs)
    clock("lemmas")
    folded = np.flatnonzero(feats.folded)
    if folded.size:
        norms = put(norms, folded, pa.array(
            [fold_homoglyphs(x) for x in norms.take(pa.array(folded)).to_pylist()], pa.string()))
    places = (place_lists(feats.tokens, lemmas) if settings.places
              else pa.array([[]] * len(norms), STR_LIST))
    clock("places")
    return [langs, scores, norms, lemmas, urls, feats.mentions, feats.hashtags, feats.emoji,
            places], codes


class _Clock:
    """Adds the seconds since the last call to ``timings[step]``."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings, self.last = timings, time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + now - self.last
        self.last = now


def _detect(norms: pa.Array, settings: EnrichSettings) -> tuple[pa.Array, pa.Array]:
    """Language and score of each text; a text repeated in the batch is classified once."""
    enc = pc.dictionary_encode(norms)
    langs, scores = detect_column(enc.dictionary, settings.languages, settings.min_chars,
                                  settings.lid_chars)
    return langs.take(enc.indices), scores.take(enc.indices)


_LIST_COLS = frozenset(f.name for f in ENRICH_SCHEMA if pa.types.is_list(f.type))
