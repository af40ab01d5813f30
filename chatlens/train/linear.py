"""Linear candidates, probability calibration and cross-validated metrics.

Every candidate ends as a plain linear head ``S = X @ W + b`` (``W``: features × heads; one head
for a binary measure, one per class otherwise), so a saved model is only arrays:

* ``logreg``: logistic regression (one-vs-rest, SGD solver: fast on ~10⁵–10⁶ sparse columns).
* ``linsvm-calibrated``: linear SVM (``LinearSVC``, C=0.3); its margins are calibrated below.
* ``nb-svm``: Wang & Manning's NB-SVM: features scaled by per-class NB log-count ratios ``r``,
  linear SVM per class; folded back into the head as ``W[:, k] = r_k * w_k``.

Calibration maps decision scores to probabilities: Platt scaling (``sigmoid(a*s + c)``) for
binary measures, a multinomial logistic regression on the class scores ("matrix scaling") for
categorical ones. It is fitted on *out-of-fold* scores, never on scores of training documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.svm import LinearSVC

CANDIDATES = ("logreg", "linsvm-calibrated", "nb-svm")


@dataclass
class LinearHead:
    W: np.ndarray  # (n_features, heads)
    b: np.ndarray  # (heads,)

    def scores(self, x: sp.csr_matrix) -> np.ndarray:
        out: np.ndarray = np.asarray(x @ self.W) + self.b
        return out


def _targets(y: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """Binary: one target (class 1); categorical: one-vs-rest per class."""
    if n_classes == 2:
        return [y == 1]
    return [y == k for k in range(n_classes)]


def fit_head(name: str, x: sp.csr_matrix, y: np.ndarray, n_classes: int,
             sample_weight: np.ndarray | None = None, seed: int = 0) -> LinearHead:
    """Fit candidate ``name`` on features ``x`` and class indices ``y`` (0..n_classes-1)."""
    cols: list[np.ndarray] = []
    bias: list[float] = []
    xb = (x > 0).astype(np.float64) if name == "nb-svm" else None
    for t in _targets(y, n_classes):
        if t.all() or not t.any():  # a class absent from this fold: never predicted
            cols.append(np.zeros(x.shape[1]))
            bias.append(-10.0 if not t.any() else 10.0)
            continue
        if name == "logreg":
            m: Any = SGDClassifier(loss="log_loss", alpha=2e-5, max_iter=30, tol=None,
                                   random_state=seed)
            m.fit(x, t, sample_weight=sample_weight)
            r = None
        elif name == "linsvm-calibrated":
            m = LinearSVC(C=0.3, random_state=seed).fit(x, t, sample_weight=sample_weight)
            r = None
        elif name == "nb-svm":
            assert xb is not None
            p = np.asarray(xb[t].sum(axis=0)).ravel() + 1.0
            q = np.asarray(xb[~t].sum(axis=0)).ravel() + 1.0
            r = np.log((p / p.sum()) / (q / q.sum()))
            m = LinearSVC(C=0.3, random_state=seed).fit(
                sp.csr_matrix(x.multiply(r)), t, sample_weight=sample_weight)
        else:
            raise ValueError(f"unknown candidate {name!r}; choose from {', '.join(CANDIDATES)}")
        w = np.asarray(m.coef_, dtype=np.float64).ravel()
        cols.append(w * r if r is not None else w)
        bias.append(float(np.asarray(m.intercept_).ravel()[0]))
    return LinearHead(W=np.column_stack(cols), b=np.asarray(bias))


@dataclass
class Calibrator:
    """Scores → probabilities over the model's classes."""

    A: np.ndarray  # (heads, out) ; binary: (1, 1)
    c: np.ndarray  # (out,)

    def proba(self, s: np.ndarray) -> np.ndarray:
        z = s @ self.A + self.c
        if z.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -500, 500)))
            return np.column_stack([1.0 - p1, p1])
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))


def fit_calibrator(s: np.ndarray, y: np.ndarray, n_classes: int,
                   sample_weight: np.ndarray | None = None) -> Calibrator:
    present = np.unique(y)
    if len(present) < 2:
        raise ValueError("calibration needs at least two classes")
    lr = LogisticRegression(C=100.0, max_iter=2000)
    lr.fit(s, y, sample_weight=sample_weight)
    if n_classes == 2:
        return Calibrator(A=lr.coef_.T.copy(), c=lr.intercept_.copy())
    A = np.zeros((s.shape[1], n_classes))
    c = np.full(n_classes, -30.0)  # classes missing from the data get ~0 probability
    for j, k in enumerate(lr.classes_):
        A[:, k] = lr.coef_[j]
        c[k] = lr.intercept_[j]
    return Calibrator(A=A, c=c)


def cross_fitted_proba(s: np.ndarray, y: np.ndarray, folds: Sequence[np.ndarray],
                       n_classes: int, sample_weight: np.ndarray | None) -> np.ndarray:
    """Calibrated out-of-fold probabilities: each fold calibrated on the other folds' scores."""
    p = np.zeros((len(y), n_classes))
    for val in folds:
        train = np.setdiff1d(np.arange(len(y)), val)
        sw = sample_weight[train] if sample_weight is not None else None
        p[val] = fit_calibrator(s[train], y[train], n_classes, sw).proba(s[val])
    return p


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: binary on P(class 1), categorical on the top label."""
    if p.shape[1] == 2:
        conf, hit = p[:, 1], (y == 1).astype(np.float64)
    else:
        conf, hit = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    idx = np.minimum((conf * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(conf[m].mean() - hit[m].mean())
    return float(total / max(1, len(y)))


def metrics(p: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Per-class P/R/F1, macro/weighted F1, accuracy, ECE, Brier, confusion (rows = truth)."""
    pred = p.argmax(axis=1)
    ks = list(range(len(labels)))
    prec, rec, f1, sup = precision_recall_fscore_support(y, pred, labels=ks, zero_division=0)
    onehot = np.eye(len(labels))[y]
    return {
        "n": len(y),
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, labels=ks, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, labels=ks, average="weighted", zero_division=0)),
        "ece": ece(p, y),
        "brier": float(((p - onehot) ** 2).sum(axis=1).mean()),
        "per_class": {lab: {"precision": float(prec[k]), "recall": float(rec[k]),
                            "f1": float(f1[k]), "support": int(sup[k])}
                      for k, lab in enumerate(labels)},
        "confusion": confusion_matrix(y, pred, labels=ks).tolist(),
    }
