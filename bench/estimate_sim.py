"""Planted-truth sweep for chatlens.estimate: coverage, width and error of every estimator.

Usage: ``python bench/estimate_sim.py [--reps 500] [--quant-reps 500] [--workers 2]``.
Audit / PPI / naive: prevalence x classifier x audit size, populations of 10,000 messages.
Active: an active audit of the same expected size (Poisson, pi ~ sqrt(s(1-s)) of the raw score
``s`` as working model, uniform floor ACTIVE_MIX), the inverse-probability weighted PPI.
Quantify (ACC, PACC, EMQ): labels from another population (prior 0.3, 300 labels), target of
1,000 messages, same class-conditional scores (the assumption holds), 100 bootstrap replicates.
"""

from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatlens.annotate.sampling import active_probabilities
from chatlens.estimate import (
    audit_estimate,
    naive_estimate,
    ppi_estimate,
    quantify_estimate,
)
from chatlens.estimate.active import ppi_active_estimate
from chatlens.estimate.simulate import CLASSIFIERS, audit_indices, population

PREVALENCES = (0.02, 0.1, 0.3, 0.5)
AUDIT_SIZES = (50, 200, 1000)
N_POP = 10_000
TARGET = 0.93
Row = tuple[str, float, str, int, str, float, float, float]


def run_audit_setting(args: tuple[int, int, int, int]) -> list[Row]:
    pi, ci, ni, reps = args
    prev, clf, n = PREVALENCES[pi], CLASSIFIERS[ci], AUDIT_SIZES[ni]
    rng = np.random.default_rng([pi, ci, ni, 99])
    stats = {m: np.zeros(3) for m in ("audit", "ppi", "active", "naive")}
    for _ in range(reps):
        y, s = population(rng, N_POP, prev, clf)
        truth = y.mean()
        idx = audit_indices(rng, N_POP, n)
        mask = np.ones(N_POP, dtype=bool)
        mask[idx] = False
        pi_act = active_probabilities(np.sqrt(s * (1 - s)), n)
        act = np.flatnonzero(rng.random(N_POP) < pi_act)
        for m, e in (
            ("audit", audit_estimate(y[idx], N_POP)),
            ("ppi", ppi_estimate(y[idx], s[idx], s[mask])),
            ("active", ppi_active_estimate(y[act], s[act], pi_act[act], s)),
            ("naive", naive_estimate(s)),
        ):
            stats[m] += (e.lower <= truth <= e.upper, e.width, abs(e.point - truth))
    return [("A", prev, clf.name, n, m, *(v / reps)) for m, v in stats.items()]


def run_quant_setting(args: tuple[int, int, int]) -> list[Row]:
    pi, ci, reps = args
    prev, clf = PREVALENCES[pi], CLASSIFIERS[ci]
    rng = np.random.default_rng([pi, ci, 7])
    stats = {m: np.zeros(3) for m in ("acc", "pacc", "emq")}
    for _ in range(reps):
        ytr, s = population(rng, 300, 0.3, clf)
        yt, st = population(rng, 1000, prev, clf)
        for m in stats:
            e = quantify_estimate(ytr, s, st, m, n_boot=100, rng=rng)  # type: ignore[arg-type]
            stats[m] += (e.lower <= yt.mean() <= e.upper, e.width, abs(e.point - yt.mean()))
    return [("Q", prev, clf.name, 300, m, *(v / reps)) for m, v in stats.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--quant-reps", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    t0 = time.time()
    jobs_a = [
        (pi, ci, ni, a.reps)
        for pi in range(len(PREVALENCES))
        for ci in range(len(CLASSIFIERS))
        for ni in range(len(AUDIT_SIZES))
    ]
    jobs_q = [(pi, ci, a.quant_reps) for pi in range(len(PREVALENCES)) for ci in (1, 2, 3)]
    with Pool(a.workers) as pool:
        rows = [r for rs in pool.map(run_audit_setting, jobs_a) for r in rs]
        rows += [r for rs in pool.map(run_quant_setting, jobs_q) for r in rs]
    print(f"{'prev':>5} {'model':>13} {'n':>5} {'method':>6} {'cover':>6} {'width':>7} {'MAE':>7}")
    for _, prev, name, n, m, cov, w, mae in rows:
        flag = "" if m == "naive" or cov >= TARGET else "  <0.93"
        print(f"{prev:5.2f} {name:>13} {n:5d} {m:>6} {cov:6.3f} {w:7.4f} {mae:7.4f}{flag}")
    summary(rows, a.reps, a.quant_reps)
    print(f"elapsed {time.time() - t0:.0f}s")


def summary(rows: list[Row], reps: int, qreps: int) -> None:
    se = np.sqrt(0.95 * 0.05 / reps)
    print(f"\nMonte-Carlo standard error of one coverage ~{se:.3f} ({reps} populations/setting)")
    by = {(r[1], r[2], r[3], r[4]): r for r in rows}
    for m in ("audit", "ppi", "active", "acc", "pacc", "emq"):
        cov = [r[5] for r in rows if r[4] == m]
        below = [(r[1], r[2], r[3], round(r[5], 3)) for r in rows if r[4] == m and r[5] < TARGET]
        print(
            f"{m:>5}: pooled coverage {np.mean(cov):.3f}, min {min(cov):.3f}; "
            f"settings below {TARGET}: {len(below)}/{len(cov)} {below}"
        )
    wins = [
        (k[0], k[1], k[2], round(r[6], 4), round(by[(k[0], k[1], k[2], "audit")][6], 4))
        for k, r in by.items()
        if k[3] == "ppi"
    ]
    for name in ("weak", "medium", "strong", "miscalibrated"):
        ws = [(p, a) for (_, nm, _, p, a) in wins if nm == name]
        ratio = np.mean([p / a for p, a in ws])
        narrower = sum(p <= a for p, a in ws)
        print(f"ppi/audit mean width ratio, {name:>13}: {ratio:.3f} (narrower in {narrower}/12)")
    naive = [r[5] for r in rows if r[4] == "naive"]
    print(f"naive: mean coverage {np.mean(naive):.3f}, max {max(naive):.3f} (nominal 0.95)")


if __name__ == "__main__":
    main()
