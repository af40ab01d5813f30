"""Planted-truth simulation used by the tests and the benchmark (pure numpy, no I/O).

A population of ``N`` messages gets true labels ``Y ~ Bernoulli(prevalence)``. A model feature
``x`` is normal with mean 0 for negatives and ``sep`` for positives (so the model's AUC is
``Phi(sep / sqrt(2))``). Scores are the calibrated posterior for a reference prior
``score_prior`` (``sigmoid(logit(score_prior) + sep*x - sep^2/2)``), optionally distorted by
``sigmoid(slope * logit(score) + shift)`` to make a miscalibrated model. Because the score is a
fixed function of ``x``, class-conditional score distributions are the same in every
population — the assumption quantification methods rely on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, logit
from scipy.stats import norm


@dataclass(frozen=True)
class Classifier:
    """A simulated classifier: separation, reference prior, and a calibration distortion."""

    name: str
    sep: float
    score_prior: float = 0.5
    slope: float = 1.0
    shift: float = 0.0

    @property
    def auc(self) -> float:
        return float(norm.cdf(self.sep / np.sqrt(2.0)))


#: Weak to strong, plus a miscalibrated (over-predicting) model.
CLASSIFIERS = (
    Classifier("weak", 0.5),
    Classifier("medium", 1.5),
    Classifier("strong", 3.0),
    Classifier("miscalibrated", 1.5, slope=0.6, shift=1.0),
)


def population(
    rng: np.random.Generator, N: int, prevalence: float, clf: Classifier
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return true labels (0/1 floats) and model scores for a population of ``N`` messages."""
    y = (rng.random(N) < prevalence).astype(float)
    return y, scores(rng, y, clf)


def scores(
    rng: np.random.Generator, y: NDArray[np.float64], clf: Classifier
) -> NDArray[np.float64]:
    """Model scores for given true labels under classifier ``clf``."""
    x = rng.standard_normal(y.shape) + clf.sep * y
    lg = logit(clf.score_prior) + clf.sep * x - clf.sep**2 / 2.0
    return np.asarray(expit(clf.slope * lg + clf.shift), dtype=float)


def audit_indices(rng: np.random.Generator, N: int, n: int) -> NDArray[np.int64]:
    """Indices of a simple random sample of ``n`` of ``N`` (without replacement)."""
    return rng.choice(N, size=n, replace=False)
