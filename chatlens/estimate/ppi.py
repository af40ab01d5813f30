"""Prediction-powered inference (PPI++) for a prevalence.

A model scores every message; a random audit sample is also coded by people. The model's
average over the population is precise but possibly biased; the audit measures that bias
(human label minus model score) without bias. Adding the two gives an unbiased estimate whose
interval is narrower than the audit alone whenever the model is informative (Angelopoulos et al.
2023, "Prediction-powered inference"; PPI++: Angelopoulos, Duchi & Zrnic 2023).

Power tuning: the model's contribution is scaled by ``lambda`` in [0, 1]. ``lambda = 1`` is plain
PPI, ``lambda = 0`` is the audit mean alone; the variance-minimising ``lambda`` is estimated from
the data, so a useless model cannot make the interval wider than the audit-only CLT interval
(up to estimation noise in ``lambda``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from chatlens.estimate.audit import _as_binary, audit_estimate, unreached, z_value
from chatlens.estimate.result import Estimate, check_bounds

#: Below this many audited positives (or negatives) the CLT interval of PPI is not trusted on its
#: own: the reported interval is widened to also contain the audit-only Wilson interval.
PPI_MIN_MINORITY = 5


def _as_scores(a: ArrayLike, name: str) -> NDArray[np.float64]:
    s = np.asarray(a, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if s.size and (np.nanmin(s) < 0.0 or np.nanmax(s) > 1.0 or np.isnan(s).any()):
        raise ValueError(f"{name} must be probabilities or 0/1 predictions in [0, 1]")
    return s


def key_order(y: NDArray[np.float64], f: NDArray[np.float64],
              keys: Sequence[str] | None = None,
              strata: NDArray[np.str_] | None = None) -> NDArray[np.int64]:
    """A canonical order of the audit rows, so that no estimate depends on how they were listed.

    With ``keys`` (e.g. the audited messages' uids) the rows are ordered by a hash of the key
    (blake2b, 64 bits; the key itself breaks a tie), otherwise by ``(y, f)`` (rows that tie are
    interchangeable). ``strata``, when given, is the first sort key. Sums, and the cross-fitting
    folds assigned along this order, are then the same for every permutation of the rows.
    """
    st = None if strata is None else [str(x) for x in strata]
    if keys is not None:
        ks = [str(k) for k in keys]
        if len(ks) != y.size:
            raise ValueError("keys must have one entry per audited message")
        h = [hashlib.blake2b(k.encode(), digest_size=8).digest() for k in ks]
        order = sorted(range(y.size), key=lambda i: ("" if st is None else st[i], h[i], ks[i]))
        return np.asarray(order, dtype=np.int64)
    cols: list[NDArray[np.float64] | NDArray[np.str_]] = [f, y]
    if st is not None:
        cols.append(np.asarray(st))
    return np.lexsort(tuple(cols)).astype(np.int64)


def ppi_lambda(y: NDArray[np.float64], f: NDArray[np.float64], f_u: NDArray[np.float64]) -> float:
    """Variance-minimising power-tuning weight, clipped to [0, 1].

    ``lambda* = Cov(Y, f) / ((1 + n/N) Var(f))``, with the covariance from the audit sample and
    the variance of the scores from audit and unlabelled scores pooled (as in ``ppi_py``).
    """
    n, m = y.size, f_u.size
    cov = float(np.mean((y - y.mean()) * (f - f.mean())))
    allf = np.concatenate([f, f_u])
    var = float(np.var(allf, ddof=1)) if allf.size > 1 else 0.0
    if var <= 0.0:
        return 0.0
    return float(np.clip(cov / ((1.0 + n / m) * var), 0.0, 1.0))


def ppi_point_se(
    y: NDArray[np.float64], f: NDArray[np.float64], f_u: NDArray[np.float64], lam: float
) -> tuple[float, float]:
    """PPI point estimate ``lam*mean(f_u) + mean(y - lam*f)`` and its CLT standard error."""
    rect = y - lam * f
    point = lam * float(f_u.mean()) + float(rect.mean())
    var = lam * lam * float(np.var(f_u)) / f_u.size + float(np.var(rect)) / y.size
    return point, float(np.sqrt(var))


def ppi_estimate(
    y_labelled: ArrayLike,
    yhat_labelled: ArrayLike,
    yhat_unlabelled: ArrayLike,
    level: float = 0.95,
    tuned: bool = True,
    small_sample_guard: bool = True,
    keys: Sequence[str] | None = None,
) -> Estimate:
    """Prediction-powered prevalence from audit labels plus model scores on the population.

    ``y_labelled``: human labels (0/1) on the audit sample; ``yhat_labelled``: the model's scores
    (probabilities or 0/1) on those same messages; ``yhat_unlabelled``: the model's scores on the
    population (the whole population or the part not audited; for a population much larger than
    the audit the difference is negligible). The interval is the normal (CLT) interval, clipped
    to [0, 1]. ``tuned=False`` gives plain PPI (``lambda = 1``).

    Small samples: the CLT interval relies on the audit containing enough positives and
    negatives. With fewer than ``PPI_MIN_MINORITY`` of either, the interval is widened to the
    smallest interval containing both the PPI interval and the audit-only Wilson interval
    (which is valid at any size); ``small_sample_guard=False`` turns this off.

    ``keys`` (e.g. the audited messages' uids, aligned with ``y_labelled``): the estimate never
    depends on the order of the rows; with keys, any cross-fitting folds are drawn from their
    hashes, without them from the order of ``(label, score)`` (see :func:`key_order`).
    """
    y = _as_binary(y_labelled, "y_labelled")
    f = _as_scores(yhat_labelled, "yhat_labelled")
    f_u = _as_scores(yhat_unlabelled, "yhat_unlabelled")
    if y.size != f.size:
        raise ValueError("y_labelled and yhat_labelled must have the same length")
    if y.size < 2 or f_u.size < 2:
        raise ValueError("PPI needs at least 2 labelled and 2 unlabelled messages")
    order = key_order(y, f, keys)
    y, f, f_u = y[order], f[order], np.sort(f_u)
    lam = ppi_lambda(y, f, f_u) if tuned else 1.0
    point, se = ppi_point_se(y, f, f_u, lam)
    notes = f"PPI++ (lambda={lam:.3f}); CLT interval" if tuned else "PPI (lambda=1); CLT interval"
    return _finish(y, point, se, level, int(f_u.size), notes, small_sample_guard,
                   lambda: audit_estimate(y, None, level), "audit-only Wilson interval")


def ppi_finite_estimate(
    y_labelled: ArrayLike,
    yhat_labelled: ArrayLike,
    yhat_population: ArrayLike,
    level: float = 0.95,
    tuned: bool = True,
    small_sample_guard: bool = True,
    keys: Sequence[str] | None = None,
) -> Estimate:
    """Prediction-powered share of a finite, fully scored population (what chatlens reports).

    When the model has scored *every* message of the population, the model's mean over the
    population is known exactly; only the audit's correction term is random. This is the
    model-assisted difference estimator of survey sampling (Särndal, Swensson & Wretman 1992)
    and the finite-population form of PPI++:

    ``point = mean(g(f) over population) + mean(y - g(f) over the audit)``, with variance
    ``(1 - n/N) * Var(y - g(f)) / n``. The working model ``g`` comes from the audit
    (:func:`working_model`): a cross-fitted logistic recalibration of the scores, or PPI++'s
    linear ``lambda*f`` when the audit is too small for it. Whatever ``g`` is,
    the audit term removes its bias; a better ``g`` only shrinks the residuals, and a useless one
    (flat ``g``) leaves the audit mean, so the model cannot widen the interval beyond the
    audit's (up to noise in fitting ``g``). ``tuned=False`` uses plain ``g = f``.

    ``yhat_population``: scores of all N messages, audited ones included. The same small-sample
    guard as :func:`ppi_estimate` applies. ``keys``: the audited messages' uids (aligned with
    ``y_labelled``); the recalibration's cross-fitting folds are assigned from their hashes, so
    permuting the audit rows (or the population) gives a bitwise-identical estimate. Without
    keys the folds follow the sorted ``(label, score)`` pairs, equally order-free.
    """
    y = _as_binary(y_labelled, "y_labelled")
    f = _as_scores(yhat_labelled, "yhat_labelled")
    f_all = _as_scores(yhat_population, "yhat_population")
    n, N = y.size, f_all.size
    if y.size != f.size:
        raise ValueError("y_labelled and yhat_labelled must have the same length")
    if n < 2 or n > N:
        raise ValueError("needs at least 2 audited messages, all of them in the population")
    order = key_order(y, f, keys)
    y, f, f_all = y[order], f[order], np.sort(f_all)
    work, work_mean, how = working_model(y, f, f_all, tuned)
    rect = y - work
    point = work_mean + float(rect.mean())
    fpc = max(1.0 - n / N, 0.0)
    se = float(np.sqrt(fpc * float(np.var(rect, ddof=1)) / n))
    notes = (f"PPI++ for a fully scored finite population ({how}, "
             f"finite-population correction {fpc:.3f}); CLT interval")
    se, notes = _disagreement_floor(y, f, N, se, notes)
    return _finish(y, point, se, level, N, notes, small_sample_guard,
                   lambda: audit_estimate(y, N, level), "audit-only Wilson interval", n == N)


def ppi_finite_stratified(
    y_labelled: ArrayLike,
    yhat_labelled: ArrayLike,
    strata_labelled: ArrayLike,
    yhat_population: ArrayLike,
    strata_population: ArrayLike,
    level: float = 0.95,
    keys: Sequence[str] | None = None,
) -> Estimate:
    """:func:`ppi_finite_estimate` for a stratified audit sample.

    ``point = mean(g(f) over population) + sum_h W_h mean_h(y - g(f))`` with ``W_h = N_h/N``
    from the population's strata, variance ``sum_h W_h^2 (1 - n_h/N_h) s_h^2 / n_h``; ``g`` is
    :func:`working_model` fitted on the whole audit. A census stratum (every message audited)
    adds no variance; a stratum with one audited message of several has no variance estimate,
    so its residual variance is taken at the largest it can be (1: residuals lie in [-1, 1]).
    Strata of the population that no audited message reached cannot be corrected: the estimate
    describes the others, and :func:`~chatlens.estimate.audit.unreached` widens the interval to
    allow any share in them. ``keys``: as in :func:`ppi_finite_estimate` (row order never
    matters).
    """
    y = _as_binary(y_labelled, "y_labelled")
    f = _as_scores(yhat_labelled, "yhat_labelled")
    f_all = _as_scores(yhat_population, "yhat_population")
    s_l = np.asarray(strata_labelled).astype(str)
    s_all = np.asarray(strata_population).astype(str)
    if not (y.size == f.size == s_l.size) or f_all.size != s_all.size:
        raise ValueError("labels, scores and strata must have matching lengths")
    if y.size < 2:
        raise ValueError("needs at least 2 audited messages")
    order = key_order(y, f, keys, strata=s_l)
    y, f, s_l = y[order], f[order], s_l[order]
    keys_sorted = [keys[i] for i in order] if keys is not None else None
    pop = np.lexsort((f_all, s_all))
    f_all, s_all = f_all[pop], s_all[pop]
    N = f_all.size
    reached = np.isin(s_all, np.unique(s_l))
    if not reached.all():
        missing, N_m = np.unique(s_all[~reached], return_counts=True)
        inner = ppi_finite_stratified(y, f, s_l, f_all[reached], s_all[reached], level,
                                      keys_sorted)
        return replace(unreached(inner, float(N_m.sum()) / N, missing.tolist()),
                       N_population=N)
    names, N_h = np.unique(s_all, return_counts=True)
    work, work_mean, how = working_model(y, f, f_all, True)
    rect = y - work
    correction, var = 0.0, 0.0
    single = 0
    for key, size in zip(names.tolist(), N_h.tolist(), strict=True):
        r = rect[s_l == key]
        w = size / N
        correction += w * float(r.mean())
        if r.size >= size:
            continue  # census: exact
        if r.size == 1:
            single += 1
            var += w * w  # (1 - 1/N_h) * S_max^2 * N_h/(N_h - 1) with S_max^2 = 1
            continue
        var += w * w * (1.0 - r.size / size) * float(np.var(r, ddof=1)) / r.size
    point = work_mean + correction
    notes = (f"PPI++ for a fully scored finite population, stratified audit over {names.size} "
             f"strata ({how}); CLT interval")
    if single:
        notes += (f"; {single} stratum/strata with a single audited message: their variance is "
                  "taken at its maximum")
    se, notes = _disagreement_floor(y, f, N, float(np.sqrt(var)), notes)
    sizes = dict(zip(names.tolist(), N_h.tolist(), strict=True))
    return _finish(y, point, se, level, N, notes, True,
                   lambda: audit_estimate(y, N, level, strata=s_l, strata_sizes=sizes),
                   "stratified audit interval", y.size == N)


#: The audit needs this many of each class before the logistic recalibration is fitted; below
#: it the working model is PPI++'s linear ``lambda*f``. With about 15 audited positives and a
#: weak model the recalibrated interval covered 0.92 (3,000 simulations); from 20 on, >= 0.935.
RECALIBRATE_MIN_CLASS = 20
#: Folds of the audit for cross-fitting the recalibration.
RECALIBRATE_FOLDS = 5


def working_model(y: NDArray[np.float64], f: NDArray[np.float64], f_all: NDArray[np.float64],
                  tuned: bool = True) -> tuple[NDArray[np.float64], float, str]:
    """:func:`working_model_values` with the population's values reduced to their mean."""
    g, g_all, how = working_model_values(y, f, f_all, tuned)
    return g, float(g_all.mean()), how


def working_model_values(y: NDArray[np.float64], f: NDArray[np.float64],
                         f_all: NDArray[np.float64], tuned: bool = True,
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """The working model ``g`` of the difference estimator: its values on the audit and its mean
    over the population.

    Scores rarely stay calibrated on a new population: a classifier trained where 10% of
    messages were positive over-predicts where 2% are. Under such a prior shift the true
    ``P(y | f)`` is still logistic in ``logit(f)``, with a moved intercept, so ``g`` is a
    logistic regression of the audit labels on ``logit(f)`` (two parameters; Wu & Sitter 2001,
    model-calibration). That recovers the correlation a linear ``lambda*f`` loses to
    miscalibration.

    The recalibration is *cross-fitted*: the audit is split into ``RECALIBRATE_FOLDS`` folds
    and each audited message gets ``g`` from the fit on the other folds, so its residual
    ``y - g(f)`` is out of sample and the variance of the residuals is honest even for small
    audits (an in-sample fit makes them too small). On the population ``g`` is the average of
    the fold fits, weighted by fold size, so the estimate is the size-weighted average of the
    folds' unbiased difference estimates. With fewer than ``RECALIBRATE_MIN_CLASS`` audited
    positives or negatives, or when a fold's scores separate its labels, ``g`` is PPI++'s
    ``lambda*f`` with ``lambda = Cov(y, f) / Var(f)`` clipped to [0, 1]. Returns
    ``(g on the audit, g on the population, description)``.
    """
    if not tuned:
        return f, f_all, "lambda=1"
    x = int(y.sum())
    if min(x, y.size - x) >= RECALIBRATE_MIN_CLASS:
        fitted = _cross_fitted_logistic(y, f, f_all)
        if fitted is not None:
            return fitted
    lam = _regression_lambda(y, f)
    return lam * f, lam * f_all, f"lambda={lam:.3f}"


def _cross_fitted_logistic(y: NDArray[np.float64], f: NDArray[np.float64],
                           f_all: NDArray[np.float64],
                           ) -> tuple[NDArray[np.float64], NDArray[np.float64], str] | None:
    z, z_all = _logit(f), _logit(f_all)
    # folds stratified by label, dealt round-robin along the rows' canonical order (the callers
    # sort them with key_order), so permuting the audit rows cannot change the estimate
    fold = np.empty(y.size, dtype=np.int64)
    for label in (0.0, 1.0):
        members = np.flatnonzero(y == label)
        fold[members] = np.arange(members.size) % RECALIBRATE_FOLDS
    g = np.empty(y.size)
    g_all = np.zeros(f_all.size)
    slopes = []
    for k in range(RECALIBRATE_FOLDS):
        held = fold == k
        coef = _logistic_fit(z[~held], y[~held])
        if coef is None:
            return None
        a, b = coef
        g[held] = expit(a + b * z[held])
        g_all += expit(a + b * z_all) * (held.sum() / y.size)  # weighted by fold size
        slopes.append(b)
    return g, g_all, (f"logistic recalibration, cross-fitted over {RECALIBRATE_FOLDS} folds "
                      f"(mean slope {np.mean(slopes):.3f})")


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    q = np.clip(p, 1e-6, 1.0 - 1e-6)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=float)


def _logistic_fit(z: NDArray[np.float64], y: NDArray[np.float64],
                  iters: int = 50) -> tuple[float, float] | None:
    """Intercept and slope of ``P(y) = sigmoid(a + b*z)`` by Newton's method (``None`` when
    the fit does not converge, e.g. when the scores separate the audit perfectly)."""
    X = np.column_stack([np.ones_like(z), z])
    beta = np.zeros(2)
    for _ in range(iters):
        p = expit(X @ beta)
        w = p * (1.0 - p)
        hess = X.T @ (X * w[:, None])
        try:
            step = np.linalg.solve(hess, X.T @ (y - p))
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if not np.all(np.isfinite(beta)) or abs(beta[1]) > 50:
            return None
        if np.max(np.abs(step)) < 1e-8:
            return float(beta[0]), float(beta[1])
    return None


def _regression_lambda(y: NDArray[np.float64], f: NDArray[np.float64]) -> float:
    """``Cov(y, f) / Var(f)`` on the audit, clipped to [0, 1] (0 when the scores are constant)."""
    var_f = float(np.var(f, ddof=1)) if f.size > 1 else 0.0
    if var_f <= 0:
        return 0.0
    return float(np.clip(float(np.cov(y, f, ddof=1)[0, 1]) / var_f, 0.0, 1.0))


def _disagreement_floor(y: NDArray[np.float64], f: NDArray[np.float64], N: int, se: float,
                        notes: str) -> tuple[float, str]:
    """When the model and the coders (almost) never disagree in the audit, the residual
    variance is estimated as (near) zero and the CLT interval collapses. The disagreement rate
    is then bounded like a rare proportion: Agresti-Coull's ``(d + 2) / (n + 4)`` gives a
    floor for the standard error."""
    n = y.size
    d = int(np.sum(y != (f >= 0.5)))
    if d >= PPI_MIN_MINORITY:
        return se, notes
    p0 = (d + 2.0) / (n + 4.0)
    floor = float(np.sqrt(max(1.0 - n / N, 0.0) * p0 * (1.0 - p0) / n))
    if floor <= se:
        return se, notes
    return floor, notes + (f"; model and coders disagree on only {d} audited messages, so the "
                           "standard error is floored at that of a rare disagreement rate")


def _finish(y: NDArray[np.float64], point: float, se: float, level: float, N_population: int,
            notes: str, guard: bool, audit_only: Callable[[], Estimate],
            audit_name: str, census: bool = False) -> Estimate:
    """The CLT interval, the small-sample guard (widen to contain ``audit_only()`` when the audit
    has fewer than ``PPI_MIN_MINORITY`` of the rarer class), clipping to [0, 1]; a point outside
    0-1, or a zero-width interval without a ``census``, is flagged (:func:`check_bounds`)."""
    z = z_value(level)
    lo, hi = point - z * se, point + z * se
    x = int(y.sum())
    minority = min(x, y.size - x)
    if guard and minority < PPI_MIN_MINORITY:
        w = audit_only()
        lo, hi = min(lo, w.lower), max(hi, w.upper)
        se = max(se, (hi - lo) / (2 * z))  # comparisons use se: keep it honest
        notes += (f"; audit has only {minority} of the rarer class, so the interval is widened "
                  f"to include the {audit_name}")
    if lo < 0.0 or hi > 1.0:
        notes += "; interval clipped to [0, 1]"
    if census:  # every message audited: the share is exact (the working model cancels out)
        point, lo, hi = float(y.mean()), float(y.mean()), float(y.mean())
        notes = "census: every message was coded, the share is exact"
    est = Estimate(float(np.clip(point, 0.0, 1.0)), float(max(lo, 0.0)), float(min(hi, 1.0)),
                   level, "ppi", int(y.size), N_population, notes, se)
    return check_bounds(est, census=census, raw_point=point)
