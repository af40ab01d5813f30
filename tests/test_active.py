"""Active audit sampling: Poisson draws with known inclusion probabilities, the weighted PPI
estimate (valid coverage, narrower than a simple random audit) and its label plan."""

from __future__ import annotations

import numpy as np
import pytest

from chatlens.annotate.sampling import active_probabilities, draw_active
from chatlens.estimate import ppi_finite_estimate
from chatlens.estimate.active import active_n, ppi_active_estimate
from chatlens.estimate.simulate import Classifier, audit_indices, population

N = 10_000


def test_probabilities_sum_to_n_are_capped_and_floored() -> None:
    u = np.r_[np.full(10, 1000.0), np.ones(990)]
    pi = active_probabilities(u, 100)
    assert pi.sum() == pytest.approx(100) and pi.max() <= 1.0
    assert pi[:10].tolist() == [1.0] * 10
    assert pi.min() >= 0.2 * 100 / 1000 * 0.99  # the uniform share


def test_draw_is_reproducible_and_records_its_probabilities() -> None:
    uids = [f"u{i}" for i in range(2000)]
    spread = np.linspace(0.0, 0.5, 2000)
    a, b = draw_active(uids, spread, 200, seed=3), draw_active(uids, spread, 200, seed=3)
    assert a.uids == b.uids and 150 < a.n < 250 and a.method == "active-poisson"
    late = sum(int(u[1:]) >= 1000 for u in a.uids)
    assert late > a.n / 2  # more where the spread is larger
    assert set(a.inclusion) == set(a.uids)


def _setting(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clf = Classifier("medium", 1.5, score_prior=0.15)  # calibrated at this prevalence
    return population(rng, N, 0.15, clf)


def test_active_ppi_covers_and_beats_a_simple_random_audit() -> None:
    y, g = _setting(1)
    rng = np.random.default_rng(2)
    pi = active_probabilities(np.sqrt(g * (1 - g)), 300)
    truth = y.mean()
    cover, widths, srs = 0, [], []
    reps = 300
    for _ in range(reps):
        s = np.flatnonzero(rng.random(N) < pi)
        e = ppi_active_estimate(y[s], g[s], pi[s], g)
        cover += e.lower <= truth <= e.upper
        widths.append(e.upper - e.lower)
        j = audit_indices(rng, N, s.size)
        u = ppi_finite_estimate(y[j], g[j], g)
        srs.append(u.upper - u.lower)
    se = np.sqrt(0.95 * 0.05 / reps)
    assert cover / reps >= 0.93 - 2 * se
    assert np.mean(widths) < 0.95 * np.mean(srs)


def test_a_rare_class_found_only_where_the_model_is_unsure_gets_no_clt_interval() -> None:
    # the new-user trial: 5 positives in an active draw of 150 from 30,000 (a 0.28 % measure);
    # each found where pi was high, so the normal interval said [0.02 %, 0.23 %] and missed
    N_big, n = 30_000, 150
    g_all = np.full(N_big, 0.001)
    pi = np.r_[np.full(5, 0.5), np.full(n - 5, n / N_big)]
    y = np.r_[np.ones(5), np.zeros(n - 5)]
    g = np.r_[np.full(5, 0.4), np.full(n - 5, 0.001)]
    e = ppi_active_estimate(y, g, pi, g_all)
    assert "widened" in e.notes and "would hold about" in e.notes
    assert e.upper > 0.01  # the Wilson interval of the weighted share, not the CLT's


def test_active_plan_achieves_the_half_width_within_ten_percent() -> None:
    y, g = _setting(4)
    rng = np.random.default_rng(5)
    spread = np.sqrt(g * (1 - g))
    q = active_probabilities(spread, 100) / 100
    n = active_n(g, q, 0.02)
    pi = active_probabilities(spread, n)
    hw = []
    for _ in range(60):
        s = np.flatnonzero(rng.random(N) < pi)
        e = ppi_active_estimate(y[s], g[s], pi[s], g)
        hw.append((e.upper - e.lower) / 2)
    assert np.mean(hw) == pytest.approx(0.02, rel=0.10)


@pytest.mark.slow
def test_active_ppi_covers_across_prevalences_and_models() -> None:
    """Known truth: prevalences 2-50 %, weak to strong (and a miscalibrated) model, with the
    working models a project uses (chatlens.project.active.choose_working_model): recalibrated
    on a 150-label random pilot (moved to the population's EMQ prevalence while the pilot holds
    fewer than 20 of a class), or, before any audit label, on 1,000 training labels at another
    prevalence (30 %) and moved. Pooled 95 % coverage >= 0.93 for each, no setting far below
    it, and the weights stay bounded by the floor at 2 %."""
    from chatlens.estimate.simulate import CLASSIFIERS
    from chatlens.project.active import choose_working_model

    rng = np.random.default_rng(17)
    n_pop, n, reps = 4000, 250, 120
    covered: dict[tuple[str, float, str], float] = {}
    for prevalence in (0.02, 0.1, 0.3, 0.5):
        for clf in CLASSIFIERS:
            y, s = population(rng, n_pop, prevalence, clf)
            pilot = rng.choice(n_pop, 150, replace=False)
            training = population(rng, 1000, 0.3, clf)
            none = np.zeros(0)
            for basis, work in (
                    ("pilot", choose_working_model(y[pilot], s[pilot], s)),
                    ("training", choose_working_model(none, none, s, lambda t=training: t))):
                g = work(s)
                pi = active_probabilities(np.sqrt(g * (1 - g)), n)
                assert 1 / pi.min() <= n_pop / (0.2 * n) + 1e-9  # the floor bounds the weights
                hits = 0
                for _ in range(reps):
                    j = np.flatnonzero(rng.random(n_pop) < pi)
                    e = ppi_active_estimate(y[j], g[j], pi[j], g)
                    hits += e.lower <= y.mean() <= e.upper
                covered[(basis, prevalence, clf.name)] = hits / reps
    for basis in ("pilot", "training"):
        mine = {k: v for k, v in covered.items() if k[0] == basis}
        assert float(np.mean(list(mine.values()))) >= 0.93, mine
        assert min(mine.values()) >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps), mine
