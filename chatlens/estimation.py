"""Prevalence estimates for a project: frames from the store, labels from the label store,
numbers from :mod:`chatlens.estimate`.

For a measure and value, ``yhat`` is the model's score for that value on each message of the
population: the probability of the positive label for binary measures (rule scorers give 0 or
1), the indicator "coded as this value" for categorical ones. Audit labels come only from audit
samples of the measure; labels made for training or imported without a sample count only for
quantification.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from chatlens.codebook import Measure
from chatlens.errors import UsageError
from chatlens.estimate import (
    Estimate,
    audit_estimate,
    auto_method,
    difference,
    naive_estimate,
    ppi_finite_estimate,
    quantify_estimate,
)
from chatlens.labelling import consensus
from chatlens.store.frames import measure_frame, scores_for

if TYPE_CHECKING:
    from chatlens.project import Project

METHODS = ("auto", "audit", "ppi", "quantify", "naive")


@dataclass(frozen=True, slots=True)
class Population:
    """A filter on a measure's population (all optional)."""

    languages: list[str] | None = None
    chats: list[str] | None = None
    since: date | None = None
    until: date | None = None
    where: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"languages": self.languages, "chats": self.chats,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "where": [f"{m}={v}" for m, v in self.where]}


@dataclass(slots=True)
class Row:
    """One estimate with its naive reference, for a measure, value and group."""

    measure: str
    value: str
    group: str | None
    estimate: Estimate
    naive: Estimate
    method_reason: str
    population: dict[str, Any]
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        e = self.estimate.as_dict()
        return {"measure": self.measure, "value": self.value, "group": self.group,
                "point": e["point"], "lower": e["lower"], "upper": e["upper"],
                "level": e["level"], "method": e["method"], "n_labelled": e["n_labelled"],
                "N_population": e["N_population"], "too_small": e["too_small"],
                "notes": e["notes"], "method_reason": self.method_reason,
                "naive": {"point": self.naive.point, "lower": self.naive.lower,
                          "upper": self.naive.upper, "label": "naive (ignores classifier error)"},
                "population": self.population, "run_id": self.run_id}


def yhat(measure: Measure, value: str, values: list[str | None],
         scores: list[float | None]) -> np.ndarray:
    """The model's score for ``value`` on each message (see the module docstring)."""
    if measure.type == "binary":
        p = np.array([0.0 if s is None else float(s) for s in scores])
        return p if value == measure.positive_label() else 1.0 - p
    return np.array([1.0 if v == value else 0.0 for v in values])


@dataclass(slots=True)
class Labels:
    audit: dict[str, str]
    other: dict[str, str]
    ties: int


def measure_labels(project: Project, codebook: str, measure: str) -> Labels:
    rows = project.labels().labels_arrow(codebook, measure).to_pylist()
    audit, ties_a = consensus([r for r in rows if r["sample_kind"] == "audit"])
    other, ties_o = consensus([r for r in rows if r["sample_kind"] != "audit"])
    return Labels(audit=audit, other=other, ties=len(ties_a) + len(ties_o))


def _one(project: Project, m: Measure, value: str, uids: list[str], y_hat: np.ndarray,
         labels: Labels, method: str, level: float, codebook: str) -> tuple[Estimate, Estimate,
                                                                             str]:
    naive = naive_estimate(y_hat, level) if len(y_hat) else Estimate(
        0.0, 0.0, 1.0, level, "naive", 0, 0, "empty population")
    in_frame = [i for i, u in enumerate(uids) if u in labels.audit]
    if method == "auto":
        method, reason = auto_method(bool(in_frame), bool(labels.other))
    else:
        reason = f"Method {method} was requested."
    N = len(uids)
    if method == "naive":
        return naive, naive, reason
    if method in ("audit", "ppi"):
        if not in_frame:
            raise UsageError(f"No audit labels for {m.id} in this population; draw one with "
                             f"`chatlens sample --measure {m.id} --kind audit` and label it.")
        y = np.array([1.0 if labels.audit[uids[i]] == value else 0.0 for i in in_frame])
        if method == "audit":
            return audit_estimate(y, N, level), naive, reason
        return ppi_finite_estimate(y, y_hat[in_frame], y_hat, level), naive, reason
    if method == "quantify":
        if not labels.other:
            raise UsageError(f"No labels for {m.id} outside audit samples to quantify with.")
        other_uids = sorted(labels.other)
        t = scores_for(project.store, codebook, m.id, other_uids)
        got = t.to_pylist()
        y_train = np.array([1.0 if labels.other[r["uid"]] == value else 0.0 for r in got])
        s_train = yhat(m, value, [r["value"] for r in got], [r["score"] for r in got])
        return quantify_estimate(y_train, s_train, y_hat, "acc", level, rng=0), naive, reason
    raise UsageError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")


def estimate(project: Project, measure: str, value: str | None = None, by: str | None = None,
             method: str = "auto", level: float = 0.95, population: Population | None = None,
             ) -> list[Row]:
    """Estimates for one measure: each value asked for (binary: the positive label; categorical
    without ``value``: every label), overall or per group."""
    cb = project.codebook()[0]
    m = cb.measure(measure)
    if value is not None and value not in m.labels:
        raise UsageError(f"{value!r} is not a label of {measure} ({', '.join(m.labels)}).")
    if by is not None and by not in ("chat", "month", "week", "lang"):
        raise UsageError("--by must be chat, month, week or lang.")
    pop = population or Population()
    frame = measure_frame(project.store, cb.name, measure,
                          project.enrich_settings().fingerprint(), pop.languages, pop.chats,
                          pop.since, pop.until, pop.where, by).to_pylist()
    labels = measure_labels(project, cb.name, measure)
    values = [value] if value else ([m.positive_label()] if m.type == "binary" else m.labels)
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for r in frame:
        groups.setdefault(r["grp"] if by else None, []).append(r)
    if not groups:
        groups = {None: []}
    out = []
    for v in values:
        for g, rows in sorted(groups.items(), key=lambda kv: str(kv[0])):
            uids = [r["uid"] for r in rows]
            y_hat = yhat(m, v, [r["value"] for r in rows], [r["score"] for r in rows])
            est, naive, reason = _one(project, m, v, uids, y_hat, labels, method, level, cb.name)
            out.append(Row(measure, v, g, est, naive, reason, pop.as_dict()))
    return out


def compare_periods(project: Project, measure: str, value: str | None, split: date,
                    method: str = "auto", level: float = 0.95,
                    population: Population | None = None) -> dict[str, Any]:
    """The share before ``split`` and from ``split`` on, and ``after - before`` with its
    interval (independent estimates of the two periods)."""
    pop = population or Population()
    before = replace(pop, until=min(d for d in (pop.until, split - timedelta(days=1)) if d))
    after = replace(pop, since=max(d for d in (pop.since, split) if d))
    (b,) = project.estimate(measure, value, None, method, level, before)[:1]
    (a,) = project.estimate(measure, value, None, method, level, after)[:1]
    return {"measure": measure, "value": a.value, "split": split.isoformat(),
            "before": b.as_dict(), "after": a.as_dict(),
            "difference": difference(a.estimate, b.estimate).as_dict()}
