"""``enrich_table``: one pass over an Arrow table of (uid, text)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from chatlens.enrich.lid import detect
from chatlens.enrich.morph import lemmatize_tokens
from chatlens.enrich.places import find_places
from chatlens.enrich.settings import EnrichSettings
from chatlens.enrich.text import (
    EMOJI_RE,
    HASHTAG_RE,
    MENTION_RE,
    prepare,
    tokenize_fast,
    tokenize_razdel,
)

_STR_LIST = pa.list_(pa.string())

ENRICH_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),  # ISO 639-1 or "und"
        pa.field("lang_score", pa.float32(), nullable=False),
        pa.field("norm", pa.string(), nullable=False),
        pa.field("tokens", _STR_LIST, nullable=False),
        pa.field("lemmas", _STR_LIST, nullable=False),  # same length as tokens
        pa.field("urls", _STR_LIST, nullable=False),
        pa.field("mentions", _STR_LIST, nullable=False),
        pa.field("hashtags", _STR_LIST, nullable=False),
        pa.field("emoji", _STR_LIST, nullable=False),
        pa.field("places", _STR_LIST, nullable=False),  # country:GE, checkpoint:upper_lars, …
    ]
)


def enrich_text(text: str, settings: EnrichSettings) -> dict[str, Any]:
    """Enrich one message; the columns of :data:`ENRICH_SCHEMA` except ``uid``."""
    norm, urls = prepare(text or "")
    lang, score = detect(norm, settings.languages, settings.min_chars, settings.lid_chars)
    tokenize = tokenize_razdel if settings.tokenizer == "razdel" else tokenize_fast
    tokens = tokenize(norm)
    lemmas = lemmatize_tokens(tokens, lang)
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
        "emoji": EMOJI_RE.findall(norm),
        "places": places,
    }


def enrich_table(table: pa.Table | pa.RecordBatch, settings: EnrichSettings) -> pa.Table:
    """Enrich a table with ``uid`` and ``text`` columns: one output row per input row, same order.

    Pure and picklable (module-level; caches and models are loaded lazily per process), so it can
    run in a process pool or Spark ``mapInArrow`` over record batches. Null text counts as "".
    """
    uids = table.column("uid").to_pylist()
    texts = table.column("text").to_pylist()
    cols: dict[str, list[Any]] = {name: [] for name in ENRICH_SCHEMA.names}
    cols["uid"] = uids
    names = ENRICH_SCHEMA.names[1:]
    appenders = [cols[n].append for n in names]
    for text in texts:
        row = enrich_text(text, settings)
        for name, append in zip(names, appenders, strict=True):
            append(row[name])
    return pa.Table.from_pydict(cols, schema=ENRICH_SCHEMA)
