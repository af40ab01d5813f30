"""Naive classify-and-count: the share of messages the model flags. A reference only."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from chatlens.estimate.audit import wilson_interval
from chatlens.estimate.ppi import _as_scores
from chatlens.estimate.result import Estimate


def naive_estimate(
    yhat_population: ArrayLike, level: float = 0.95, threshold: float = 0.5
) -> Estimate:
    """Share of the population the model flags (scores ``>= threshold``), Wilson interval.

    The interval only reflects the binomial noise of counting; it ignores classifier error,
    which is usually far larger, so it is shown only next to a corrected estimate.
    """
    s = _as_scores(yhat_population, "yhat_population")
    if s.size == 0:
        raise ValueError("population is empty")
    p = float(np.mean(s >= threshold))
    lo, hi = wilson_interval(p, s.size, level)
    notes = (
        "naive classify-and-count: ignores classifier error (false positives and misses), "
        "so its interval is not a valid interval for the true share"
    )
    se = float(np.sqrt(p * (1 - p) / s.size))
    return Estimate(p, float(lo), float(hi), level, "naive", 0, int(s.size), notes, se)
