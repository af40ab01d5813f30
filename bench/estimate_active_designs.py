"""Active audit designs compared on the real labelled sets (issue 17), at equal expected labels.

Same protocol as ``bench/estimate.py --design active`` (2 folds, chatlens's model trained on one
half, populations of ``--N`` drawn from the other half at planted prevalences 5-50 %, audits of
``--n``), without the quantification methods so that many designs fit in one run. The held-out
scores are cached in bench/out (per seed). Every row is a width ratio against the simple random
audit-only interval of the same population, with its coverage:

- ``ppi``: PPI on a simple random audit (chatlens's default estimate);
- ``active``: chatlens's active batch before any audit label
  (:func:`chatlens.project.active.choose_working_model`: recalibrated on the training part's
  out-of-fold scores, moved to the population's EMQ prevalence), ``pi ~ sqrt(g(1-g))`` with
  the uniform floor ``--floor``, weighted PPI; ``active-floor-F`` the same with floor F;
- ``active-unshifted``: the working model left at the training prevalence;
- ``active-hajek``: chatlens's draw, estimated with the Hajek (ratio) difference estimator, whose
  variance is centred on the weighted mean residual (normal interval);
- ``active-logit``: chatlens's draw and estimate with the normal interval on the logit scale
  (survey's ``svyciprop(method = "logit")``) where the normal one lies inside (0, 1);
- ``strat-neyman-H``: a stratified simple random audit instead of a Poisson draw: H strata of
  equal size by chatlens's working model ``g``, allocation ``n_h ∝ N_h·sqrt(mean_h g(1-g))``
  mixed with proportional (share ``--floor``, at least 2 per stratum), estimated by chatlens's
  stratified PPI (:func:`chatlens.estimate.ppi.ppi_finite_stratified`);
- ``active-oracle``: the Poisson design with ``g`` the *true* P(y | score) at the planted
  prevalence (fitted on the whole held-out half at that prevalence): what no real working model
  can beat with these scores, i.e. the bound of the design.

Usage: python bench/estimate_active_designs.py [--reps 100] [--seed 1] [--floor 0.2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
import estimate as B

from chatlens.annotate.sampling import active_probabilities
from chatlens.estimate import audit_estimate, ppi_finite_estimate
from chatlens.estimate.active import ppi_active_estimate
from chatlens.estimate.audit import z_value
from chatlens.estimate.ppi import _logit, ppi_finite_stratified
from chatlens.project.active import choose_working_model, fit_working_model

OUT = Path(__file__).resolve().parent / "out"


def held_out_scores(seed: int) -> dict[str, np.ndarray]:
    """Per data set and fold: training labels and out-of-fold scores, held-out labels and
    scores (cached)."""
    path = OUT / f"active_scores_seed{seed}.npz"
    if path.exists():
        return dict(np.load(path))
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, (texts, y) in B.datasets().items():
        parts = np.array_split(rng.permutation(len(y)), 2)
        for k in range(2):
            train, pool = parts[1 - k], parts[k]
            oof, s_pool, _ = B.chatlens_scores(texts, y, train, pool)
            out |= {f"{name}|{k}|ytrain": y[train], f"{name}|{k}|oof": oof,
                    f"{name}|{k}|ypool": y[pool], f"{name}|{k}|spool": s_pool}
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def hajek(y: np.ndarray, g: np.ndarray, pi: np.ndarray, g_all: np.ndarray,
          ) -> tuple[float, float]:
    r, w = y - g, 1.0 / pi
    r_bar = float((w * r).sum() / w.sum())
    point = float(g_all.mean()) + r_bar
    var = float(((1 - pi) * w * w * (r - r_bar) ** 2).sum()) / float(w.sum()) ** 2
    half = z_value(0.95) * np.sqrt(var * y.size / (y.size - 1))
    return point - half, point + half


def logit_interval(point: float, se: float, lo: float, hi: float) -> tuple[float, float]:
    z = z_value(0.95)
    if not (point - z * se > 0.0 and point + z * se < 1.0):
        return lo, hi
    centre, half = np.log(point / (1 - point)), z * se / (point * (1 - point))
    return float(1 / (1 + np.exp(-(centre - half)))), float(1 / (1 + np.exp(-(centre + half))))


def neyman_strata(g: np.ndarray, H: int, n: int, floor: float,
                  ) -> tuple[np.ndarray, np.ndarray]:
    lab = np.empty(g.size, dtype=int)
    for h, part in enumerate(np.array_split(np.argsort(g, kind="stable"), H)):
        lab[part] = h
    N_h = np.bincount(lab)
    S_h = np.sqrt(np.bincount(lab, g * (1 - g)) / N_h)
    q = n * ((1 - floor) * N_h * S_h / (N_h * S_h).sum() + floor * N_h / N_h.sum())
    n_h = np.maximum(np.floor(q).astype(int), 2)
    while n_h.sum() < n:
        n_h[np.argmax(q - n_h)] += 1
    while n_h.sum() > n:
        n_h[np.argmax(n_h - q)] -= 1
    return lab, np.minimum(n_h, N_h)


def population_rows(name: str, p: float, y: np.ndarray, s: np.ndarray, y_tr: np.ndarray,
                    oof: np.ndarray, oracle: LogisticRegression, n: int, floor: float,
                    rng: np.random.Generator) -> list[tuple[str, float, str, float, bool]]:
    N, truth = y.size, float(y.mean())
    a = rng.choice(N, n, replace=False)
    res: dict[str, tuple[float, float]] = {}
    for m, e in (("audit", audit_estimate(y[a], N)), ("ppi", ppi_finite_estimate(y[a], s[a], s))):
        res[m] = (e.lower, e.upper)
    none = np.zeros(0)
    g = choose_working_model(none, none, s, lambda: (y_tr, oof))(s)
    g_old = fit_working_model(y_tr, oof)(s)
    g_true = oracle.predict_proba(_logit(s).reshape(-1, 1))[:, 1]
    poisson = [("active", g, floor), ("active-floor-0.05", g, 0.05),
               ("active-floor-0.5", g, 0.5), ("active-unshifted", g_old, floor),
               ("active-oracle", g_true, floor)]
    for tag, gg, fl in poisson:
        pi = active_probabilities(np.sqrt(gg * (1 - gg)), n, fl)
        j = np.flatnonzero(rng.random(N) < pi)
        e = ppi_active_estimate(y[j], gg[j], pi[j], gg)
        res[tag] = (e.lower, e.upper)
        if tag == "active":
            res["active-hajek"] = hajek(y[j], gg[j], pi[j], gg)
            res["active-logit"] = logit_interval(e.point, e.se or 0.0, e.lower, e.upper)
    for H in (5, 10):
        lab, n_h = neyman_strata(g, H, n, floor)
        idx = np.concatenate([rng.choice(np.flatnonzero(lab == h), n_h[h], replace=False)
                              for h in range(H)])
        e = ppi_finite_stratified(y[idx], s[idx], lab[idx], s, lab)
        res[f"strat-neyman-{H}"] = (e.lower, e.upper)
    return [(name, p, m, hi - lo, lo <= truth <= hi) for m, (lo, hi) in res.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=100, help="populations per prevalence and set")
    ap.add_argument("--N", type=int, default=2000)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--floor", type=float, default=0.2)
    args = ap.parse_args()
    scores = held_out_scores(args.seed)
    rng = np.random.default_rng(args.seed + 1000)
    rows = []
    for name in ("unlp_manipulative", "rusentiment_negative"):
        for k in range(2):
            y_tr, oof = scores[f"{name}|{k}|ytrain"], scores[f"{name}|{k}|oof"]
            y_p, s_p = scores[f"{name}|{k}|ypool"], scores[f"{name}|{k}|spool"]
            pos, neg = np.flatnonzero(y_p == 1), np.flatnonzero(y_p == 0)
            z = _logit(s_p).reshape(-1, 1)
            for p in B.PREVALENCES:
                w = np.where(y_p == 1, p / y_p.mean(), (1 - p) / (1 - y_p.mean()))
                oracle = LogisticRegression(C=1e6, max_iter=1000).fit(z, y_p, sample_weight=w)
                kk = round(p * args.N)
                for _ in range(args.reps // 2 + (k < args.reps % 2)):
                    mem = np.concatenate([rng.choice(pos, kk), rng.choice(neg, args.N - kk)])
                    rows += population_rows(name, p, y_p[mem], s_p[mem], y_tr, oof, oracle,
                                            args.n, args.floor, rng)
    df = pd.DataFrame(rows, columns=["data", "prevalence", "design", "width", "covered"])
    t = df.groupby(["data", "design"]).agg(coverage=("covered", "mean"), width=("width", "mean"))
    audit = t.xs("audit", level="design")["width"]
    t["width/audit"] = t["width"] / audit.reindex(t.index.get_level_values("data")).values
    print(f"reps {args.reps} per prevalence and set, N {args.N}, n {args.n}, floor {args.floor}, "
          f"seed {args.seed}")
    print(t.round(4).to_string())
    w = df.pivot_table(index=["data", "prevalence"], columns="design", values="width")
    print("\nwidth / audit width by planted prevalence\n"
          + w.div(w["audit"], axis=0).round(3).to_string())
    c = df.pivot_table(index=["data", "prevalence"], columns="design", values="covered")
    print("\ncoverage by planted prevalence\n" + c.round(3).to_string())


if __name__ == "__main__":
    main()
