"""Coverage of the active batch per setting, with many working models per setting.

``tests/test_active.py``'s slow test draws one working model per setting (one 150-label pilot,
one set of 1,000 training labels) and 120 batches with it, so one setting's coverage carries a
Monte-Carlo error of about 0.02 and the luck of that one model. Here each setting (prevalence
2-50 %, the four simulated classifiers, both ways a project gets its working model:
:func:`chatlens.project.active.choose_working_model` on a random pilot, or on training labels
at 30 % moved to the population by EMQ) gets ``--models`` working models, each with ``--reps``
batches of expected size 250 from 4,000 messages.

Usage: python bench/active_coverage.py [--models 25] [--reps 200] [--seed 6]
Target (issue 17): coverage >= 0.93 in every setting.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from chatlens.annotate.sampling import active_probabilities
from chatlens.estimate.active import ppi_active_estimate
from chatlens.estimate.simulate import CLASSIFIERS, population
from chatlens.project.active import choose_working_model

N_POP, N_AUDIT, PILOT, TRAINING = 4000, 250, 150, 1000
Labels = tuple[NDArray[np.float64], NDArray[np.float64]]


def _given(labels: Labels) -> Callable[[], Labels]:
    """The training labels and scores, as ``choose_working_model`` asks for them."""
    return lambda: labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=25, help="working models per setting")
    ap.add_argument("--reps", type=int, default=200, help="batches per working model")
    ap.add_argument("--seed", type=int, default=6)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    covered: dict[str, dict[str, float]] = {"pilot": {}, "training": {}}
    none = np.zeros(0)
    for prevalence in (0.02, 0.1, 0.3, 0.5):
        for clf in CLASSIFIERS:
            y, s = population(rng, N_POP, prevalence, clf)
            for basis, cell in covered.items():
                hits = 0
                for _ in range(args.models):
                    if basis == "pilot":
                        pilot = rng.choice(N_POP, PILOT, replace=False)
                        work = choose_working_model(y[pilot], s[pilot], s)
                    else:
                        labels = population(rng, TRAINING, 0.3, clf)
                        work = choose_working_model(none, none, s, _given(labels))
                    g = work(s)
                    pi = active_probabilities(np.sqrt(g * (1 - g)), N_AUDIT)
                    for _ in range(args.reps):
                        j = np.flatnonzero(rng.random(N_POP) < pi)
                        e = ppi_active_estimate(y[j], g[j], pi[j], g)
                        hits += e.lower <= y.mean() <= e.upper
                cell[f"{prevalence:.2f}/{clf.name}"] = round(hits / (args.models * args.reps), 4)
    draws = args.models * args.reps
    print(json.dumps({
        "draws_per_setting": draws, "mc_se": round(float(np.sqrt(0.95 * 0.05 / draws)), 4),
        **{basis: {"pooled": round(float(np.mean(list(c.values()))), 4),
                   "lowest": min(c.items(), key=lambda kv: kv[1]), "settings": c}
           for basis, c in covered.items()},
        "target_every_setting": 0.93, "seconds": round(time.perf_counter() - t0)}, indent=2))


if __name__ == "__main__":
    main()
