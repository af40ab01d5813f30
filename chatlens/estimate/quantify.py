"""Quantification: prevalence in a target population from labels collected elsewhere.

When the human labels come from a different corpus or period, their share says nothing about the
target. What carries over is how the model behaves *within* each class; if a positive message
gets the same distribution of scores in both places ("prior shift" only), the model's error rates
measured on the labelled data can undo its bias on the target:

- ACC (adjusted classify-and-count): ``p = (cc - fpr) / (tpr - fpr)`` where ``cc`` is the share
  the model flags in the target and ``tpr``/``fpr`` its hit and false-alarm rates on the labels.
- PACC (probabilistic ACC): the same with average scores instead of 0/1 decisions.
- EMQ (Saerens, Latinne & Decaestecker 2002): scores are first calibrated on the labelled data
  (Platt scaling), then the class prior is re-estimated by expectation-maximisation so that the
  re-weighted posteriors on the target average to the prior itself.

Intervals come from a bootstrap that resamples both the labelled set and the target set, so they
include the uncertainty of the error rates: the percentile interval joined with the normal
interval of the bootstrap standard error (the percentile one alone fell short at low prevalence).
If the prior-shift assumption fails (e.g. the target talks about positives in a different way),
none of these intervals is valid.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit as _sigmoid

from chatlens.estimate.audit import _as_binary, z_value
from chatlens.estimate.ppi import _as_scores, _logit
from chatlens.estimate.result import Estimate, check_bounds

QuantMethod = Literal["acc", "pacc", "emq"]
_EPS = 1e-6
#: Largest number of resampled values held in memory at once by the bootstrap.
_CHUNK_CELLS = 4_000_000


def _adjust(
    cc: NDArray[np.float64], tpr: NDArray[np.float64], fpr: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The adjusted share, *not* clipped to [0, 1]: a value outside tells that the model's error
    rates do not fit the target (the caller clips and flags it)."""
    gap = tpr - fpr
    safe = np.where(np.abs(gap) > _EPS, gap, np.nan)
    out = (cc - fpr) / safe
    # No discriminating power: the adjustment is undefined; fall back to the raw share.
    return np.asarray(np.where(np.isnan(out), cc, out))


def _rates(
    y: NDArray[np.float64], v: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Row-wise mean of ``v`` among positives and among negatives (2-D arrays, one row each)."""
    pos = y.sum(axis=1)
    neg = y.shape[1] - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = (v * y).sum(axis=1) / pos
        fpr = (v * (1.0 - y)).sum(axis=1) / neg
    return np.nan_to_num(tpr, nan=1.0), np.nan_to_num(fpr, nan=0.0)


def _platt(
    y: NDArray[np.float64], t: NDArray[np.float64], iters: int = 50
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Row-wise logistic regression of ``y`` on ``t`` (Newton, lightly ridge-regularised).

    ``t`` is standardised per row for the fit (and the coefficients mapped back): Newton's
    method started at ``a = 1`` on raw log-odds of 0/1 rule scores (about +-14) has vanishing
    weights and diverged, which put EMQ at 0 for such scores.
    """
    mu = t.mean(axis=1, keepdims=True)
    sd = t.std(axis=1, keepdims=True)
    sd = np.where(sd > 0, sd, 1.0)
    u = (t - mu) / sd
    a = np.zeros(y.shape[0])
    b = np.zeros(y.shape[0])
    for _ in range(iters):
        p = _sigmoid(a[:, None] * u + b[:, None])
        w = p * (1.0 - p) + 1e-9
        r = y - p
        ga, gb = (r * u).sum(1) - 1e-4 * a, r.sum(1)
        haa, hab, hbb = (w * u * u).sum(1) + 1e-4, (w * u).sum(1), w.sum(1)
        det = haa * hbb - hab * hab
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a, b = a + da, b + db
        if np.max(np.abs(da)) + np.max(np.abs(db)) < 1e-10:
            break
    s0 = sd[:, 0]
    return a / s0, b - a * mu[:, 0] / s0


def _emq(
    y: NDArray[np.float64],
    t: NDArray[np.float64],
    t_target: NDArray[np.float64],
    iters: int = 40,
) -> NDArray[np.float64]:
    """SLD prior adjustment, row-wise.

    EM's fixed point is the maximum-likelihood target prior: the ``pi`` maximising
    ``sum_i log(pi * q_i / pi_train + (1 - pi) * (1 - q_i) / (1 - pi_train))``, a concave
    function of ``pi``. We find it by bisection on its derivative, which reaches the same answer
    as EM iterations but in a fixed, small number of steps.
    """
    a, b = _platt(y, t)
    q = _sigmoid(a[:, None] * t_target + b[:, None])
    prior_tr = np.clip(y.mean(axis=1), _EPS, 1.0 - _EPS)[:, None]
    A = q / prior_tr
    D = A - (1.0 - q) / (1.0 - prior_tr)
    Bv = A - D

    def score(pi: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray((D / (Bv + pi[:, None] * D)).sum(axis=1))

    lo = np.zeros(y.shape[0])
    hi = np.ones(y.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        at0 = score(lo + 1e-12)
        at1 = score(hi - 1e-12)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            up = score(mid) > 0.0
            lo = np.where(up, mid, lo)
            hi = np.where(up, hi, mid)
    pi = 0.5 * (lo + hi)
    pi = np.where(at0 <= 0.0, 0.0, pi)
    return np.asarray(np.where(at1 >= 0.0, 1.0, pi))


def _estimate_rows(
    method: QuantMethod,
    y: NDArray[np.float64],
    s: NDArray[np.float64],
    s_t: NDArray[np.float64],
    threshold: float,
) -> NDArray[np.float64]:
    if method == "acc":
        c, c_t = (s >= threshold).astype(float), (s_t >= threshold).astype(float)
        tpr, fpr = _rates(y, c)
        return _adjust(c_t.mean(axis=1), tpr, fpr)
    if method == "pacc":
        tpr, fpr = _rates(y, s)
        return _adjust(s_t.mean(axis=1), tpr, fpr)
    if method == "emq":
        return _emq(y, _logit(s), _logit(s_t))
    raise ValueError(f"unknown quantification method {method!r} (use acc, pacc or emq)")


def quantify_estimate(
    train_labels: ArrayLike,
    train_scores: ArrayLike,
    target_scores: ArrayLike,
    method: QuantMethod = "acc",
    level: float = 0.95,
    n_boot: int = 500,
    rng: np.random.Generator | int | None = None,
    threshold: float = 0.5,
) -> Estimate:
    """Prevalence in the target from labelled data elsewhere (ACC, PACC or EMQ).

    ``train_labels``/``train_scores``: human labels and model scores on the labelled set (from a
    different corpus or period); ``target_scores``: model scores on the target population.
    ``threshold`` turns scores into decisions for ACC. The interval comes from ``n_boot``
    bootstrap replicates, each resampling the labelled set and the target set with replacement:
    the union of their percentile interval and ``point ± z·SE`` with their standard error,
    clipped to [0, 1]. ``rng`` seeds the bootstrap (pass one for reproducible intervals).

    Bounds: an adjusted value outside 0-1 (ACC/PACC) or an EMQ maximum on 0 or 1 is clipped and
    the estimate is flagged (``at_bound``, ``warning`` with the raw value and whether its
    bootstrap interval reaches back into 0-1); a degenerate bootstrap (zero-width interval) is
    shown as 0-1 and flagged, since only a census may have a zero-width interval
    (:func:`~chatlens.estimate.result.check_bounds`).
    """
    y = _as_binary(train_labels, "train_labels")
    s = _as_scores(train_scores, "train_scores")
    s_t = _as_scores(target_scores, "target_scores")
    if y.size != s.size:
        raise ValueError("train_labels and train_scores must have the same length")
    if y.size < 2 or s_t.size < 1:
        raise ValueError("quantification needs labelled data and target scores")
    if y.min() == y.max():
        raise ValueError("the labelled set must contain both classes")
    if n_boot < 50:
        raise ValueError("n_boot should be at least 50 for a percentile interval")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    raw = float(_estimate_rows(method, y[None, :], s[None, :], s_t[None, :], threshold)[0])
    point = min(max(raw, 0.0), 1.0)
    n, m = y.size, s_t.size
    chunk = max(1, _CHUNK_CELLS // (n + m))
    boots: list[NDArray[np.float64]] = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        i = gen.integers(0, n, size=(b, n))
        j = gen.integers(0, m, size=(b, m))
        boots.append(_estimate_rows(method, y[i], s[i], s_t[j], threshold))
    raw_reps = np.concatenate(boots)
    # the interval uses clipped replicates: near-zero tpr - fpr gaps make unclipped ones explode
    reps = np.clip(raw_reps, 0.0, 1.0)
    alpha = 1.0 - level
    se = float(np.std(reps, ddof=1))
    # the percentile interval alone fell short for these ratio estimators at low prevalence
    # (0.914-0.928 in 9 of 36 settings of bench/estimate_sim.py); joined with the normal
    # interval of the bootstrap SE, every setting is within 0.004 of 0.93, about 7% wider
    lo, hi = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    raw_lo, raw_hi = np.quantile(raw_reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    z = z_value(level)
    lo, hi = max(min(lo, point - z * se), 0.0), min(max(hi, point + z * se), 1.0)
    notes = (
        f"{method.upper()} quantification from {n} labels elsewhere; bootstrap interval "
        f"({n_boot} replicates, labelled and target resampled: the percentile interval joined "
        "with the normal one of the bootstrap standard error); assumes the model's "
        "score distribution within each class is the same in the labelled data and the target"
    )
    est = Estimate(
        point,
        float(min(lo, point)),
        float(max(hi, point)),
        level,
        "quantify",
        n,
        m,
        notes,
        se,
    )
    if method == "emq" and point in (0.0, 1.0):
        # EMQ's likelihood is maximised on the boundary: the same signal as a clipped ACC
        raw = -1e-9 if point == 0.0 else 1.0 + 1e-9
    est = check_bounds(est, raw_point=raw)
    if est.at_bound and (raw_hi < 0.0 or raw_lo > 1.0):
        est = replace(est, warning=est.warning + (
            f"; even the bootstrap interval of the raw value ({raw_lo:.3f} to {raw_hi:.3f}) "
            "lies outside 0-1: the model's error rates measured on the reference labels do not "
            "fit this target, so the prior-shift assumption behind quantification is in doubt"))
    elif est.at_bound:
        est = replace(est, warning=est.warning + (
            f"; the raw value's bootstrap interval ({raw_lo:.3f} to {raw_hi:.3f}) reaches "
            "into 0-1, so this is consistent with a share at that edge"))
    return est
