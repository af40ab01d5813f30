"""Trained-model featurisation for bulk scoring gives exactly what the plain vectorizers give."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from chatlens.code import model as code_model
from chatlens.code.model import ModelScorer
from chatlens.code.scorers import Batch
from chatlens.train import shipped_model
from chatlens.train.features import FeaturePipeline, FeatureSpec

TEXTS = [
    "очередь на границе верхний ларс пять часов", "", "   ", "а", "ok",
    "очередь  на\tгранице\nверхний\u00a0ларс", "x\x1cy z\u2028q\u3000w", "ёлки палки ёлки палки",
    "https://t.me/x <url> #тег @ник 😀😀", "слово " * 40, "ﬁ ligature and combining é",
]


def _same(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


def test_word_cached_char_ngrams_equal_the_vectorizer_across_calls_and_evictions() -> None:
    pipe = FeaturePipeline(FeatureSpec(char_bits=16))
    counts = pipe._char_counts
    counts.MAX_WORDS = 12  # forces the cache to be dropped between calls
    assert counts.transform([]).shape == (0, 2 ** 16)
    for texts in (TEXTS, TEXTS[::-1], TEXTS[3:], TEXTS):
        want = pipe._char.transform(texts)
        want.sum_duplicates()
        assert _same(counts.transform(texts), want)
    # over the bound, the cache was dropped: it holds the last call's words only
    assert set(counts._ids) == {w for t in TEXTS for w in t.split()}
    assert pickle.loads(pickle.dumps(pipe))._char_counts._ids == {}  # the cache stays behind


def test_model_scorer_in_slices_gives_the_probabilities_of_one_pass(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = shipped_model("hostility-ru")
    lemmas = [t.split() for t in TEXTS]
    whole = model.predict_proba(TEXTS, lemmas, norms=TEXTS)
    monkeypatch.setattr(code_model, "PREDICT_ROWS", 3)
    batch = Batch(text=TEXTS, norm=TEXTS, lang=["ru"] * len(TEXTS), lemmas=lemmas)
    got = ModelScorer("m", model).proba(batch)
    assert np.array_equal(got, whole)
    assert ModelScorer("m", model).proba(Batch([], [], [], [])).shape == (0, 2)
