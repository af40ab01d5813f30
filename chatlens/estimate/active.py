"""Prediction-powered estimate from an *active* audit sample (inverse-probability weighted).

An active audit (:func:`chatlens.annotate.sampling.draw_active`) draws message ``i`` with a
known probability ``pi_i`` that is larger where the model is unsure, so the labels go where
the corrections are large (Zrnic & Candès 2024, "Active statistical inference"). With a
working model ``g`` fixed *before* the draw (a recalibration from an earlier audit, or the
scores themselves), the Horvitz-Thompson difference estimator

``point = mean(g over the population) + (1/N) sum_{i in S} (y_i - g_i) / pi_i``

is exactly unbiased under the design whatever ``g`` is, and under Poisson sampling its variance
``(1/N²) sum_i (1 - pi_i)/pi_i (y_i - g_i)²`` is estimated without bias by
``(1/N²) sum_{i in S} (1 - pi_i)/pi_i² (y_i - g_i)²``. Choosing ``pi_i ∝ sqrt(g_i(1 - g_i))``
minimises it when ``g`` is calibrated. The interval is the normal one; with fewer than
``PPI_MIN_MINORITY`` audited messages of the rarer class, or a share so small that a random
audit of the same size would hold fewer (``n·p < PPI_MIN_MINORITY``), it is widened to contain a
Wilson interval for the weighted audit share (on its Kish/Korn-Graubard effective size).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from chatlens.estimate.audit import _as_binary, wilson_interval, z_value
from chatlens.estimate.ppi import PPI_MIN_MINORITY, _as_scores
from chatlens.estimate.result import Estimate


def ppi_active_estimate(y_labelled: ArrayLike, g_labelled: ArrayLike, pi_labelled: ArrayLike,
                        g_population: ArrayLike, level: float = 0.95) -> Estimate:
    """The share from an active audit: labels ``y`` and inclusion probabilities ``pi`` of the
    audited messages, the fixed working model ``g`` on them and on all ``N`` messages."""
    y = _as_binary(y_labelled, "y_labelled")
    g = _as_scores(g_labelled, "g_labelled")
    pi = np.asarray(pi_labelled, dtype=float)
    g_all = _as_scores(g_population, "g_population")
    N, n = g_all.size, y.size
    if not (y.size == g.size == pi.size):
        raise ValueError("labels, working-model values and inclusion probabilities must match")
    if n < 2 or n > N or (pi.size and (pi.min() <= 0 or pi.max() > 1)):
        raise ValueError("needs 2 or more audited messages with inclusion probabilities in (0, 1]")
    r = y - g
    point = float(g_all.mean()) + float(np.sum(r / pi)) / N
    var = float(np.sum((1 - pi) * r * r / (pi * pi))) / (N * N)
    se = math.sqrt(var)
    z = z_value(level)
    lo, hi = point - z * se, point + z * se
    notes = (f"PPI with an active audit (Horvitz-Thompson difference estimator, Poisson "
             f"design, {n} audited); CLT interval")
    x = int(y.sum())
    share = float(np.clip(point, 0.0, 1.0))
    expected_rare = n * min(share, 1 - share)  # what a random audit of this size would hold
    # the CLT needs the rarer class in the audit, and in the amount a random audit of this size
    # would hold (n·p ≥ 5): a rare class found only where the model is unsure says nothing of
    # the heavily weighted rest, where one more find would move the estimate a lot
    if min(x, n - x) < PPI_MIN_MINORITY or expected_rare < PPI_MIN_MINORITY:
        p_ht = float(np.clip(np.sum(y / pi) / N, 0.0, 1.0))
        v_ht = float(np.sum((1 - pi) * y * y / (pi * pi))) / (N * N)
        n_eff = min(float(n), p_ht * (1 - p_ht) / v_ht) if v_ht > 0 else float(n)
        w_lo, w_hi = wilson_interval(p_ht, max(n_eff, 1.0), level, n_count=n)
        lo, hi = min(lo, float(w_lo)), max(hi, float(w_hi))
        se = max(se, (hi - lo) / (2 * z))
        notes += (f"; audit has only {min(x, n - x)} of the rarer class (a random audit of "
                  f"{n} would hold about {expected_rare:.1f}), so the interval is "
                  "widened to include the weighted audit share's Wilson interval")
    return Estimate(share, max(lo, 0.0), min(hi, 1.0), level, "ppi",
                    n, N, notes, se)


def active_n(g_population: ArrayLike, q: ArrayLike, half_width: float,
             level: float = 0.95) -> int:
    """Expected audit size for an active design with probabilities ``pi = n q`` (``q`` sums to
    1) to give ``half_width``, when ``g`` is calibrated (``E (y - g)² = g(1 - g)``):
    ``Var = (1/N²)(sum v/(n q) - sum v)``, solved for ``n`` (capping at 1 is ignored, which only
    overstates the variance)."""
    g = np.asarray(g_population, dtype=float)
    qq = np.asarray(q, dtype=float)
    N = g.size
    v = g * (1 - g)
    z = z_value(level)
    n = float(np.sum(v / qq)) / (N * N * half_width**2 / z**2 + float(v.sum()))
    return int(min(N, max(2, math.ceil(n))))
