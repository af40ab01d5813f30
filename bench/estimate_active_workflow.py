"""The project's sequential active workflow on the real labelled sets (issue 17).

A uniform pilot batch of SHARE*n, then an active batch of the rest, each with the working
model chatlens chooses before its draw (chatlens.project.active.choose_working_model: the
pilot's g from the training part's out-of-fold scores moved to the population's EMQ
prevalence; the active batch's from the pilot's labels when they hold 20 of each class, else
the same as the pilot's), combined by planned size (chatlens.project.active.active_estimate);
``one-batch``: a single active batch of n drawn before any audit label; against a simple random
audit of n (audit-only and PPI). Same protocol as bench/estimate.py (2 folds, planted
prevalences, held-out chatlens scores, cached by bench/estimate_active_designs.py).

Usage: python bench/estimate_active_workflow.py REPS SHARE [SEED]   (e.g. 100 0.33 1)
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from chatlens.annotate.sampling import ACTIVE_MIX, active_probabilities
from chatlens.estimate import audit_estimate, ppi_finite_estimate
from chatlens.estimate.active import ppi_active_estimate
from chatlens.project.active import Batch, active_estimate, choose_working_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import estimate as B
from estimate_active_designs import held_out_scores

N, n, reps, share = 2000, 300, int(sys.argv[1]), float(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
Z = held_out_scores(seed)
rng = np.random.default_rng(seed + 2000)
none = np.zeros(0)
rows = []
for name in ("unlp_manipulative", "rusentiment_negative"):
    for k in range(2):
        y_tr, oof = Z[f"{name}|{k}|ytrain"], Z[f"{name}|{k}|oof"]
        y_pool, s_pool = Z[f"{name}|{k}|ypool"], Z[f"{name}|{k}|spool"]
        pos, neg = np.flatnonzero(y_pool == 1), np.flatnonzero(y_pool == 0)
        for p in B.PREVALENCES:
            kk = round(p * N)
            for _ in range(reps // 2):
                mem = np.concatenate([rng.choice(pos, kk), rng.choice(neg, N - kk)])
                yy, sc = y_pool[mem], s_pool[mem]
                truth = yy.mean()
                w0 = choose_working_model(none, none, sc, lambda t=(y_tr, oof): t)
                g0 = w0(sc)
                pi0 = active_probabilities(np.sqrt(g0 * (1 - g0)), n, ACTIVE_MIX)
                s0 = np.flatnonzero(rng.random(N) < pi0)
                one = ppi_active_estimate(yy[s0], g0[s0], pi0[s0], g0)
                n1 = share * n
                pi1 = np.full(N, n1 / N)
                s1 = np.flatnonzero(rng.random(N) < pi1)
                w2 = choose_working_model(yy[s1], sc[s1], sc, lambda t=(y_tr, oof): t)
                g2 = w2(sc)
                pi2 = active_probabilities(np.sqrt(g2 * (1 - g2)), n - n1, ACTIVE_MIX)
                s2 = np.flatnonzero(rng.random(N) < pi2)
                b = [Batch("b1", {str(i): float(pi1[i]) for i in s1}, w0, n1),
                     Batch("b2", {str(i): float(pi2[i]) for i in s2}, w2, n - n1)]
                both = np.union1d(s1, s2)
                e = active_estimate(b, "ppi", yy[both], [str(i) for i in both], sc, sc[both],
                                    True, 0.95)
                a = rng.choice(N, n, replace=False)
                au = audit_estimate(yy[a], N)
                pp = ppi_finite_estimate(yy[a], sc[a], sc)
                for m, est in (("two-phase", e), ("one-batch", one), ("audit", au), ("ppi", pp)):
                    rows.append({"data": name, "p": p, "m": m, "w": est.width,
                                 "cov": est.lower <= truth <= est.upper, "n": est.n_labelled})
df = pd.DataFrame(rows)
t = df.groupby(["data", "m"]).agg(cov=("cov", "mean"), w=("w", "mean"), n=("n", "mean"))
print(t.round(4).to_string())
for d in df.data.unique():
    a = t.loc[(d, "audit"), "w"]
    print(d, "two-phase/audit width", round(t.loc[(d, "two-phase"), "w"] / a, 3),
          "one-batch/audit", round(t.loc[(d, "one-batch"), "w"] / a, 3),
          "ppi/audit", round(t.loc[(d, "ppi"), "w"] / a, 3))
w = df.pivot_table(index=["data", "p"], columns="m", values="w")
print((w["two-phase"] / w["audit"]).round(3).to_string())
