"""Active audit samples of a project: the working model, the draw, and the estimate.

An active audit is drawn in *batches*. Each batch is its own Poisson design
(:func:`chatlens.annotate.sampling.draw_active`): before the draw, the working model ``g`` is
fixed (:func:`choose_working_model`) — the measure's score recalibrated,
``sigmoid(a + b·logit(score))``, on the audit labels that exist at that moment when they hold
enough of each class; else on the model's training labels (its out-of-fold scores) or the few
audit labels, with the intercept then moved to the population's prevalence estimated from its
scores alone (EMQ); or the score itself. Message ``i`` is then drawn with probability ``pi_i``
proportional to ``sqrt(g_i(1 - g_i))`` mixed with a uniform floor, and ``pi_i`` is stored with
the item. The batch's design records ``g`` (parameters, labels it was fitted on, prior shift),
so the estimate uses the same function.

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
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from chatlens.errors import UsageError
from chatlens.estimate import Estimate
from chatlens.estimate.active import ppi_active_estimate
from chatlens.estimate.audit import z_value
from chatlens.estimate.ppi import RECALIBRATE_MIN_CLASS, _logistic_fit, _logit
from chatlens.estimate.quantify import _emq

if TYPE_CHECKING:
    from chatlens.codebook import Measure
    from chatlens.project import Project


#: Audit labels of the rarer class from which the working model is fitted on the audit alone
#: (as PPI's recalibration); with fewer it is fitted on the model's training labels and moved to
#: the population's prevalence (:func:`choose_working_model`).
FIT_MIN_CLASS = RECALIBRATE_MIN_CLASS


@dataclass(frozen=True, slots=True)
class WorkingModel:
    """``g = sigmoid(a + b·logit(score))`` of the positive label, or the score itself (``None``).

    ``basis`` says which labels ``a`` and ``b`` were fitted on (``audit`` or ``training``);
    ``prior`` is ``(from, to)`` when ``a`` was then moved from the prevalence of those labels to
    the population's EMQ prevalence (already included in ``a``)."""

    a: float | None = None
    b: float | None = None
    fitted_on: int = 0
    basis: str = "audit"
    prior: tuple[float, float] | None = None

    def __call__(self, score: NDArray[np.float64]) -> NDArray[np.float64]:
        s = np.asarray(score, dtype=float)
        if self.a is None or self.b is None:
            return np.asarray(np.clip(s, 0.0, 1.0), dtype=float)
        return np.asarray(1.0 / (1.0 + np.exp(-(self.a + self.b * _logit(s)))), dtype=float)

    def as_dict(self) -> dict[str, Any]:
        if self.a is None:
            return {"form": "score", "fitted_on": 0}
        d: dict[str, Any] = {"form": "sigmoid(a + b*logit(score))", "a": self.a, "b": self.b,
                             "fitted_on": self.fitted_on, "basis": self.basis}
        if self.prior is not None:
            d["prior_shift"] = {"method": "EMQ on the population's scores (no audit label)",
                                "from": self.prior[0], "to": self.prior[1]}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkingModel:
        if d.get("form") == "score":
            return cls()
        shift = d.get("prior_shift")
        return cls(float(d["a"]), float(d["b"]), int(d.get("fitted_on", 0)),
                   str(d.get("basis", "audit")),
                   (float(shift["from"]), float(shift["to"])) if shift else None)


def fit_working_model(y: NDArray[np.float64], score: NDArray[np.float64],
                      population: NDArray[np.float64] | None = None,
                      basis: str = "audit") -> WorkingModel:
    """Recalibrate ``score`` on labels ``y`` (any design: this only has to be fixed before the
    draw, not unbiased). One pseudo-error at each end of the scores keeps a perfect separation
    (a rule the earlier audit never caught wrong) from giving ``g`` of 0 or 1. Without labels
    of both classes the score itself is the working model.

    ``population`` (the scores of the population to be drawn from): also move the intercept from
    the labels' prevalence to the population's, estimated from these scores alone by EMQ
    (Saerens et al. 2002: the maximum-likelihood prevalence under prior shift). It reads no
    audit label, so ``g`` is still fixed before the draw; where the labels' prevalence differs
    from the population's (a model trained at 68 % scoring a population at 5 %), an unshifted
    ``g`` puts the probabilities where the model is unsure at the wrong prevalence."""
    if y.size == 0 or y.min() == y.max():
        return WorkingModel()
    z = _logit(score)
    fit = _logistic_fit(np.r_[z, z.max(), z.min()], np.r_[y, 0.0, 1.0])
    if fit is None:
        return WorkingModel()
    a, b = fit
    prior = None
    if population is not None and population.size:
        base = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        half = 0.5 / population.size
        q = float(np.clip(_emq(y[None, :], z[None, :], _logit(population)[None, :])[0],
                          half, 1 - half))
        a += math.log(q / (1 - q)) - math.log(base / (1 - base))
        prior = (base, q)
    return WorkingModel(a, b, int(y.size), basis, prior)


def choose_working_model(y: NDArray[np.float64], score: NDArray[np.float64],
                         population: NDArray[np.float64],
                         training: Callable[[], tuple[NDArray[np.float64],
                                                      NDArray[np.float64]] | None] | None = None,
                         ) -> WorkingModel:
    """The working model of the next active batch, from the audit labels ``y`` (their scores
    ``score``) stored now and the ``population``'s scores: fitted on the audit when it holds
    ``FIT_MIN_CLASS`` of each class (it describes this population); else fitted on the model's
    training labels and out-of-fold scores (``training()``, when there are such) or on the few
    audit labels, and moved to the population's EMQ prevalence; else the score itself."""
    rare = min(float(y.sum()), float(y.size - y.sum())) if y.size else 0.0
    if rare >= FIT_MIN_CLASS:
        return fit_working_model(y, score)
    ref = training() if training is not None else None
    if ref is not None and ref[0].size and ref[0].min() < ref[0].max():
        return fit_working_model(ref[0], ref[1], population, basis="training")
    return fit_working_model(y, score, population)


def training_reference(project: Project, m: Measure,
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """The measure's training labels (``y``) and its scores on them out of fold (``score``:
    the measure's own score, rules and models combined, each model answering from the fold model
    that never learned the message; :func:`chatlens.project.train.cross_fitted_codes`), or None
    when no model of the measure learned from the project's labels."""
    from chatlens.project.estimate import measure_labels
    from chatlens.project.train import cross_fitted_codes

    training = measure_labels(project, project.codebook()[0].name, m.id).training
    if not training:
        return None
    codes, info = cross_fitted_codes(project, m.id, sorted(training))
    if not info["models"] or codes.num_rows == 0:
        return None
    positive = m.positive_label()
    uids = codes["uid"].to_pylist()
    score = np.array([0.0 if s is None else float(s) for s in codes["score"].to_pylist()])
    return np.array([1.0 if training[u] == positive else 0.0 for u in uids]), score


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
