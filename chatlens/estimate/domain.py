"""Estimates for a domain that cuts across the strata of a stratified audit (e.g. one month of a
chat-stratified audit).

Splitting the audit by domain first and treating each stratum's few domain messages as a sample
of their own throws information away: a chat with 30 audited messages may have one in a given
month, and one message says nothing about its variance. Survey practice (Cochran 1977, §5A.14;
Lohr 2019, §4.3) instead keeps every stratum's whole sample: the audit-only share is the ratio
estimator ``sum_h N_h mean_h(y * [in domain]) / sum_h N_h mean_h([in domain])`` with the
linearised stratified variance.

The prediction-powered form is the difference estimator on the domain: the model's values are
summed over the domain's messages (known exactly) and the audit corrects them with
``z = (y - g(f)) * [in domain]``. A stratum with a single audited message gets the largest
variance its ``z`` can have given the population (its mean square); strata no audited message
reached are bounded as in :func:`chatlens.estimate.audit.unreached`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from chatlens.estimate.audit import (
    _as_binary,
    fpc_effective_n,
    unreached,
    wilson_interval,
    z_value,
)
from chatlens.estimate.ppi import PPI_MIN_MINORITY, _as_scores, key_order, working_model_values
from chatlens.estimate.result import Estimate


def _stratified_total(z: NDArray[np.float64], s_l: NDArray[np.str_], keys: list[str],
                      N_h: dict[str, int], second_moment: dict[str, float],
                      ) -> tuple[float, float, int]:
    """Estimated total of ``z`` over the reached strata, its variance, and the number of
    strata whose variance was bounded (one audited message).

    A stratum with one audited message has no variance estimate; the population variance of
    ``z`` there is at most its mean square, which is known from the population alone
    (``second_moment[h]``: the mean over the stratum of the largest ``z**2`` each message could
    have), so that bound is used."""
    total, var, bounded = 0.0, 0.0, 0
    for h in keys:
        zh = z[s_l == h]
        n, N = zh.size, N_h[h]
        total += N * float(zh.mean())
        if n >= N or second_moment[h] == 0.0:
            continue  # a census, or z is 0 on the whole stratum (no domain message in it)
        if n == 1:
            # (1 - 1/N) S^2 with S^2 <= N/(N-1) E[z^2]
            var += N * N * second_moment[h]
            bounded += 1
            continue
        var += N * N * (1.0 - n / N) * float(np.var(zh, ddof=1)) / n
    return total, var, bounded


def _mean_by(values: NDArray[np.float64], strata: NDArray[np.str_]) -> dict[str, float]:
    keys, inverse = np.unique(strata, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse)
    return {str(k): float(s / c) for k, s, c in zip(keys, sums, counts, strict=True)}


def domain_stratified(
    y_labelled: ArrayLike,
    strata_labelled: ArrayLike,
    domain_labelled: ArrayLike,
    strata_population: ArrayLike,
    domain_population: ArrayLike,
    level: float = 0.95,
    yhat_labelled: ArrayLike | None = None,
    yhat_population: ArrayLike | None = None,
    keys: Sequence[str] | None = None,
    working: Callable[..., tuple[NDArray[np.float64], NDArray[np.float64], str]]
    = working_model_values,
) -> Estimate:
    """The share of positives in one domain under a stratified audit: audit-only, or
    prediction-powered when the model's scores are given (on the audit and on the population).

    ``strata_*`` give each message's stratum and ``domain_*`` whether it is in the domain; the
    ``*_population`` arrays cover the whole population the sample was drawn from. ``keys``
    (the audited uids) put the audit in a canonical order, so nothing depends on how its rows
    were listed (:func:`chatlens.estimate.ppi.key_order`). ``working`` fits the working model
    (:func:`~chatlens.estimate.ppi.working_model_values`); it depends on the whole audit, not on
    the domain, so a caller estimating many domains passes a memoised one.
    """
    y = _as_binary(y_labelled, "y_labelled")
    s_l = np.asarray(strata_labelled).astype(str)
    d_l = np.asarray(domain_labelled, dtype=bool)
    s_all = np.asarray(strata_population).astype(str)
    d_all = np.asarray(domain_population, dtype=bool)
    f_l = None if yhat_labelled is None else _as_scores(yhat_labelled, "yhat_labelled")
    order = key_order(y, f_l if f_l is not None else y, keys, strata=s_l)
    y, s_l, d_l = y[order], s_l[order], d_l[order]
    f_l = f_l[order] if f_l is not None else None
    N_d = int(d_all.sum())
    if N_d == 0:
        raise ValueError("the domain holds no message of the population")
    keys_all, sizes = np.unique(s_all, return_counts=True)
    N_h = dict(zip(keys_all.tolist(), sizes.tolist(), strict=True))
    reached = sorted(set(s_l.tolist()))
    in_dom = dict(zip(*np.unique(s_all[d_all], return_counts=True), strict=True))
    in_domain_h = {str(k): int(v) for k, v in in_dom.items()}
    unreached_d = {h: n for h, n in in_domain_h.items() if h not in reached}
    keep = ~np.isin(s_all, list(unreached_d)) if unreached_d else np.ones(s_all.size, bool)
    N_dr = N_d - sum(unreached_d.values())  # domain messages in reached strata
    n_d = int(d_l.sum())
    if f_l is not None and yhat_population is not None:
        f = f_l
        f_all = _as_scores(yhat_population, "yhat_population")
        g, g_all, how = working(y, f, f_all)
        z = (y - g) * d_l
        # a domain message's z is -g or 1 - g, any other message's 0
        sq = np.maximum(g_all, 1.0 - g_all) ** 2 * d_all
        total, var, bounded = _stratified_total(z, s_l, reached, N_h, _mean_by(sq, s_all))
        point = (float(g_all[d_all & keep].sum()) + total) / N_dr
        se = float(np.sqrt(var)) / N_dr
        notes = (f"PPI++ for a domain of a stratified audit ({how}; {n_d} audited messages in "
                 f"the domain, all {y.size} used); CLT interval")
        zq = z_value(level)
        lo, hi = point - zq * se, point + zq * se
        yd = y[d_l]
        minority = int(min(yd.sum(), yd.size - yd.sum())) if yd.size else 0
        if minority < PPI_MIN_MINORITY:  # as ppi's small-sample guard: include audit-only
            w = domain_stratified(y, s_l, d_l, s_all, d_all, level)
            lo, hi = min(lo, w.lower), max(hi, w.upper)
            notes += (f"; the domain's audit has only {minority} of the rarer class, so the "
                      "interval is widened to include the audit-only interval")
        method = "ppi"
    else:
        # the ratio estimator of a domain mean (Lohr 2019, 4.3): the share among the domain's
        # sampled messages, weighted by stratum, with the linearised variance of
        # e = (y - p) * [in domain]; it does not pay for the luck of how many audited
        # messages fell into the domain, as the plain total over N_d does
        u = d_l.astype(float)
        t_z = sum(N_h[h] * float((y * u)[s_l == h].mean()) for h in reached)
        t_u = sum(N_h[h] * float(u[s_l == h].mean()) for h in reached)
        point = t_z / t_u if t_u > 0 else 0.0
        # e is -p, 1 - p or 0: its mean square is at most the stratum's domain share, and its
        # variance at most 1/4 (a range of 1)
        share = _mean_by(d_all.astype(float), s_all)
        _, var, bounded = _stratified_total((y - point) * u, s_l, reached, N_h,
                                            {h: min(v, 0.25) for h, v in share.items()})
        var_p = var / (N_dr * N_dr)
        cap = fpc_effective_n(max(n_d, 1), N_dr)
        n_eff = cap if var_p <= 0.0 or point <= 0.0 or point >= 1.0 else min(
            point * (1 - point) / var_p, cap)
        p_c = float(np.clip(point, 0.0, 1.0))
        w_lo, w_hi = wilson_interval(p_c, n_eff, level, n_count=min(float(max(n_d, 1)), n_eff))
        lo, hi = float(w_lo), float(w_hi)
        se = float(np.sqrt(var_p))
        notes = (f"domain of a stratified audit ({n_d} audited messages in the domain, all "
                 f"{y.size} used); Wilson interval on the effective sample size {n_eff:.1f}")
        method = "audit"
    if bounded:
        notes += (f"; {bounded} stratum/strata with a single audited message: their variance is "
                  "bounded by what the population allows")
    est = Estimate(float(np.clip(point, 0.0, 1.0)), float(max(lo, 0.0)), float(min(hi, 1.0)),
                   level, method, n_d, N_d, notes, se)  # type: ignore[arg-type]
    if unreached_d:
        return unreached(est, sum(unreached_d.values()) / N_d, sorted(unreached_d))
    return est
