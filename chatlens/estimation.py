"""Prevalence estimates for a project: frames from the store, labels from the label store,
numbers from :mod:`chatlens.estimate`.

For a measure and value, ``yhat`` is the model's score for that value on each message of the
population: the probability of the positive label for binary measures (rule scorers give 0 or
1), the indicator "coded as this value" for categorical ones. Audit labels come only from audit
samples of the measure; labels made for training or imported without a sample count only for
quantification.
"""

from __future__ import annotations

from collections import Counter
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
    ppi_finite_stratified,
    quantify_estimate,
)
from chatlens.labelling import consensus
from chatlens.store.frames import measure_frame, population_size, scores_for

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
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        e = self.estimate.as_dict()
        return {"measure": self.measure, "value": self.value, "group": self.group,
                "point": e["point"], "lower": e["lower"], "upper": e["upper"],
                "level": e["level"], "method": e["method"], "n_labelled": e["n_labelled"],
                "N_population": e["N_population"], "too_small": e["too_small"],
                "notes": e["notes"], "method_reason": self.method_reason,
                "naive": {"point": self.naive.point, "lower": self.naive.lower,
                          "upper": self.naive.upper, "label": "naive (ignores classifier error)"},
                "population": self.population, "run_id": self.run_id,
                "warnings": self.warnings}


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
    strata_by: dict[str, str | None]  # audit uid -> the variable its sample was stratified by
    warnings: list[str]


def measure_labels(project: Project, codebook: str, measure: str) -> Labels:
    store = project.labels()
    rows = store.labels_arrow(codebook, measure).to_pylist()
    audit, ties_a = consensus([r for r in rows if r["sample_kind"] == "audit"])
    other, ties_o = consensus([r for r in rows if r["sample_kind"] != "audit"])
    strata_by: dict[str, str | None] = {}
    warnings = []
    size_now = population_size(project.store, codebook, measure)
    for s in store.samples(codebook, measure, "audit"):
        design = s["design"]
        for item in store.sample_items(s["sample_id"]):
            strata_by[item["uid"]] = design.get("strata_by")
        then = design.get("frame_size")
        if then is not None and then != size_now and s["labelled"]:
            warnings.append(
                f"The population of {measure} had {then:,} messages when {s['sample_id']} was "
                f"drawn and has {size_now:,} now; messages added since had no chance of being "
                "audited, so the estimate speaks for the earlier population. Draw a new audit "
                "sample to cover the new messages.")
    return Labels(audit=audit, other=other, ties=len(ties_a) + len(ties_o),
                  strata_by=strata_by, warnings=warnings)


def _one(project: Project, m: Measure, value: str, rows: list[dict[str, Any]], y_hat: np.ndarray,
         labels: Labels, method: str, level: float, codebook: str) -> tuple[Estimate, Estimate,
                                                                             str]:
    uids = [r["uid"] for r in rows]
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
        designs = {labels.strata_by.get(uids[i]) for i in in_frame}
        if designs == {None}:
            if method == "audit":
                return audit_estimate(y, N, level), naive, reason
            return ppi_finite_estimate(y, y_hat[in_frame], y_hat, level), naive, reason
        if len(designs) > 1:
            raise UsageError(f"The audit labels of {m.id} come from samples of different designs "
                             f"({', '.join(str(d) for d in designs)}); estimate with one design.")
        (by,) = designs
        col = {"chat": "chat_key", "month": "month"}[str(by)]
        strata_all = [str(r[col]) for r in rows]
        strata_l = [strata_all[i] for i in in_frame]
        try:
            if method == "audit":
                sizes = dict(Counter(strata_all))
                return audit_estimate(y, N, level, strata=strata_l, strata_sizes=sizes), \
                    naive, reason
            return ppi_finite_stratified(y, y_hat[in_frame], strata_l, y_hat, strata_all,
                                         level), naive, reason
        except ValueError as exc:
            raise UsageError(f"The audit sample of {m.id} is stratified by {by}, and in this "
                             f"population {exc}. Estimate a population the sample covers, or "
                             "draw a larger sample.") from None
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
            y_hat = yhat(m, v, [r["value"] for r in rows], [r["score"] for r in rows])
            est, naive, reason = _one(project, m, v, rows, y_hat, labels, method, level, cb.name)
            out.append(Row(measure, v, g, est, naive, reason, pop.as_dict(),
                           warnings=list(labels.warnings)))
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
