"""Label planning: how many audit labels a target interval half-width needs (pure functions).

The sizes predict the intervals chatlens computes:

- **audit only** (:func:`audit_n`): the Wilson interval on the finite-population effective size
  ``n (N-1)/(N-n)`` (:func:`chatlens.estimate.audit.audit_estimate`); its half-width is
  ``z/(1+z²/m) * sqrt(p(1-p)/m + z²/(4m²))`` at effective size ``m``, solved for ``m``, then
  ``n = m N / (N - 1 + m)``.
- **PPI** (:func:`ppi_n`): the half-width of
  :func:`chatlens.estimate.ppi.ppi_finite_estimate` is ``z * sqrt((1 - n/N) s² / n)`` with
  ``s²`` the variance of the audit residuals ``y - g(f)`` (``g``: the working model, a
  recalibration of the scores), so ``n = n₀ / (1 + n₀/N)`` with ``n₀ = z² s² / w²``. ``s²``
  comes from a pilot audit (:func:`residual_variance`, the cross-fitted residuals chatlens
  itself would use) or, without one, from the scores (:func:`model_variance`:
  ``mean g(f)(1 - g(f))`` over the population, exact when ``g`` is calibrated there).
- **two periods or groups** (:func:`difference_n`): the difference interval
  ``z * sqrt(SE₁² + SE₂²)``; labels are split in proportion to each side's ``s`` (Neyman), which
  minimises the total.

PPI's interval is widened to the audit-only one when the audit holds fewer than
``PPI_MIN_MINORITY`` of the rarer class; a PPI plan therefore never asks for fewer labels than
give about ``2 × PPI_MIN_MINORITY`` of it on average (:data:`MIN_MINORITY_EXPECTED`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from chatlens.estimate.audit import z_value
from chatlens.estimate.ppi import (
    PPI_MIN_MINORITY,
    RECALIBRATE_MIN_CLASS,
    _as_scores,
    _logistic_fit,
    _logit,
    _regression_lambda,
    working_model,
)

#: A PPI plan gives the audit at least this many expected members of the rarer class.
MIN_MINORITY_EXPECTED = 2 * PPI_MIN_MINORITY


@dataclass(frozen=True, slots=True)
class Plan:
    """Audit labels needed for a half-width: ``n`` (at most ``N``; ``n == N`` means even a
    census falls short or is needed), the variance per label it rests on (``sigma2``), and
    where that came from (``basis``)."""

    method: str  # "audit" or "ppi"
    n: int
    N: int
    half_width: float
    level: float
    sigma2: float
    p: float
    basis: str
    binding: str = "variance"  # what set n: variance, rare class, disagreement floor, census
    group: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def wilson_half_width(p: float, n_eff: float, level: float = 0.95) -> float:
    """Half-width of the Wilson interval for share ``p`` at effective size ``n_eff``."""
    if math.isinf(n_eff):
        return 0.0
    z = z_value(level)
    z2n = z * z / n_eff
    return z * math.sqrt(p * (1 - p) / n_eff + z2n / (4 * n_eff)) / (1 + z2n)


def _fpc_n(m: float, N: int) -> int:
    """The sample size whose finite-population effective size is ``m``."""
    return min(N, max(2, math.ceil(m * N / (N - 1 + m))))


def audit_n(p: float, N: int, half_width: float, level: float = 0.95) -> int:
    """Audit labels for the audit-only Wilson interval to have ``half_width`` at share ``p``."""
    if not 0 < half_width < 0.5:
        raise ValueError("half_width must be between 0 and 0.5")
    p = min(max(p, 0.0), 1.0)
    lo, hi = 1.0, 1e9
    if wilson_half_width(p, hi, level) > half_width:
        return N
    for _ in range(200):  # bisection on the effective size (the width falls as it grows)
        mid = math.sqrt(lo * hi)
        if wilson_half_width(p, mid, level) > half_width:
            lo = mid
        else:
            hi = mid
        if hi - lo < 0.01:
            break
    return _fpc_n(hi, N)


def ppi_n(sigma2: float, N: int, half_width: float, level: float = 0.95,
          p: float | None = None, disagreement: float | None = None) -> int:
    """Audit labels for the PPI interval to have ``half_width`` when the residuals have
    variance ``sigma2``. With ``p``, at least :data:`MIN_MINORITY_EXPECTED` of the rarer class
    are expected in the audit; with ``disagreement`` (the share of messages where the model's
    decision and the coders differ), the floor chatlens puts on the standard error when the
    audit holds fewer than ``PPI_MIN_MINORITY`` disagreements is taken into account."""
    if not 0 < half_width < 0.5:
        raise ValueError("half_width must be between 0 and 0.5")
    z = z_value(level)
    n0 = z * z * max(sigma2, 0.0) / (half_width * half_width)
    n = max(2, math.ceil(n0 / (1 + n0 / N)))
    if p is not None and min(p, 1 - p) > 0:
        n = max(n, math.ceil(MIN_MINORITY_EXPECTED / min(p, 1 - p)))
    if disagreement is not None:
        while n < N and ppi_half_width(sigma2, n, N, level, disagreement) > half_width:
            n = max(n + 1, math.ceil(n * 1.02))
    return min(n, N)


def ppi_half_width(sigma2: float, n: int, N: int, level: float = 0.95,
                   disagreement: float | None = None) -> float:
    """The PPI half-width an audit of ``n`` gives (no small-sample guard, no clipping); with
    ``disagreement``, the standard-error floor for an audit with few disagreements
    (expected ``n * disagreement``)."""
    fpc = max(1 - n / N, 0.0)
    var = fpc * sigma2 / n
    if disagreement is not None and n * disagreement < PPI_MIN_MINORITY:
        p0 = (n * disagreement + 2) / (n + 4)
        var = max(var, fpc * p0 * (1 - p0) / n)
    return z_value(level) * math.sqrt(var)


def disagreement_rate(y: ArrayLike, f: ArrayLike) -> float:
    """Share of audited messages where the model's decision (score >= 0.5) and the label
    differ."""
    y_a, f_a = np.asarray(y, dtype=float), np.asarray(f, dtype=float)
    return float(np.mean(y_a != (f_a >= 0.5))) if y_a.size else 0.0


def residual_variance(y: ArrayLike, f: ArrayLike, f_all: ArrayLike,
                      ) -> tuple[float, float, str]:
    """From a pilot audit (labels ``y``, scores ``f``) and the population's scores: the residual
    variance with the logistic recalibration (NaN when the pilot cannot fit it) and with PPI++'s
    linear working model, and a description."""
    y_a = np.asarray(y, dtype=float)
    f_a = _as_scores(f, "f")
    fa = _as_scores(f_all, "f_all")
    lam = _regression_lambda(y_a, f_a)
    linear = float(np.var(y_a - lam * f_a, ddof=1))
    g = calibration(y_a, f_a)
    if g is None:
        return math.nan, linear, f"pilot audit of {y_a.size} (linear working model)"
    x = int(y_a.sum())
    if min(x, y_a.size - x) >= RECALIBRATE_MIN_CLASS:
        work, _, _ = working_model(y_a, f_a, fa, True)  # cross-fitted, as the estimate does
        return float(np.var(y_a - work, ddof=1)), linear, (
            f"pilot audit of {y_a.size} (cross-fitted recalibration)")
    # too few of a class to cross-fit: the one fit on the whole pilot, a little optimistic
    return float(np.var(y_a - g(f_a), ddof=1)), linear, (
        f"pilot audit of {y_a.size} (recalibration fitted on the whole pilot)")


def calibration(y: NDArray[np.float64], f: NDArray[np.float64],
                ) -> Callable[[NDArray[np.float64]], NDArray[np.float64]] | None:
    """``g(f) = sigmoid(a + b logit f)`` fitted on labelled scores (None when it cannot be)."""
    if y.size < 10 or y.min() == y.max():
        return None
    coef = _logistic_fit(_logit(f), y)
    if coef is None:
        return None
    a, b = coef
    return lambda s: np.asarray(expit(a + b * _logit(s)), dtype=float)


def model_variance(g_all: ArrayLike) -> float:
    """``mean g(1-g)`` over the population: the residual variance if ``g`` is calibrated."""
    g = np.asarray(g_all, dtype=float)
    return float(np.mean(g * (1 - g))) if g.size else 0.25


def plan_audit(p: float, N: int, half_width: float, level: float = 0.95, basis: str = "",
               group: str | None = None) -> Plan:
    """The audit-only plan at share ``p``."""
    n = audit_n(p, N, half_width, level)
    return Plan("audit", n, N, half_width, level, p * (1 - p), p, basis,
                "census" if n >= N else "variance", group)


def plan_ppi(sigma2: float, p: float, N: int, half_width: float, level: float = 0.95,
             basis: str = "", group: str | None = None, disagreement: float | None = None,
             sigma2_linear: float | None = None, audit_n_cap: int | None = None) -> Plan:
    """The PPI plan for residual variance ``sigma2`` (with the logistic recalibration;
    ``sigma2_linear``: with the linear working model, used when the planned audit would hold
    too few of a class for the recalibration). ``binding`` says what set ``n``: the residual
    ``variance``, the ``rare class`` (enough of it for a trusted interval), the
    ``disagreement floor`` or a ``census``. ``audit_n_cap``: the audit-only plan's size; a
    PPI plan asking for more (a class so rare that PPI's interval would be the audit's anyway)
    is cut to it."""
    s2 = sigma2 if sigma2_linear is None or not math.isnan(sigma2) else sigma2_linear
    n = ppi_n(s2, N, half_width, level, p, disagreement)
    if sigma2_linear is not None:
        for _ in range(3):  # the working model depends on n, n on the working model
            s2 = choose_variance(sigma2, sigma2_linear, n, p)
            n = ppi_n(s2, N, half_width, level, p, disagreement)
    bare = ppi_n(s2, N, half_width, level)
    rare = ppi_n(s2, N, half_width, level, p)
    binding = ("census" if n >= N else "variance" if n == bare else
               "rare class" if n == rare else "disagreement floor")
    if audit_n_cap is not None and n > audit_n_cap:
        # PPI would need more than the audit alone (a weak model, or a class so rare that
        # PPI's interval is widened to the audit-only one): the audit-only size
        n, binding = audit_n_cap, "audit-only size"
    return Plan("ppi", n, N, half_width, level, s2, p, basis, binding, group)


def choose_variance(logistic: float, linear: float, n: int, p: float) -> float:
    """The residual variance chatlens's estimate would have at audit size ``n``: with the
    logistic recalibration when ``n`` gives :data:`RECALIBRATE_MIN_CLASS` of each class."""
    if not math.isnan(logistic) and n * min(p, 1 - p) >= RECALIBRATE_MIN_CLASS:
        return logistic
    return linear


def difference_n(sigma2_a: float, N_a: int, sigma2_b: float, N_b: int, half_width: float,
                 level: float = 0.95) -> tuple[int, int]:
    """Labels for each side so that the difference of two independent estimates has
    ``half_width``: minimise ``n_a + n_b`` subject to
    ``z² (s_a²(1/n_a - 1/N_a) + s_b²(1/n_b - 1/N_b)) = w²``, i.e. ``n_k = s_k (s_a + s_b) / D``
    with ``D = w²/z² + s_a²/N_a + s_b²/N_b``."""
    if not 0 < half_width < 1:
        raise ValueError("half_width must be between 0 and 1")
    z = z_value(level)
    sa, sb = math.sqrt(max(sigma2_a, 0.0)), math.sqrt(max(sigma2_b, 0.0))
    D = half_width**2 / z**2 + sigma2_a / N_a + sigma2_b / N_b
    n_a = min(N_a, max(2, math.ceil(sa * (sa + sb) / D)))
    n_b = min(N_b, max(2, math.ceil(sb * (sa + sb) / D)))
    return n_a, n_b
