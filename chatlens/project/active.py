"""Active audit samples of a project: the working model, the draw, and the estimate.

An active audit is drawn in *batches*. Each batch is its own Poisson design
(:func:`chatlens.annotate.sampling.draw_active`): before the draw, the working model ``g`` is
fixed — the measure's score recalibrated on the audit labels that exist at that moment
(``sigmoid(a + b·logit(score))``, with one pseudo-error at each end of the scores so that a
rule that separated the earlier audit still leaves some uncertainty), or the score itself when
there are none. Message ``i`` is then drawn with probability ``pi_i`` proportional to
``sqrt(g_i(1 - g_i))`` mixed with a uniform floor, and ``pi_i`` is stored with the item. The
batch's design records ``g``'s two parameters, so the estimate uses the same function.

Each batch gives an unbiased Horvitz-Thompson difference estimate
(:func:`chatlens.estimate.active.ppi_active_estimate`; with ``g = 0`` it is the audit-only HT
estimate), whatever ``g`` is: a poor ``g`` costs width, never validity. Batches are independent
draws given the earlier ones, so their estimates combine as ``sum_b w_b·est_b`` with
``w_b ∝`` the batch's *planned* size (fixed before its draw, not read from its labels) and
variance ``sum_b w_b²·se_b²``. A group (``--by``) of the population is a Poisson sample of its
own with the same ``pi``, so the same estimator applies to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chatlens.errors import UsageError
from chatlens.estimate import Estimate
from chatlens.estimate.active import ppi_active_estimate
from chatlens.estimate.audit import z_value
from chatlens.estimate.ppi import _logistic_fit, _logit


@dataclass(frozen=True, slots=True)
class WorkingModel:
    """``g = sigmoid(a + b·logit(score))`` of the positive label, or the score itself (``None``)."""

    a: float | None = None
    b: float | None = None
    fitted_on: int = 0

    def __call__(self, score: NDArray[np.float64]) -> NDArray[np.float64]:
        s = np.asarray(score, dtype=float)
        if self.a is None or self.b is None:
            return np.asarray(np.clip(s, 0.0, 1.0), dtype=float)
        return np.asarray(1.0 / (1.0 + np.exp(-(self.a + self.b * _logit(s)))), dtype=float)

    def as_dict(self) -> dict[str, Any]:
        if self.a is None:
            return {"form": "score", "fitted_on": 0}
        return {"form": "sigmoid(a + b*logit(score))", "a": self.a, "b": self.b,
                "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkingModel:
        if d.get("form") == "score":
            return cls()
        return cls(float(d["a"]), float(d["b"]), int(d.get("fitted_on", 0)))


def fit_working_model(y: NDArray[np.float64], score: NDArray[np.float64]) -> WorkingModel:
    """Recalibrate ``score`` on earlier audit labels ``y`` (any design: this only has to be
    fixed before the draw, not unbiased). One pseudo-error at each end of the scores keeps a
    perfect separation (a rule the earlier audit never caught wrong) from giving ``g`` of 0 or
    1. Without labels of both classes the score itself is the working model."""
    if y.size == 0 or y.min() == y.max():
        return WorkingModel()
    z = _logit(score)
    fit = _logistic_fit(np.r_[z, z.max(), z.min()], np.r_[y, 0.0, 1.0])
    return WorkingModel() if fit is None else WorkingModel(fit[0], fit[1], int(y.size))


def check_spread(g: NDArray[np.float64], measure: str) -> NDArray[np.float64]:
    """``sqrt(g(1-g))``, the allocation's weights; refuses a working model without uncertainty."""
    spread = np.sqrt(np.clip(g * (1.0 - g), 0.0, None))
    if spread.size == 0 or float(spread.max() - spread.min()) <= 1e-9:
        raise UsageError(
            f"An active audit of {measure} needs a working model that is unsure about some "
            "messages, and its scores are all alike (0/1 rule decisions with no audit labels to "
            "recalibrate them, or one value for all). Draw a random audit first (`chatlens "
            f"sample --measure {measure} --kind audit`), label it, then draw the active batch.")
    return spread


@dataclass(frozen=True, slots=True)
class Batch:
    """One active batch as stored: its inclusion probabilities and working model."""

    sample_id: str
    pi: dict[str, float]  # drawn uid -> pi
    working: WorkingModel
    planned_n: float


def batch_from_design(sample_id: str, design: dict[str, Any],
                      items: list[dict[str, Any]]) -> Batch:
    pi = {i["uid"]: float(i["inclusion_prob"]) for i in items}
    return Batch(sample_id, pi, WorkingModel.from_dict(design["working_model"]),
                 float(design["expected_n"]))


def active_estimate(batches: list[Batch], method: str, y: NDArray[np.float64], uids: list[str],
                    score_all: NDArray[np.float64], score_l: NDArray[np.float64], positive: bool,
                    level: float) -> Estimate:
    """The estimate of one group from the active batches: labels ``y`` of its audited ``uids``,
    the positive label's score on the group (``score_all``) and on the audited (``score_l``);
    ``positive`` False when the value estimated is the other label (``g`` becomes ``1 - g``).
    ``method`` ``ppi`` (HT difference estimator) or ``audit`` (HT, ``g = 0``)."""
    N = score_all.size
    parts: list[tuple[Batch, Estimate]] = []
    short: list[str] = []
    for b in batches:
        mask = np.array([u in b.pi for u in uids], dtype=bool)
        if mask.sum() < 2:
            short.append(b.sample_id)
            continue
        pi = np.array([b.pi[u] for u in uids if u in b.pi])
        if method == "audit":
            g_l, g_all = np.zeros(int(mask.sum())), np.zeros(N)
        else:
            g_l, g_all = b.working(score_l[mask]), b.working(score_all)
            if not positive:
                g_l, g_all = 1.0 - g_l, 1.0 - g_all
        parts.append((b, ppi_active_estimate(y[mask], g_l, pi, g_all, level)))
    if not parts:
        raise ValueError("no active batch has two audited messages here")
    what = ("Horvitz-Thompson audit-only estimate" if method == "audit" else
            "prediction-powered HT difference estimate (inverse-probability weighted)")
    if len(parts) == 1:
        (b, est), = parts
        notes = f"{what} from the active audit {b.sample_id} (Poisson design, pi recorded " \
                f"per item); {est.notes.split('; ', 1)[1] if '; ' in est.notes else 'CLT'}"
    else:
        total = sum(b.planned_n for b, _ in parts)
        w = [b.planned_n / total for b, _ in parts]
        point = sum(wi * e.point for wi, (_, e) in zip(w, parts, strict=True))
        se = math.sqrt(sum((wi * (e.se or 0.0)) ** 2 for wi, (_, e) in zip(w, parts,
                                                                             strict=True)))
        z = z_value(level)
        est = Estimate(point, max(point - z * se, 0.0), min(point + z * se, 1.0), level,
                       "ppi", sum(e.n_labelled for _, e in parts), N, "", se)
        ids = ", ".join(b.sample_id for b, _ in parts)
        notes = (f"{what} from {len(parts)} batches of an active audit ({ids}), each its own "
                 "Poisson design, combined with weights fixed by their planned sizes; CLT interval")
    if short:
        notes += (f"; batch(es) {', '.join(short)} have fewer than two audited messages here "
                  "and are left out")
    return replace(est, method="audit" if method == "audit" else "ppi", notes=notes)
