"""Label planning for a project: how many audit labels a measure needs for a target half-width.

Reads the measure's coded population and its audit labels (a pilot audit, if any), then calls
the pure functions of :mod:`chatlens.estimate.plan`. The residual variance PPI's width rests on
comes, in order of preference, from

1. a **pilot audit** (at least :data:`MIN_PILOT` labels holding both classes): the residuals
   ``y - g(f)`` of the working model chatlens's estimate would use;
2. the **out-of-fold scores** of the measure's trained model on its training labels: a
   recalibration ``g`` fitted there, and ``mean g(f)(1 - g(f))`` over the population (assumes
   the model is as well calibrated, after recalibration, on this population);
3. the **scores alone**, taken as calibrated probabilities (optimistic for an overconfident
   model; rule scorers' 0/1 scores give no plan without a pilot).

Groups and periods use the pilot's residuals within the group when it holds
:data:`MIN_PILOT` labels of both classes, else the overall recalibration applied to the group's
scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from chatlens.errors import UsageError
from chatlens.estimate.plan import (
    Plan,
    calibration,
    difference_n,
    disagreement_rate,
    model_variance,
    plan_audit,
    plan_ppi,
    residual_variance,
)
from chatlens.project.active import WorkingModel, choose_working_model, training_reference

if TYPE_CHECKING:
    from chatlens.codebook import Measure
    from chatlens.project import Project

#: Fewest audit labels (with both classes present) that count as a pilot.
MIN_PILOT = 30


@dataclass(slots=True)
class _Basis:
    """What the plan of one population rests on."""

    N: int
    p: float
    sigma2: float
    sigma2_linear: float | None
    disagreement: float | None
    basis: str
    ppi: bool  # whether a PPI plan can be made
    g_all: NDArray[np.float64] | None = None  # calibrated scores (for the active design)


def _pilot(y: NDArray[np.float64]) -> bool:
    return y.size >= MIN_PILOT and 0 < y.sum() < y.size


def _basis(f_all: NDArray[np.float64], y: NDArray[np.float64], f: NDArray[np.float64],
           g: Any, g_basis: str, working: WorkingModel | None = None) -> _Basis:
    """Plan inputs for a population with scores ``f_all`` and pilot labels ``y`` (scores ``f``);
    ``g``: a recalibration to fall back on (None: take the scores as calibrated); ``working``:
    the working model the next active batch would be drawn with (its plan uses that one)."""
    N = int(f_all.size)
    if _pilot(y):
        lg, lin, basis = residual_variance(y, f, f_all)
        g_all = working(f_all) if working is not None else g(f_all) if g is not None else None
        return _Basis(N, float(y.mean()), lg, lin, disagreement_rate(y, f), basis, True, g_all)
    binary_scores = bool(np.all((f_all == 0) | (f_all == 1)))
    if g is None and binary_scores:
        p = float(y.mean()) if y.size else (float(f_all.mean()) if N else 0.5)
        return _Basis(N, p, math.nan, None, None, "no pilot audit, and 0/1 rule scores say "
                      "nothing about their errors", False)
    cal = g(f_all) if g is not None else f_all
    decide = f_all >= 0.5
    dis = float(np.mean(np.where(decide, 1 - cal, cal))) if N else 0.0
    p = float(y.mean()) if y.size >= MIN_PILOT else float(cal.mean()) if N else 0.5
    return _Basis(N, p, model_variance(cal), None, dis, g_basis if g is not None else
                  "the model's scores taken as calibrated probabilities (no pilot audit; "
                  "optimistic when the model is overconfident)", True,
                  working(f_all) if working is not None else cal)


def _plans(b: _Basis, half_width: float, level: float, group: str | None = None) -> list[Plan]:
    plans = [plan_audit(b.p, b.N, half_width, level,
                        "pilot audit share" if "pilot" in b.basis else "estimated share", group)]
    if b.ppi:
        plans.append(plan_ppi(b.sigma2, b.p, b.N, half_width, level, b.basis, group,
                              b.disagreement, b.sigma2_linear, plans[0].n))
    if b.ppi and b.g_all is not None and b.N >= 2:
        plans.append(_active_plan(b.g_all, b.p, half_width, level, group))
    return plans


def _active_plan(g_all: NDArray[np.float64], p: float, half_width: float, level: float,
                 group: str | None) -> Plan:
    """Expected labels for an active audit (probabilities ∝ sqrt(g(1-g)) mixed with uniform)
    with the recalibrated scores as the fixed working model."""
    from chatlens.annotate.sampling import active_probabilities
    from chatlens.estimate.active import active_n

    q = active_probabilities(np.sqrt(g_all * (1 - g_all)), 1.0)
    n = active_n(g_all, q, half_width, level)
    return Plan("active", n, int(g_all.size), half_width, level, model_variance(g_all), p,
                "recalibrated scores as the working model, taken as calibrated; draw it with "
                f"`chatlens sample --design active --n {n}` (a Poisson batch: its size varies "
                "around n)", "census" if n >= g_all.size else "variance", group)


def _oof_calibration(project: Project, m: Measure, value: str, other: dict[str, str]) -> Any:
    """A recalibration from the measure's trained model's out-of-fold scores (or None)."""
    from chatlens.code.compiled import resolve_model
    from chatlens.codebook import ModelScorer
    from chatlens.train import load_model
    from chatlens.train.storage import load_out_of_fold

    for sc in m.scorers:
        if not isinstance(sc, ModelScorer):
            continue
        folder = resolve_model(sc.model, project.root / "models")
        if folder is None:
            continue
        labels = load_model(folder).labels
        oof = load_out_of_fold(folder, labels)
        uids = [u for u in oof if u in other]
        if len(uids) < MIN_PILOT or value not in labels:
            continue
        k = labels.index(value)
        y = np.array([1.0 if other[u] == value else 0.0 for u in uids])
        f = np.array([float(oof[u][k]) for u in uids])
        g = calibration(y, np.clip(f, 0.0, 1.0))
        if g is not None:
            return g, (f"out-of-fold scores of model {sc.model} on {len(uids)} training "
                       "labels, recalibrated")
    return None


def plan_labels(project: Project, measure: str, half_width: float, value: str | None = None,
                by: str | None = None, split: date | None = None, level: float = 0.95,
                ) -> dict[str, Any]:
    """Audit labels needed for intervals of ``half_width`` (a share, e.g. 0.05 for ±5 points):
    overall, per group (``by``: chat, month, week or lang) and for the difference before and
    from ``split``; for audit-only and for PPI with the current model scores."""
    from chatlens.project.estimate import measure_labels, yhat
    from chatlens.store.frames import Population, measure_frame

    if not 0 < half_width < 0.5:
        raise UsageError("--width is a half-width between 0 and 0.5 (0.05 means ±5 points).")
    if by is not None and by not in ("chat", "month", "week", "lang"):
        raise UsageError("--group must be chat, month, week or lang.")
    cb = project.codebook()[0]
    m = cb.measure(measure)
    value = value or m.positive_label() if m.type == "binary" else value
    if value is None or value not in m.labels:
        raise UsageError(f"Plan one value of {measure}: --value one of {', '.join(m.labels)}.")
    labels = measure_labels(project, cb.name, measure)
    fp = project.enrich_settings().fingerprint()

    def frame(since: date | None = None, until: date | None = None) -> tuple[
            NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], pa.Table]:
        t = measure_frame(project.store, cb.name, measure, fp, Population(since=since, until=until),
                          by=by)
        f_all = np.clip(yhat(m, value, t), 0.0, 1.0)
        audited = np.asarray(pc.is_in(t["uid"], value_set=pa.array(
            sorted(labels.audit), pa.string())).to_numpy(zero_copy_only=False), dtype=bool)
        uids = t["uid"].filter(pa.array(audited)).to_pylist()
        y = np.array([1.0 if labels.audit[u] == value else 0.0 for u in uids])
        return f_all, f_all[audited], y, t.append_column("audited", pa.array(audited))

    f_all, f, y, t = frame()
    if f_all.size < 2:
        raise UsageError(f"The population of {measure} is empty; run `chatlens code` first.")
    g, g_basis = None, ""
    if _pilot(y):
        g, g_basis = calibration(y, f), f"recalibration fitted on the pilot audit of {y.size}"
    else:
        found = _oof_calibration(project, m, value, labels.training)
        if found is not None:
            g, g_basis = found
    # the active row plans with the working model `chatlens sample --design active` would use
    working = None if np.all((f_all == 0) | (f_all == 1)) and not _pilot(y) else \
        choose_working_model(y, f, f_all, lambda: training_reference(project, m))
    overall = _basis(f_all, y, f, g, g_basis, working)
    out: dict[str, Any] = {
        "measure": measure, "value": value, "half_width": half_width, "level": level,
        "N": overall.N, "pilot": int(y.size), "basis": overall.basis,
        "plans": [p.as_dict() for p in _plans(overall, half_width, level)],
    }
    if by:
        groups: list[dict[str, Any]] = []
        keys = np.asarray(pc.fill_null(pc.cast(t["grp"], pa.string()), "(none)")
                          .to_numpy(zero_copy_only=False)).astype(str)
        aud = np.asarray(t["audited"].to_numpy(zero_copy_only=False), dtype=bool)
        y_by = np.empty(keys.size)
        y_by[aud] = y
        for key in sorted(set(keys.tolist())):
            sel = keys == key
            b = _basis(f_all[sel], y_by[sel & aud], f_all[sel & aud], g, g_basis, working)
            groups += [p.as_dict() for p in _plans(b, half_width, level, key)]
        out["groups"] = groups
        totals = {}
        for method in ("audit", "ppi"):
            rows = [r for r in groups if r["method"] == method]
            if rows:
                totals[method] = {
                    "stratified": sum(int(r["n"]) for r in rows),
                    "simple_random": min(overall.N, max(math.ceil(
                        r["n"] * overall.N / r["N"]) for r in rows)),
                }
        out["group_totals"] = totals
    if split is not None:
        sides = []
        for since, until in ((None, split - timedelta(days=1)), (split, None)):
            fa, fs, ys, _ = frame(since, until)
            if fa.size < 2:
                raise UsageError(f"No messages of {measure}'s population "
                                 f"{'before' if until else 'from'} {split.isoformat()}.")
            sides.append(_basis(fa, ys, fs, g, g_basis))
        diff: dict[str, Any] = {"split": split.isoformat()}
        a, b = sides
        diff["audit"] = dict(zip(("before", "after"), difference_n(
            a.p * (1 - a.p), a.N, b.p * (1 - b.p), b.N, half_width, level), strict=True))
        if a.ppi and b.ppi:
            sa = a.sigma2 if not math.isnan(a.sigma2) else a.sigma2_linear or 0.25
            sb = b.sigma2 if not math.isnan(b.sigma2) else b.sigma2_linear or 0.25
            diff["ppi"] = dict(zip(("before", "after"), difference_n(
                sa, a.N, sb, b.N, half_width, level), strict=True))
        diff["N"] = {"before": a.N, "after": b.N}
        out["difference"] = diff
    return out
