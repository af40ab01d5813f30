"""Vectorised prevalence estimates for the dashboard and the report.

The same estimators and choice rule as :func:`chatlens.estimation.estimate`, but the measure's
frame stays in Arrow/numpy instead of Python objects, so a measure over ten million messages is
estimated in seconds. Nothing is written to the project (no run is recorded): the dashboard
reads a project that another process may be writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chatlens.estimate import (
    Estimate,
    auto_method,
    naive_estimate,
    ppi_estimate,
    quantify_estimate,
)
from chatlens.estimation import measure_labels
from chatlens.store.frames import measure_frame, scores_for

if TYPE_CHECKING:
    from chatlens.codebook import Measure
    from chatlens.estimation import Labels
    from chatlens.project import Project


@dataclass(slots=True)
class WebEstimate:
    """One estimate and its naive reference, flattened for templates and JSON."""

    measure: str
    value: str
    group: str | None
    point: float
    lower: float
    upper: float
    method: str
    reason: str
    n_labelled: int
    N: int
    naive: float
    too_small: bool
    level: float

    @property
    def corrected(self) -> bool:
        """False when only the naive figure exists (no human labels)."""
        return self.method != "naive"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _yhat(m: Measure, value: str, frame: pa.Table) -> np.ndarray:
    if m.type == "binary":
        p: np.ndarray = np.asarray(
            pc.fill_null(frame["score"], 0.0).to_numpy(zero_copy_only=False), dtype=float)
        return p if value == m.positive_label() else 1.0 - p
    eq = pc.fill_null(pc.equal(frame["value"], value), False)
    out: np.ndarray = np.asarray(eq.to_numpy(zero_copy_only=False), dtype=float)
    return out


def _one(project: Project, m: Measure, value: str, frame: pa.Table, labels: Labels,
         level: float, codebook: str) -> tuple[Estimate, Estimate, str]:
    y_hat = _yhat(m, value, frame)
    naive = naive_estimate(y_hat, level) if len(y_hat) else Estimate(
        0.0, 0.0, 1.0, level, "naive", 0, 0, "empty population")
    audit_uids = pa.array(sorted(labels.audit), pa.string())
    in_mask = pc.is_in(frame["uid"], value_set=audit_uids).to_numpy(zero_copy_only=False)
    method, reason = auto_method(bool(in_mask.any()), bool(labels.other))
    if method == "naive":
        return naive, naive, reason
    if method == "ppi":
        uids = frame["uid"].filter(pa.array(in_mask)).to_pylist()
        y = np.array([1.0 if labels.audit[u] == value else 0.0 for u in uids])
        rest = y_hat[~in_mask] if (~in_mask).any() else y_hat[in_mask]
        return ppi_estimate(y, y_hat[in_mask], rest, level), naive, reason
    other = sorted(labels.other)
    got = scores_for(project.store, codebook, m.id, other).to_pylist()
    y_train = np.array([1.0 if labels.other[r["uid"]] == value else 0.0 for r in got])
    t = pa.table({"uid": [r["uid"] for r in got], "value": [r["value"] for r in got],
                  "score": pa.array([r["score"] for r in got], pa.float64())})
    s_train = _yhat(m, value, t)
    return quantify_estimate(y_train, s_train, y_hat, "acc", level, rng=0), naive, reason


def _groups(frame: pa.Table) -> list[tuple[str, pa.Table]]:
    keys = pc.fill_null(pc.cast(frame["grp"], pa.string()), "(none)")
    frame = frame.set_column(frame.schema.get_field_index("grp"), "grp", keys)
    out = []
    for g in sorted(pc.unique(keys).to_pylist()):
        out.append((g, frame.filter(pc.equal(frame["grp"], g))))
    return out


def estimates(project: Project, measure: str, by: str | None = None, level: float = 0.95,
              value: str | None = None) -> list[WebEstimate]:
    """Estimates of a measure's value(s) (binary: the positive label), overall or by group
    (``chat``, ``month``, ``week`` or ``lang``)."""
    cb = project.codebook()[0]
    m = cb.measure(measure)
    frame = measure_frame(project.store, cb.name, measure,
                          project.enrich_settings().fingerprint(), by=by)
    labels = measure_labels(project, cb.name, measure)
    values = [value] if value else ([m.positive_label()] if m.type == "binary" else m.labels)
    parts = _groups(frame) if by else [("", frame)]
    out = []
    for v in values:
        for g, part in parts:
            est, naive, reason = _one(project, m, v, part, labels, level, cb.name)
            out.append(WebEstimate(
                measure=measure, value=v, group=g or None, point=est.point, lower=est.lower,
                upper=est.upper, method=est.method, reason=reason, n_labelled=est.n_labelled,
                N=est.N_population or part.num_rows, naive=naive.point,
                too_small=bool(getattr(est, "too_small", False)), level=level))
    return out


def time_bucket(project: Project) -> str:
    """``month`` for corpora spanning more than about three months, else ``week``."""
    row = project.store.con.execute(
        "SELECT date_diff('day', min(ts), max(ts)) FROM messages").fetchall()
    days = row[0][0] if row and row[0][0] is not None else 0
    return "month" if days > 95 else "week"
