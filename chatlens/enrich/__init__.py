"""Enrichment: language, normalised text, tokens, lemmas, URLs/mentions/hashtags/emoji, places.

A pure library: :func:`enrich_table` maps an Arrow table of ``uid``/``text`` to
:data:`ENRICH_SCHEMA` rows. :class:`Lemmatizer` runs the same text pipeline on codebook terms.
"""

from __future__ import annotations

from chatlens.enrich.lid import detect
from chatlens.enrich.morph import Lemmatizer, negation_words
from chatlens.enrich.pipeline import ENRICH_SCHEMA, enrich_table, enrich_text
from chatlens.enrich.places import PLACES, find_places
from chatlens.enrich.settings import ENRICH_VERSION, EnrichSettings
from chatlens.enrich.text import URL_TOKEN, fold_homoglyphs, prepare
from chatlens.languages import DEFAULT_LANGUAGES

__all__ = [
    "DEFAULT_LANGUAGES",
    "ENRICH_SCHEMA",
    "ENRICH_VERSION",
    "PLACES",
    "URL_TOKEN",
    "EnrichSettings",
    "Lemmatizer",
    "detect",
    "enrich_table",
    "enrich_text",
    "find_places",
    "fold_homoglyphs",
    "negation_words",
    "prepare",
]
