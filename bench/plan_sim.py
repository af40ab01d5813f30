"""Planted-truth check of label planning: does the planned audit size give the asked half-width?

Usage: ``python bench/plan_sim.py [--pilot 150] [--pops 20] [--reps 50]``.

For each prevalence x classifier x target half-width: ``--pops`` populations of 10,000
messages; in each, a pilot audit of ``--pilot`` plans the PPI and audit-only sizes
(:mod:`chatlens.estimate.plan`), then ``--reps`` audits of the planned size are drawn and
chatlens's own intervals computed. Prints the mean planned n and the mean achieved half-width
over the target (1.00 = exact); ``--pilot 0`` plans from the true residual variance instead
(the population's own labels), which isolates the planning formula from the pilot's noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatlens.estimate import audit_estimate, ppi_finite_estimate
from chatlens.estimate.plan import disagreement_rate, plan_audit, plan_ppi, residual_variance
from chatlens.estimate.simulate import CLASSIFIERS, audit_indices, population

PREVALENCES = (0.05, 0.1, 0.3)
WIDTHS = (0.02, 0.05)
N_POP = 10_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pilot", type=int, default=150)
    ap.add_argument("--pops", type=int, default=20)
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    print("prevalence classifier width | ppi: n achieved/target (set by) | audit: n "
          "achieved/target")
    worst = 0.0
    for prev in PREVALENCES:
        for clf in CLASSIFIERS:
            for w in WIDTHS:
                rng = np.random.default_rng([int(prev * 100), int(w * 100), clf.name.__len__()])
                ppi_n, ppi_r, aud_n, aud_r, binding = [], [], [], [], set()
                for _ in range(args.pops):
                    y, f = population(rng, N_POP, prev, clf)
                    idx = (audit_indices(rng, N_POP, args.pilot) if args.pilot
                           else np.arange(N_POP))
                    lg, lin, basis = residual_variance(y[idx], f[idx], f)
                    p = float(y[idx].mean())
                    plan = plan_ppi(lg, p, N_POP, w, basis=basis,
                                    disagreement=disagreement_rate(y[idx], f[idx]),
                                    sigma2_linear=lin,
                                    audit_n_cap=plan_audit(p, N_POP, w).n)
                    aud = plan_audit(p, N_POP, w)
                    binding.add(plan.binding)
                    hw = [ppi_finite_estimate(y[j], f[j], f) for j in
                          (audit_indices(rng, N_POP, plan.n) for _ in range(args.reps))]
                    ha = [audit_estimate(y[j], N_POP) for j in
                          (audit_indices(rng, N_POP, aud.n) for _ in range(args.reps))]
                    ppi_n.append(plan.n)
                    aud_n.append(aud.n)
                    ppi_r.append(np.mean([(e.upper - e.lower) / 2 for e in hw]) / w)
                    aud_r.append(np.mean([(e.upper - e.lower) / 2 for e in ha]) / w)
                if binding == {"variance"}:
                    worst = max(worst, abs(np.mean(ppi_r) - 1))
                worst = max(worst, abs(np.mean(aud_r) - 1))
                print(f"{prev:.2f} {clf.name:13s} {w:.2f} | {np.mean(ppi_n):6.0f} "
                      f"{np.mean(ppi_r):.3f} (sd {np.std(ppi_r):.3f}, {'/'.join(sorted(binding))})"
                      f" | {np.mean(aud_n):6.0f} {np.mean(aud_r):.3f} (sd {np.std(aud_r):.3f})",
                      flush=True)
    print(f"largest |achieved/target - 1| where the variance set n: {worst:.3f}")


if __name__ == "__main__":
    main()
