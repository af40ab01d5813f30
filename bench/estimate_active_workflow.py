"""The project's sequential active workflow on the real labelled sets (issue 17).

A uniform pilot batch of SHARE*n (working model: the scores recalibrated on the training part),
then an active batch of the rest whose working model is refitted on the pilot's labels of this
population, combined by planned size (chatlens.project.active.active_estimate), against a
simple random audit of n (audit-only and PPI). Same protocol as bench/estimate.py (2 folds,
planted prevalences, held-out chatlens scores).

Usage: python bench/estimate_active_workflow.py REPS SHARE   (e.g. 100 0.33)
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from chatlens.annotate.sampling import ACTIVE_MIX, active_probabilities
from chatlens.estimate import audit_estimate, ppi_finite_estimate
from chatlens.project.active import Batch, active_estimate, fit_working_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import estimate as B

rng = np.random.default_rng(0)
N, n, reps, share = 2000, 300, int(sys.argv[1]), float(sys.argv[2])
rows = []
for name, (texts, y) in B.datasets().items():
    parts = np.array_split(rng.permutation(len(y)), 2)
    for k in range(2):
        train, pool = parts[1 - k], parts[k]
        oof, s_pool, _ = B.chatlens_scores(texts, y, train, pool)
        w0 = fit_working_model(y[train], oof)
        pos, neg = np.flatnonzero(y[pool] == 1), np.flatnonzero(y[pool] == 0)
        for p in B.PREVALENCES:
            kk = round(p * N)
            for _ in range(reps // 2):
                mem = np.concatenate([rng.choice(pos, kk), rng.choice(neg, N - kk)])
                yy, sc = y[pool][mem], s_pool[mem]
                truth = yy.mean()
                n1 = share * n
                pi1 = np.full(N, n1 / N)
                s1 = np.flatnonzero(rng.random(N) < pi1)
                w2 = fit_working_model(yy[s1], sc[s1])
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
                for m, est in (("two-phase", e), ("audit", au), ("ppi", pp)):
                    rows.append({"data": name, "p": p, "m": m, "w": est.width,
                                 "cov": est.lower <= truth <= est.upper, "n": est.n_labelled})
df = pd.DataFrame(rows)
t = df.groupby(["data", "m"]).agg(cov=("cov", "mean"), w=("w", "mean"), n=("n", "mean"))
print(t.round(4).to_string())
for d in df.data.unique():
    a = t.loc[(d, "audit"), "w"]
    print(d, "two-phase/audit width", round(t.loc[(d, "two-phase"), "w"] / a, 3),
          "ppi/audit", round(t.loc[(d, "ppi"), "w"] / a, 3))
w = df.pivot_table(index=["data", "p"], columns="m", values="w")
print((w["two-phase"] / w["audit"]).round(3).to_string())
