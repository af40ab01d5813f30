"""Estimators on real labelled data: the artificial-prevalence protocol.

For each data set in ../shared/data (UNLP-2025 manipulation posts: `manipulative`; RuSentiment
random posts: `negative` vs the rest), half the items train a classifier (char + word TF-IDF,
logistic regression; out-of-fold scores on the training half give quantification its error
rates). From the other half, populations of N messages are drawn at planted prevalences; each gets
an audit sample of n random items whose true labels play the human coder. Per method the script
reports mean absolute error of the prevalence, 95% coverage and mean interval width.

Usage: python bench/estimate.py [--reps 100] [--N 2000] [--n 300]
Targets (issue 5): coverage >= 0.93 for ppi and audit; ppi MAE <= 1/3 naive MAE;
ppi width <= 0.8x audit width at equal labels.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline, make_union

from chatlens.estimate import (
    audit_estimate,
    naive_estimate,
    ppi_finite_estimate,
    quantify_estimate,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "labeled"
PREVALENCES = (0.05, 0.1, 0.2, 0.3, 0.5)
MODEL = "chatlens"  # or "tfidf-logreg" (--model)


def datasets() -> dict[str, tuple[list[str], np.ndarray]]:
    unlp = pd.read_parquet(DATA / "uk_ru_tg_manipulation_unlp2025" / "dev.parquet")
    rs = pd.read_csv(DATA / "ru_rusentiment" / "rusentiment_random_posts.csv").dropna()
    return {
        "unlp_manipulative": (unlp["content"].tolist(), unlp["manipulative"].astype(float).values),
        "rusentiment_negative": (rs["text"].astype(str).tolist(),
                                 (rs["label"] == "negative").astype(float).values),
    }


def model() -> object:
    feats = make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                        max_features=200_000),
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True))
    return make_pipeline(feats, LogisticRegression(C=4.0, max_iter=2000))


def chatlens_scores(texts: list[str], y: np.ndarray, train: np.ndarray,
                    pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores on the training half and scores on the pool from chatlens's own
    default model (chatlens.train: hashed char + lemma n-grams, calibrated linear model)."""
    from chatlens.train import train_model

    labels = ["pos" if v else "neg" for v in y[train]]
    m = train_model([texts[i] for i in train], labels, measure="bench",
                    labels_order=["pos", "neg"], cv=5)
    oof = np.asarray(m.oof_proba[:, 0]) if getattr(m, "oof_proba", None) is not None else None
    s_pool = m.predict_proba([texts[i] for i in pool])[:, 0]
    if oof is None:  # no stored out-of-fold scores: score the training half in 5 folds
        oof = np.zeros(len(train))
        folds = np.arange(len(train)) % 5
        for k in range(5):
            fit = train_model([texts[train[i]] for i in np.flatnonzero(folds != k)],
                              [labels[i] for i in np.flatnonzero(folds != k)], measure="bench",
                              labels_order=["pos", "neg"], cv=2)
            held = np.flatnonzero(folds == k)
            oof[held] = fit.predict_proba([texts[train[i]] for i in held])[:, 0]
    return oof, s_pool


def run(name: str, texts: list[str], y: np.ndarray, reps: int, N: int, n: int,
        rng: np.random.Generator) -> list[dict[str, float | str]]:
    idx = rng.permutation(len(y))
    train, pool = idx[: len(y) // 2], idx[len(y) // 2:]
    t0 = time.perf_counter()
    if MODEL == "chatlens":
        oof, s_pool = chatlens_scores(texts, y, train, pool)
    else:
        clf = model()
        oof = cross_val_predict(clf, [texts[i] for i in train], y[train], cv=5,
                                method="predict_proba")[:, 1]
        clf.fit([texts[i] for i in train], y[train])  # type: ignore[attr-defined]
        s_pool = clf.predict_proba([texts[i] for i in pool])[:, 1]  # type: ignore[attr-defined]
    print(f"{name}: trained on {len(train):,} in {time.perf_counter() - t0:.0f}s; "
          f"pool {len(pool):,} (prevalence {y[pool].mean():.3f})")
    pos, neg = np.flatnonzero(y[pool] == 1), np.flatnonzero(y[pool] == 0)
    rows = []
    for p in PREVALENCES:
        k = round(p * N)
        if k > len(pos) or N - k > len(neg):
            n_pop = min(int(len(pos) / p), int(len(neg) / (1 - p)))
            k = round(p * n_pop)
        else:
            n_pop = N
        for _ in range(reps):
            members = np.concatenate([rng.choice(pos, k, replace=False),
                                      rng.choice(neg, n_pop - k, replace=False)])
            truth = y[pool][members].mean()
            scores = s_pool[members]
            audit = rng.choice(len(members), n, replace=False)
            yl = y[pool][members][audit]
            ests = {
                "audit": audit_estimate(yl, len(members)),
                "ppi": ppi_finite_estimate(yl, scores[audit], scores),
                "quantify": quantify_estimate(y[train], oof, scores, "pacc", n_boot=200,
                                              rng=rng),
                "naive": naive_estimate(scores),
            }
            for method, e in ests.items():
                rows.append({"data": name, "prevalence": p, "method": method,
                             "abs_err": abs(e.point - truth),
                             "covered": float(e.lower <= truth <= e.upper), "width": e.width})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=100, help="populations per prevalence")
    ap.add_argument("--N", type=int, default=2000, help="population size")
    ap.add_argument("--n", type=int, default=300, help="audit sample size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", choices=["chatlens", "tfidf-logreg"], default="chatlens")
    args = ap.parse_args()
    global MODEL
    MODEL = args.model
    if not DATA.exists():
        raise SystemExit(f"labelled data not found at {DATA}")
    rng = np.random.default_rng(args.seed)
    rows = []
    for name, (texts, y) in datasets().items():
        rows += run(name, texts, y, args.reps, args.N, args.n, rng)
    df = pd.DataFrame(rows)
    table = df.groupby(["data", "method"]).agg(MAE=("abs_err", "mean"),
                                               coverage=("covered", "mean"),
                                               width=("width", "mean")).round(4)
    print(table.to_string())
    by_p = df.pivot_table(index=["data", "prevalence"], columns="method", values="covered")
    print("\ncoverage by planted prevalence\n" + by_p.round(3).to_string())
    summary = {}
    for name in df["data"].unique():
        t = table.loc[name]
        summary[name] = {
            "coverage_ppi>=0.93": bool(t.loc["ppi", "coverage"] >= 0.93),
            "coverage_audit>=0.93": bool(t.loc["audit", "coverage"] >= 0.93),
            "ppi_MAE/naive_MAE": round(float(t.loc["ppi", "MAE"] / t.loc["naive", "MAE"]), 3),
            "ppi_width/audit_width": round(float(t.loc["ppi", "width"] / t.loc["audit", "width"]),
                                           3),
        }
    print(json.dumps({"model": args.model, "reps_per_prevalence": args.reps, "N": args.N,
                      "n_audit": args.n,
                      "targets": summary}, indent=2))


if __name__ == "__main__":
    main()
