"""``ModelScorer``: a trained model as a codebook scorer (the ``model`` scorer type).

What a hit means:

* **binary** measures: ``Hit(positive, p)`` with ``p = P(positive)`` when ``p >= threshold``,
  else ``None`` (the code stage then writes the measure's default label). The Hit's score is
  always the probability of the *positive* label, never the max over labels. Below-threshold
  probabilities are not visible through a ``None``; :meth:`ModelScorer.positive_proba` gives
  ``P(positive)`` for every message, which is what prediction-powered inference needs — the code
  stage should store it for binary model scorers (one call, same batch).
* **categorical** measures: ``Hit(argmax label, its probability)`` for every message (never
  ``None``; ``threshold`` does not apply). :meth:`ModelScorer.proba` gives the full matrix.

``matched`` holds ``("model:<name>",)`` so evidence views can tell model codes from lexicon ones.
The scorer pickles (arrays and a stateless hashing pipeline), so a process pool can run it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chatlens.code.scorers import Batch, Hit
from chatlens.errors import UsageError
from chatlens.train.model import TrainedModel

#: Messages featurised at once: a news post has ~2,000 hashed n-grams, ~50 bytes each through
#: featurisation, so 2,000 posts take ~200 MB.
PREDICT_ROWS = 2_000


class ModelScorer:
    """Scores a :class:`~chatlens.code.scorers.Batch` with a :class:`TrainedModel`."""

    def __init__(self, scorer_id: str, model: TrainedModel, *, name: str | None = None,
                 label: str | None = None, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise UsageError(f"threshold must be between 0 and 1, not {threshold}")
        if label is not None and label not in model.labels:
            raise UsageError(f"label {label!r} is not one of the model's labels {model.labels}")
        if model.positive is not None and label is not None and label != model.positive:
            raise UsageError(f"binary model {model.measure!r} reports {model.positive!r}; "
                             f"label {label!r} would invert it")
        self._id = scorer_id
        self.model = model
        self.name = name or model.measure
        self.threshold = threshold
        self._label = model.positive or label or model.labels[0]

    @classmethod
    def from_dir(cls, scorer_id: str, directory: str | Path, **kw: object) -> ModelScorer:
        return cls(scorer_id, TrainedModel.load(directory), **kw)  # type: ignore[arg-type]

    @property
    def id(self) -> str:
        return self._id

    @property
    def label(self) -> str:
        return self._label

    def proba(self, batch: Batch) -> np.ndarray:
        """Probabilities per message, columns in the model's label order (featurised
        :data:`PREDICT_ROWS` messages at a time: their n-gram matrices are the memory cost)."""
        lemmas = batch.lemmas
        parts = [self.model.predict_proba(batch.text[i:i + PREDICT_ROWS],
                                          lemmas[i:i + PREDICT_ROWS],
                                          norms=batch.norm[i:i + PREDICT_ROWS])
                 for i in range(0, len(batch), PREDICT_ROWS)]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.model.labels)))

    def positive_proba(self, batch: Batch) -> list[float]:
        """P(positive) per message (binary models), or P(:attr:`label`) (categorical)."""
        p = self.proba(batch)
        return [float(x) for x in p[:, self.model.labels.index(self._label)]]

    def score(self, batch: Batch) -> list[Hit | None]:
        if len(batch) == 0:
            return []
        p = self.proba(batch)
        tag = (f"model:{self.name}",)
        if self.model.positive is not None:
            col = p[:, self.model.labels.index(self.model.positive)]
            return [Hit(self.model.positive, float(x), tag) if x >= self.threshold else None
                    for x in col]
        best = p.argmax(axis=1)
        return [Hit(self.model.labels[int(k)], float(p[i, k]), tag) for i, k in enumerate(best)]


class OutOfFoldScorer(ModelScorer):
    """A :class:`ModelScorer` whose every answer comes from a model that did not learn from the
    message: for the model's training messages (``oof``: uid -> probabilities in the model's
    label order) their out-of-fold probabilities; for every other message the *cross-fitted*
    fold models (the fold model its uid hashes to,
    :meth:`~chatlens.train.model.TrainedModel.predict_proba_cross_fitted`), the same functions
    that produced the out-of-fold probabilities. Quantification measures a model's error rates
    on labelled messages and applies them to the target: both must be scored this way, since the
    final model scores its training messages too well and new messages more sharply than its
    out-of-fold rates describe. Models saved without fold models (older ones, shipped ones)
    answer other messages with their ordinary predictions (``cross_fitted`` is then False). The
    batch must carry its uids."""

    def __init__(self, inner: ModelScorer, oof: dict[str, np.ndarray]) -> None:
        super().__init__(inner.id, inner.model, name=inner.name, threshold=inner.threshold)
        self._label = inner.label
        self.oof = oof

    @property
    def cross_fitted(self) -> bool:
        """True when messages outside the training data are scored by the fold models."""
        return bool(self.model.folds)

    def proba(self, batch: Batch) -> np.ndarray:
        if batch.uids is None:
            raise ValueError("out-of-fold scoring needs the batch's uids")
        uids = [str(u) for u in batch.uids.to_pylist()]
        if self.model.folds:
            p = self.model.predict_proba_cross_fitted(batch.text, uids, batch.lemmas,
                                                      norms=batch.norm)
        else:
            p = super().proba(batch)
        for i, uid in enumerate(uids):
            row = self.oof.get(uid)
            if row is not None:
                p[i] = row
        return p
