"""Audit-sample estimates: the share of a category in a human-coded random sample.

A random sample of messages coded by people is the gold standard: it needs no model and its
only error is sampling error. The interval is a Wilson score interval, which stays inside [0, 1]
and never collapses to a single point when the sample holds no (or only) positives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2, norm

from chatlens.estimate.result import Estimate, check_bounds

#: Counts of positives (or negatives) at or below this use the Poisson-based bound of the
#: Brown-Cai-DasGupta modified Wilson interval, which removes Wilson's coverage dip near 0 and 1.
BCD_SMALL_COUNT = 3


def z_value(level: float) -> float:
    """Two-sided normal quantile for a confidence level (1.96 for 0.95)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(norm.ppf(0.5 + level / 2.0))


def fpc_effective_n(n: int, N: int | None) -> float:
    """Effective sample size after the finite-population correction.

    Sampling ``n`` of ``N`` without replacement shrinks the variance of a sample share by
    ``(N - n) / (N - 1)``; equivalently the sample is worth ``n * (N - 1) / (N - n)`` independent
    draws. ``N=None`` means an effectively infinite population (no correction); ``n == N``
    (a census) gives ``inf``.
    """
    if N is None:
        return float(n)
    if n > N:
        raise ValueError(f"sample size {n} exceeds population size {N}")
    if n == N:
        return float("inf")
    return n * (N - 1) / (N - n)


def wilson_interval(
    p: ArrayLike,
    n_eff: ArrayLike,
    level: float = 0.95,
    n_count: ArrayLike | None = None,
    modified: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Wilson score interval for a share ``p`` observed on ``n_eff`` (effective) draws.

    The Wilson interval is the set of true shares that a score test would not reject: it is
    centred between the sample share and 1/2 and is never degenerate. Near 0 and 1, where the
    plain Wilson interval is known to undercover, the bound on the near side is replaced by the
    one-sided Poisson bound when the count is ``<= BCD_SMALL_COUNT`` (Brown, Cai & DasGupta 2001,
    "modified Wilson"). ``n_count`` is the actual sample size used for that Poisson bound
    (defaults to ``n_eff``; using the real ``n`` keeps it conservative under a FPC).
    ``modified=False`` gives the textbook Wilson interval. Vectorised over arrays.
    """
    z = z_value(level)
    p_a = np.asarray(p, dtype=float)
    n_a = np.asarray(n_eff, dtype=float)
    nc = n_a if n_count is None else np.asarray(n_count, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z2n = np.where(np.isinf(n_a), 0.0, z * z / n_a)
        denom = 1.0 + z2n
        centre = (p_a + z2n / 2.0) / denom
        var = np.where(np.isinf(n_a), 0.0, p_a * (1.0 - p_a) / n_a + z2n / (4.0 * n_a))
        half = z * np.sqrt(var) / denom
    lo = centre - half
    hi = centre + half
    if not modified:
        return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
    # Brown-Cai-DasGupta modification near the edges (counts measured on the real sample).
    alpha = 1.0 - level
    finite = np.isfinite(n_a)
    x = p_a * nc
    small_lo = finite & (x > 1e-9) & (x <= BCD_SMALL_COUNT + 1e-9)
    small_hi = finite & (nc - x > 1e-9) & (nc - x <= BCD_SMALL_COUNT + 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        pois_lo = chi2.ppf(alpha, 2.0 * np.maximum(x, 1e-9)) / (2.0 * nc)
        pois_hi = 1.0 - chi2.ppf(alpha, 2.0 * np.maximum(nc - x, 1e-9)) / (2.0 * nc)
    lo = np.where(small_lo, np.minimum(lo, pois_lo), lo)
    hi = np.where(small_hi, np.maximum(hi, pois_hi), hi)
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def _as_binary(labels: ArrayLike, name: str = "labels") -> NDArray[np.float64]:
    a = np.asarray(labels)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    a = a.astype(float)
    if a.size and not np.all((a == 0.0) | (a == 1.0)):
        raise ValueError(f"{name} must be boolean or 0/1")
    return a


def audit_estimate(
    labels: ArrayLike,
    N: int | None,
    level: float = 0.95,
    strata: ArrayLike | None = None,
    strata_sizes: Mapping[Any, int] | None = None,
) -> Estimate:
    """Share of positives in a human-coded random sample of a population of ``N`` messages.

    Simple random sample: the sample share, with a (modified) Wilson interval computed on the
    FPC effective sample size ``n (N-1)/(N-n)``, so auditing a large part of a small population
    gives a correspondingly narrower interval and a census gives the exact share.

    Stratified sample (``strata`` gives each label's stratum, ``strata_sizes`` each stratum's
    population size ``N_h``): the estimate is ``sum_h W_h p_h`` with ``W_h = N_h / N``. Its
    variance ``sum_h W_h^2 (N_h-n_h)/(N_h-1) p_h(1-p_h)/n_h`` is turned into an effective sample
    size ``p(1-p)/var`` (Korn & Graubard 1998), capped at the FPC-corrected total sample size;
    the cap is also used when the variance is zero (e.g. every stratum all-negative), so the
    interval never collapses. A Wilson interval is then built on that effective size.
    """
    y = _as_binary(labels)
    n = int(y.size)
    if n == 0:
        raise ValueError("audit sample is empty")
    if strata is None:
        if strata_sizes is not None:
            raise ValueError("strata_sizes given without strata")
        p = float(y.mean())
        n_eff = fpc_effective_n(n, N)
        lo, hi = wilson_interval(p, n_eff, level, n_count=n)
        se = 0.0 if np.isinf(n_eff) else float(np.sqrt(p * (1 - p) / n_eff))
        notes = "simple random sample; modified Wilson score interval"
        notes += "; finite-population corrected" if N is not None else "; no FPC (N unknown)"
        if np.isinf(n_eff):
            notes = "census: every message was coded, the share is exact"
        return check_bounds(Estimate(p, float(lo), float(hi), level, "audit", n, N, notes, se),
                            census=N is not None and n == N)
    return _stratified(y, np.asarray(strata), strata_sizes, N, level)


def _stratified(
    y: NDArray[np.float64],
    strata: NDArray[Any],
    strata_sizes: Mapping[Any, int] | None,
    N: int | None,
    level: float,
) -> Estimate:
    if strata_sizes is None:
        raise ValueError("stratified audit needs strata_sizes (population size of each stratum)")
    if strata.shape != y.shape:
        raise ValueError("strata must have one entry per label")
    N_tot = int(sum(strata_sizes.values()))
    if N is not None and N_tot != N:
        raise ValueError(f"N={N} differs from the sum of strata_sizes ({N_tot})")
    keys, inverse = np.unique(strata, return_inverse=True)
    unknown = [k for k in keys.tolist() if k not in strata_sizes]
    if unknown:
        raise ValueError(f"strata without a population size: {unknown}")
    present = set(keys.tolist())
    missing = {k: s for k, s in strata_sizes.items() if s > 0 and k not in present}
    n_h = np.bincount(inverse).astype(float)
    x_h = np.bincount(inverse, weights=y)
    N_h = np.array([float(strata_sizes[k]) for k in keys.tolist()])
    if np.any(n_h > N_h):
        raise ValueError("a stratum has more audited messages than its population size")
    N_a = float(N_h.sum())
    W = N_h / N_a
    p_h = x_h / n_h
    fpc_h = np.where(N_h > 1, (N_h - n_h) / np.maximum(N_h - 1, 1), 0.0)
    var_h = W**2 * fpc_h * p_h * (1 - p_h) / n_h
    # one audited message of a larger stratum says nothing about its variance: take the
    # largest a 0/1 label can have (0.25, so the term is W_h^2/4); a census stratum adds none
    single = (n_h == 1) & (N_h > 1)
    var_h = np.where(single, W**2 * 0.25, var_h)
    var = float(np.sum(var_h))
    p = float(np.sum(W * p_h))
    n = int(y.size)
    cap = fpc_effective_n(n, int(N_a))
    n_eff = cap if var <= 0.0 or p <= 0.0 or p >= 1.0 else min(p * (1 - p) / var, cap)
    lo, hi = wilson_interval(p, n_eff, level, n_count=min(float(n), n_eff))
    notes = (
        f"stratified sample ({keys.size} strata), weights N_h/N; Wilson interval on the "
        f"effective sample size {n_eff:.1f}"
    )
    if single.any():
        notes += (f"; {int(single.sum())} stratum/strata with a single audited message: their "
                  "variance is taken at its maximum")
    est = check_bounds(Estimate(p, float(lo), float(hi), level, "audit", n, N_tot, notes,
                                float(np.sqrt(var))), census=n == N_tot)
    return unreached(est, sum(missing.values()) / N_tot, list(missing)) if missing else est


def unreached(est: Estimate, share: float, strata: list[Any]) -> Estimate:
    """``est`` describes the strata the audit reached; ``share`` of the population lies in
    ``strata`` it did not reach, whose prevalence the data cannot tell. The share of the whole
    is ``(1 - share) * p + share * q`` with ``q`` anywhere in [0, 1], so the interval becomes
    ``[(1 - share) * lower, (1 - share) * upper + share]`` (valid whatever ``q`` is; the point
    assumes ``q = p``)."""
    kept = 1.0 - share
    names = ", ".join(str(s) for s in strata[:5]) + (" …" if len(strata) > 5 else "")
    return replace(est, lower=kept * est.lower, upper=kept * est.upper + share,
                   se=None, unreached=share,
                   notes=est.notes + f"; {share:.1%} of the population is in {len(strata)} "
                   f"strata no audited message reached ({names}): the interval allows any share "
                   "there")
