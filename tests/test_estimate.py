"""Tests for chatlens.estimate: hand-checked values plus planted-truth coverage simulations.

Coverage tolerance (Monte-Carlo error): with R replications a true coverage c is observed with
standard error sqrt(c(1-c)/R) (about 0.015 at R=200, c=0.95). Checking every one of ~48 settings
against a hard 0.93 would fail by chance alone, so each setting is checked with a one-sided exact
binomial test — it fails only if the data show coverage below 0.93 at p < 0.001 (observed hits
below the 0.1% quantile of Binomial(R, 0.93)) — and the target itself, 0.93, is checked on the
coverage pooled over all settings (R ~ 9600, standard error ~0.0026).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from chatlens.estimate import (
    MIN_LABELLED_N,
    Estimate,
    audit_difference,
    audit_estimate,
    auto_method,
    difference,
    naive_estimate,
    per_value,
    ppi_estimate,
    quantify_estimate,
    small_group,
    wilson_interval,
)
from chatlens.estimate.quantify import _emq, _logit, _platt, _sigmoid
from chatlens.estimate.simulate import CLASSIFIERS, Classifier, audit_indices, population

TARGET = 0.93
PREVALENCES = (0.02, 0.1, 0.3, 0.5)
AUDIT_SIZES = (50, 200, 1000)
N_POP = 10_000
R = 200


def consistent_with_target(hits: int, reps: int) -> bool:
    """False only if coverage is significantly (p < 0.001) below TARGET."""
    return bool(binom.cdf(hits, reps, TARGET) >= 0.001)


# ---------------------------------------------------------------- hand-checked unit tests


def test_wilson_matches_formula() -> None:
    # 15 of 148 (Newcombe 1998, example of single proportion): Wilson 0.0624 to 0.1605.
    lo, hi = wilson_interval(15 / 148, 148, 0.95, modified=False)
    assert float(lo) == pytest.approx(0.0624, abs=5e-5)
    assert float(hi) == pytest.approx(0.1605, abs=5e-5)
    # 81 of 263: Wilson 0.2553 to 0.3662 (Newcombe 1998, Table I, example).
    lo, hi = wilson_interval(81 / 263, 263, 0.95, modified=False)
    assert float(lo) == pytest.approx(0.2553, abs=5e-5)
    assert float(hi) == pytest.approx(0.3662, abs=5e-5)


def test_zero_and_all_positive_never_degenerate() -> None:
    e0 = audit_estimate(np.zeros(40), N=1000)
    assert e0.point == 0.0 and e0.lower == 0.0 and e0.upper > 0.05
    e1 = audit_estimate(np.ones(40, dtype=bool), N=None)
    assert e1.point == 1.0 and e1.upper == 1.0 and e1.lower < 0.95
    census = audit_estimate(np.r_[np.ones(3), np.zeros(7)], N=10)
    assert census.lower == census.upper == 0.3


def test_fpc_shrinks_width() -> None:
    y = np.r_[np.ones(60), np.zeros(140)]
    inf = audit_estimate(y, None)
    big = audit_estimate(y, 1_000_000)
    small = audit_estimate(y, 400)
    assert small.width < big.width <= inf.width
    assert big.width == pytest.approx(inf.width, rel=1e-3)


def test_stratified_equal_rates_equals_pooled() -> None:
    y = np.r_[np.ones(20), np.zeros(80), np.ones(60), np.zeros(240)]
    strata = np.array(["a"] * 100 + ["b"] * 300)
    sizes = {"a": 10**9, "b": 3 * 10**9}  # proportional allocation, FPC negligible
    st = audit_estimate(y, None, strata=strata, strata_sizes=sizes)
    pooled = audit_estimate(y, None)
    assert st.point == pytest.approx(pooled.point)
    assert st.lower == pytest.approx(pooled.lower, abs=1e-6)
    assert st.upper == pytest.approx(pooled.upper, abs=1e-6)


def test_stratified_reweights_and_zero_variance() -> None:
    y = np.r_[np.ones(50), np.zeros(50)]
    strata = np.array([0] * 50 + [1] * 50)
    e = audit_estimate(y, None, strata=strata, strata_sizes={0: 100, 1: 900})
    assert e.point == pytest.approx(0.1)
    assert e.lower < 0.1 < e.upper  # zero within-stratum variance still gives an interval
    with pytest.raises(ValueError):
        audit_estimate(y, None, strata=strata, strata_sizes={0: 100})


def test_newcombe_difference_published_examples() -> None:
    # Newcombe (1998) Stat Med 17:873, method 10: 56/70 - 48/80 -> 0.0524 to 0.3339
    d = audit_difference(np.r_[np.ones(56), np.zeros(14)], np.r_[np.ones(48), np.zeros(32)])
    assert (d.lower, d.upper) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    assert d.method == "newcombe"
    # 5/56 - 0/29 -> -0.0381 to 0.1926
    d = audit_difference(np.r_[np.ones(5), np.zeros(51)], np.zeros(29))
    assert (d.lower, d.upper) == pytest.approx((-0.0381, 0.1926), abs=5e-5)
    # 9/10 - 3/10 -> 0.1705 to 0.8090 with textbook Wilson limits. Our default (modified Wilson)
    # widens limits for counts <= 3, so this example is checked on unmodified Wilson intervals.
    la, ua = wilson_interval(0.9, 10, modified=False)
    lb, ub = wilson_interval(0.3, 10, modified=False)
    a = Estimate(0.9, float(la), float(ua), 0.95, "audit", 10, None)
    b = Estimate(0.3, float(lb), float(ub), 0.95, "audit", 10, None)
    d = difference(a, b)
    assert (d.lower, d.upper) == pytest.approx((0.1705, 0.8090), abs=5e-5)


def test_ppi_difference_adds_variances() -> None:
    a = Estimate(0.3, 0.25, 0.35, 0.95, "ppi", 200, 1000, se=0.02)
    b = Estimate(0.2, 0.16, 0.24, 0.95, "ppi", 200, 1000, se=0.015)
    d = difference(a, b)
    assert d.point == pytest.approx(0.1)
    assert d.se == pytest.approx(0.025)
    assert d.upper - d.point == pytest.approx(1.959964 * 0.025, rel=1e-5)


@pytest.mark.parametrize(("ties_a", "ties_b"), [(12, 0), (0, 12), (10, 14)])
def test_difference_under_ties_covers_every_pair_of_settlements(ties_a: int, ties_b: int,
                                                                ) -> None:
    """Two periods with coder ties counted both ways (``--ties bounds``): each is the union of
    its two settlements' intervals with a point range; the difference's interval holds every
    pair of settlements' Newcombe intervals, and its point range their points."""
    def settlements(pos: int, n: int, ties: int) -> list[Estimate]:
        return [audit_estimate(np.r_[np.ones(pos + k), np.zeros(n - pos - k)], 2000)
                for k in (0, ties)]

    def bounded(ests: list[Estimate]) -> Estimate:
        lo, hi = sorted(e.point for e in ests)
        return Estimate((lo + hi) / 2, min(e.lower for e in ests), max(e.upper for e in ests),
                        0.95, "audit", ests[0].n_labelled, 2000,
                        point_range=(lo, hi) if hi > lo else None)

    sa, sb = settlements(30, 120, ties_a), settlements(18, 120, ties_b)
    d = difference(bounded(sa), bounded(sb))
    pairs = [difference(x, y) for x in sa for y in sb]
    assert d.lower <= min(p.lower for p in pairs) + 1e-12
    assert d.upper >= max(p.upper for p in pairs) - 1e-12
    assert d.point_range == pytest.approx((min(p.point for p in pairs),
                                           max(p.point for p in pairs)))


def test_small_group_rule_and_auto_method() -> None:
    assert small_group(MIN_LABELLED_N - 1)
    assert not small_group(MIN_LABELLED_N, 0.2)
    assert small_group(500, 0.6)
    assert audit_estimate(np.r_[np.ones(5), np.zeros(5)], None).too_small
    m, why = auto_method(True, True)
    assert m == "ppi" and why.endswith(".")
    assert auto_method(False, True)[0] == "quantify"
    assert auto_method(False, False)[0] == "naive"


def test_per_value_multiclass() -> None:
    rng = np.random.default_rng(3)
    cats = np.array(["a", "b", "c"])
    y = rng.choice(cats, 300, p=[0.5, 0.3, 0.2])
    probs_l = np.full((300, 3), 0.1) + 0.7 * (y[:, None] == cats)
    pop = rng.choice(cats, 5000, p=[0.5, 0.3, 0.2])
    probs_u = np.full((5000, 3), 0.1) + 0.7 * (pop[:, None] == cats)
    out = per_value(ppi_estimate, list(cats), y, probs_l, probs_u)
    assert set(out) == {"a", "b", "c"}
    assert out["b"].point == pytest.approx(0.3, abs=0.05)
    aud = per_value(audit_estimate, ["a", "b"], y, N=20_000)
    assert aud["a"].point == pytest.approx(np.mean(y == "a"))


def test_emq_recovers_shifted_prior_on_separable_data() -> None:
    rng = np.random.default_rng(5)
    clf = Classifier("separable", 6.0, score_prior=0.5)
    ytr, s = population(rng, 2000, 0.5, clf)
    yt, st = population(rng, 5000, 0.1, clf)
    est = quantify_estimate(ytr, s, st, "emq", n_boot=100, rng=1)
    assert est.point == pytest.approx(yt.mean(), abs=0.01)
    assert est.lower <= yt.mean() <= est.upper
    # the bisection solution is EM's fixed point
    a, b = _platt(ytr[None], _logit(s)[None])
    q = _sigmoid(a[0] * _logit(st) + b[0])
    pt, pi = ytr.mean(), ytr.mean()
    for _ in range(5000):
        up, dn = pi / pt * q, (1 - pi) / (1 - pt) * (1 - q)
        pi = float(np.mean(up / (up + dn)))
    assert float(_emq(ytr[None], _logit(s)[None], _logit(st)[None])[0]) == pytest.approx(pi, 1e-6)


def test_naive_notes_and_inputs() -> None:
    e = naive_estimate(np.array([0.9, 0.2, 0.7, 0.1]))
    assert e.method == "naive" and e.point == 0.5 and "ignores classifier error" in e.notes
    with pytest.raises(ValueError):
        ppi_estimate([0, 1], [0.5], [0.2, 0.3])
    with pytest.raises(ValueError):
        audit_estimate([0, 2, 1], None)


# ---------------------------------------------------------------- cross-checks (optional deps)


def test_ppi_matches_ppi_py() -> None:
    ppi_py = pytest.importorskip("ppi_py")
    rng = np.random.default_rng(11)
    y, s = population(rng, 20_000, 0.3, CLASSIFIERS[1])
    idx = audit_indices(rng, y.size, 400)
    rest = np.setdiff1d(np.arange(y.size), idx)
    for tuned in (True, False):
        lam = None if tuned else 1.0
        ours = ppi_estimate(y[idx], s[idx], s[rest], level=0.9, tuned=tuned)
        lo, hi = ppi_py.ppi_mean_ci(y[idx], s[idx], s[rest], alpha=0.1, lam=lam)
        pt = ppi_py.ppi_mean_pointestimate(y[idx], s[idx], s[rest], lam=lam)
        assert ours.point == pytest.approx(float(np.ravel(pt)[0]), abs=1e-10)
        assert ours.lower == pytest.approx(float(np.ravel(lo)[0]), abs=1e-10)
        assert ours.upper == pytest.approx(float(np.ravel(hi)[0]), abs=1e-10)


def test_emq_matches_quapy() -> None:
    agg = pytest.importorskip("quapy.method.aggregative")
    rng = np.random.default_rng(12)
    ytr, s = population(rng, 1000, 0.4, CLASSIFIERS[1])
    _, st = population(rng, 3000, 0.15, CLASSIFIERS[1])
    a, b = _platt(ytr[None], _logit(s)[None])
    q = _sigmoid(a[0] * _logit(st) + b[0])
    post = np.c_[1 - q, q]
    qp_prev, _ = agg.EMQ.EM(np.array([1 - ytr.mean(), ytr.mean()]), post, epsilon=1e-10)
    ours = float(_emq(ytr[None], _logit(s)[None], _logit(st)[None])[0])
    assert ours == pytest.approx(float(qp_prev[1]), abs=1e-5)


# ---------------------------------------------------------------- planted-truth simulations


def _sweep() -> dict[tuple[float, str, int], dict[str, float]]:
    out: dict[tuple[float, str, int], dict[str, float]] = {}
    for pi, prev in enumerate(PREVALENCES):
        for ci, clf in enumerate(CLASSIFIERS):
            for ni, n in enumerate(AUDIT_SIZES):
                rng = np.random.default_rng([pi, ci, ni, 2024])
                acc = {"audit": 0.0, "ppi": 0.0, "naive": 0.0, "w_audit": 0.0, "w_ppi": 0.0}
                for _ in range(R):
                    y, s = population(rng, N_POP, prev, clf)
                    truth = y.mean()
                    idx = audit_indices(rng, N_POP, n)
                    mask = np.ones(N_POP, dtype=bool)
                    mask[idx] = False
                    a = audit_estimate(y[idx], N_POP)
                    p = ppi_estimate(y[idx], s[idx], s[mask])
                    nv = naive_estimate(s)
                    for k, e in (("audit", a), ("ppi", p), ("naive", nv)):
                        acc[k] += float(e.lower <= truth <= e.upper)
                    acc["w_audit"] += a.width / R
                    acc["w_ppi"] += p.width / R
                out[(prev, clf.name, n)] = acc
    return out


@pytest.fixture(scope="module")
def sweep() -> dict[tuple[float, str, int], dict[str, float]]:
    return _sweep()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["audit", "ppi"])
def test_coverage_audit_and_ppi(
    sweep: dict[tuple[float, str, int], dict[str, float]], method: str
) -> None:
    bad = {
        k: v[method] / R for k, v in sweep.items() if not consistent_with_target(int(v[method]), R)
    }
    assert not bad, f"{method} coverage significantly below {TARGET}: {bad}"
    pooled = sum(v[method] for v in sweep.values()) / (R * len(sweep))
    assert pooled >= TARGET


def test_ppi_narrower_than_audit_for_good_models(
    sweep: dict[tuple[float, str, int], dict[str, float]],
) -> None:
    # Good model = strong everywhere with >= 10 expected audited positives, or medium at
    # prevalence >= 0.3. (With fewer audited positives the small-sample guard widens PPI to
    # contain the audit interval, and the audit's FPC — which PPI lacks — matters at n=1000.)
    for (prev, name, n), v in sweep.items():
        good = (name == "strong" and n * prev >= 10) or (name == "medium" and prev >= 0.3)
        if good:
            assert v["w_ppi"] <= v["w_audit"], (prev, name, n, v)


def test_naive_is_biased(sweep: dict[tuple[float, str, int], dict[str, float]]) -> None:
    cov = [v["naive"] / R for (_, name, _), v in sweep.items() if name == "miscalibrated"]
    assert max(cov) < 0.5  # far below nominal: the interval ignores classifier error


def test_quantify_coverage_under_prior_shift() -> None:
    # Labels from elsewhere (prior 0.3); target prior 0.1; same class-conditional scores.
    clf = CLASSIFIERS[2]
    reps = 120
    hits = dict.fromkeys(("acc", "pacc", "emq"), 0)
    rng = np.random.default_rng(77)
    for _ in range(reps):
        ytr, s = population(rng, 300, 0.3, clf)
        yt, st = population(rng, 1000, 0.1, clf)
        for m in hits:
            e = quantify_estimate(ytr, s, st, m, n_boot=100, rng=rng)  # type: ignore[arg-type]
            hits[m] += int(e.lower <= yt.mean() <= e.upper)
    for m, h in hits.items():
        assert consistent_with_target(h, reps), (m, h / reps)


def test_quantify_interval_holds_the_percentile_and_the_normal_interval() -> None:
    rng = np.random.default_rng(4)
    ytr, s = population(rng, 300, 0.3, CLASSIFIERS[1])
    _, st = population(rng, 1000, 0.1, CLASSIFIERS[1])
    for method in ("acc", "pacc", "emq"):
        e = quantify_estimate(ytr, s, st, method, n_boot=200, rng=1)  # type: ignore[arg-type]
        assert e.lower <= e.point - 1.959 * e.se or e.lower == 0.0
        assert e.upper >= e.point + 1.959 * e.se or e.upper == 1.0
        assert "joined" in e.notes


# ---------------------------------------------------------------- bounds (issue 12 item 1)


def test_quantify_flags_a_clipped_value_and_keeps_a_real_interval() -> None:
    """Target with no positives at all: the adjusted share comes out below 0, is clipped to 0,
    flagged, and the interval is still a real interval from 0 (consistent with a share near 0)."""
    rng = np.random.default_rng(5)
    clf = CLASSIFIERS[1]
    flagged = 0
    for _ in range(20):
        ytr, s = population(rng, 400, 0.3, clf)
        _, st = population(rng, 2000, 0.0, clf)
        e = quantify_estimate(ytr, s, st, "acc", n_boot=100, rng=rng)
        assert e.lower == 0.0 and e.upper > 0.0
        if e.at_bound:
            flagged += 1
            assert e.point == 0.0 and "clipped to 0" in e.warning and "AT BOUND" in e.notes
    assert flagged >= 5  # a raw value below 0 about half the time


def test_quantify_when_the_assumption_fails_says_so_with_a_full_interval() -> None:
    """Every target message flagged while the model flags only 80% of reference positives: the
    adjusted value is above 1 in every bootstrap replicate; a zero-width [1, 1] would claim
    certainty, so the interval is 0-1 and the warning says the error rates do not fit."""
    rng = np.random.default_rng(6)
    ytr = (rng.random(500) < 0.4).astype(float)
    s = np.where(ytr == 1, (rng.random(500) < 0.8), (rng.random(500) < 0.1)).astype(float)
    st = np.ones(3000)
    for method in ("acc", "pacc", "emq"):
        e = quantify_estimate(ytr, s, st, method, n_boot=100, rng=1)  # type: ignore[arg-type]
        assert e.at_bound and e.point == 1.0, method
        assert (e.lower, e.upper) == (0.0, 1.0), method
    e = quantify_estimate(ytr, s, st, "acc", n_boot=100, rng=1)
    raw = (1 - s[ytr == 0].mean()) / (s[ytr == 1].mean() - s[ytr == 0].mean())
    assert f"value {raw:.3f}" in e.warning and "prior-shift assumption" in e.warning
    assert e.as_dict()["at_bound"] is True


def test_estimates_inside_the_range_are_not_flagged() -> None:
    rng = np.random.default_rng(8)
    ytr, s = population(rng, 400, 0.3, CLASSIFIERS[2])
    _, st = population(rng, 2000, 0.2, CLASSIFIERS[2])
    for method in ("acc", "pacc", "emq"):
        e = quantify_estimate(ytr, s, st, method, n_boot=100, rng=1)  # type: ignore[arg-type]
        assert not e.at_bound and e.warning == "" and e.width > 0
    y, f = population(rng, 2000, 0.2, CLASSIFIERS[1])
    assert not ppi_estimate(y[:300], f[:300], f[300:]).at_bound
    assert not audit_estimate(y[:300], 2000).at_bound


def test_zero_width_only_for_a_census() -> None:
    from chatlens.estimate import check_bounds, ppi_finite_estimate

    rng = np.random.default_rng(9)
    y, f = population(rng, 500, 0.2, CLASSIFIERS[2])
    census = [audit_estimate(y, y.size), ppi_finite_estimate(y, f, f)]
    for e in census:
        assert e.width == 0.0 and not e.at_bound and e.point == pytest.approx(y.mean())
    for n in (2, 10, 100, 499):
        for e in (audit_estimate(y[:n], y.size), audit_estimate(np.zeros(n), y.size),
                  ppi_finite_estimate(y[:n], f[:n], f), ppi_finite_estimate(y[:n], y[:n], y)):
            assert e.width > 0.0, (n, e)
    point = Estimate(0.3, 0.3, 0.3, 0.95, "quantify", 100, 1000, "made up")
    fixed = check_bounds(point)
    assert fixed.at_bound and (fixed.lower, fixed.upper) == (0.0, 1.0)
    assert check_bounds(point, census=True) is point
    assert check_bounds(Estimate(0.0, 0.0, 0.1, 0.95, "ppi", 50, 500), raw_point=-0.02).at_bound
