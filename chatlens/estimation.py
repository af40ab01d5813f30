"""Prevalence estimates for a project: frames from the store, labels from the label store,
numbers from :mod:`chatlens.estimate`.

For a measure and value, ``yhat`` is the model's score for that value on each message of the
population: the probability of the positive label for binary measures (rule scorers give 0 or
1), the indicator "coded as this value" for categorical ones. Audit labels come only from audit
samples of the measure; labels made for training or imported without a sample count only for
quantification.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
from chatlens.store.frames import STRATUM_COLUMN, measure_frame, population_size, scores_for

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


def yhat(measure: Measure, value: str, codes: pa.Table) -> np.ndarray:
    """The model's score for ``value`` on each row of ``codes`` (columns ``value``, ``score``;
    see the module docstring)."""
    if measure.type == "binary":
        p = np.asarray(pc.fill_null(codes["score"], 0.0).to_numpy(zero_copy_only=False),
                       dtype=float)
        return p if value == measure.positive_label() else 1.0 - p
    eq = pc.fill_null(pc.equal(codes["value"], value), False)
    return np.asarray(eq.to_numpy(zero_copy_only=False), dtype=float)


def _groups(frame: pa.Table) -> list[tuple[str, pa.Table]]:
    """The frame split by its ``grp`` column (missing groups read "(none)"), sorted."""
    keys = pc.fill_null(pc.cast(frame["grp"], pa.string()), "(none)")
    frame = frame.set_column(frame.schema.get_field_index("grp"), "grp", keys)
    # one sort by group, then slices: filtering once per group is quadratic with many groups
    enc = pc.dictionary_encode(keys.combine_chunks() if isinstance(keys, pa.ChunkedArray)
                               else keys)
    codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False))
    names = enc.dictionary.to_pylist()
    counts = np.bincount(codes, minlength=len(names))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    grouped = frame.take(pa.array(np.argsort(codes, kind="stable")))
    return [(names[i], grouped.slice(int(starts[i]), int(counts[i])))
            for i in sorted(range(len(names)), key=names.__getitem__)]


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


def out_of_fold_codes(project: Project, measure: str, uids: list[str]) -> tuple[pa.Table, int]:
    """uid, value, score of ``measure`` for labelled messages, coded as if its models had not
    learned from them, and how many were re-coded.

    A model scores its own training messages too well, so error rates measured on them would
    flatter it. Messages in a model's training data (its ``out_of_fold.parquet``) are coded
    again by the codebook with that model answering from its out-of-fold probabilities; the
    others keep their stored codes.
    """
    from chatlens.code import code_table, compile_codebook
    from chatlens.store.stages import code_input
    from chatlens.train.scorer import OutOfFoldScorer

    cb = project.codebook()[0]
    stored = scores_for(project.store, cb.name, measure, uids)
    if not any(s.type == "model" for s in cb.measure(measure).scorers):
        return stored, 0
    compiled = compile_codebook(cb, models_dir=project.root / "models", out_of_fold=measure)
    (cm,) = [x for x in compiled.measures if x.id == measure]
    trained_on = {u for sc in cm.scorers if isinstance(sc, OutOfFoldScorer) for u in sc.oof}
    redo = sorted(trained_on.intersection(stored["uid"].to_pylist()))
    if not redo:
        return stored, 0
    table = code_input(project.store, project.enrich_settings().fingerprint(), redo)
    fresh = code_table(table, compiled, write=frozenset({measure}))
    fresh = fresh.filter(fresh["in_population"]).select(["uid", "value", "score"])
    # a message that could not be re-coded keeps its stored code rather than drop out
    keep = stored.filter(pc.invert(pc.is_in(stored["uid"], value_set=fresh["uid"])))
    merged = pa.concat_tables([keep, fresh.cast(keep.schema)])
    return merged.sort_by("uid"), fresh.num_rows


def _unestimable(value: str, frame: pa.Table, labels: Labels, in_frame: np.ndarray,
                 y_hat: np.ndarray, method: str, level: float, naive: Estimate) -> Estimate:
    """A group with fewer than two audit labels: the interval is the whole range (the data say
    nothing more), the point the model's share corrected by the one label if there is one."""
    point = naive.point
    if in_frame.size == 1:
        uid = frame["uid"][int(in_frame[0])].as_py()
        y = 1.0 if labels.audit[uid] == value else 0.0
        point = min(1.0, max(0.0, point + y - float(y_hat[in_frame[0]])))
    return Estimate(point, 0.0, 1.0, level, "audit" if method == "audit" else "ppi",
                    int(in_frame.size), frame.num_rows,
                    f"{int(in_frame.size)} audit label(s) in this group: too few for an "
                    "interval narrower than 0-100%")


def _one(m: Measure, value: str, frame: pa.Table, labels: Labels, method: str, level: float,
         labelled: Callable[[], tuple[pa.Table, int]], grouped: bool = False,
         ) -> tuple[Estimate, Estimate, str]:
    """One value in one group. ``frame`` has an ``audited`` column; ``labelled()`` gives the
    codes of the non-audit labelled messages (for quantify, see :func:`out_of_fold_codes`)."""
    y_hat = yhat(m, value, frame)
    naive = naive_estimate(y_hat, level) if len(y_hat) else Estimate(
        0.0, 0.0, 1.0, level, "naive", 0, 0, "empty population")
    in_frame = np.flatnonzero(frame["audited"].to_numpy(zero_copy_only=False))
    if method == "auto":
        method, reason = auto_method(bool(in_frame.size), bool(labels.other))
    else:
        reason = f"Method {method} was requested."
    N = frame.num_rows
    if method == "naive":
        return naive, naive, reason
    if method in ("audit", "ppi"):
        if grouped and in_frame.size < 2:  # a group the audit barely reached: flag, do not fail
            return _unestimable(value, frame, labels, in_frame, y_hat, method, level, naive), \
                naive, reason
        if in_frame.size < 2:
            raise UsageError(f"{'Only one audit label' if in_frame.size else 'No audit labels'} "
                             f"for {m.id} in this population; draw a sample with "
                             f"`chatlens sample --measure {m.id} --kind audit` and label it.")
        uids = frame["uid"].take(pa.array(in_frame)).to_pylist()
        y = np.array([1.0 if labels.audit[u] == value else 0.0 for u in uids])
        designs = {labels.strata_by.get(u) for u in uids}
        if designs == {None}:
            if method == "audit":
                return audit_estimate(y, N, level), naive, reason
            return ppi_finite_estimate(y, y_hat[in_frame], y_hat, level), naive, reason
        if len(designs) > 1:
            raise UsageError(f"The audit labels of {m.id} come from samples of different designs "
                             f"({', '.join(str(d) for d in designs)}); estimate with one design.")
        (by,) = designs
        col = STRATUM_COLUMN[str(by)]
        strata_all = np.asarray(frame[col].to_numpy(zero_copy_only=False)).astype(str)
        strata_l = strata_all[in_frame]
        try:
            if method == "audit":
                sizes = dict(Counter(strata_all.tolist()))
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
        train, n_oof = labelled()
        y_train = np.array([1.0 if labels.other[u] == value else 0.0
                            for u in train["uid"].to_pylist()])
        if n_oof:
            reason += (f" The model's error rates come from out-of-fold scores for the {n_oof} "
                       "labelled messages it was trained on.")
        # sorted scores: the frame has no row order, and the bootstrap must not depend on one
        return quantify_estimate(y_train, yhat(m, value, train), np.sort(y_hat), "acc", level,
                                 rng=0), \
            naive, reason
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
    labels = measure_labels(project, cb.name, measure)
    strata = {str(b) for b in labels.strata_by.values() if b}
    frame = measure_frame(project.store, cb.name, measure,
                          project.enrich_settings().fingerprint(), pop.languages, pop.chats,
                          pop.since, pop.until, pop.where, by, strata)
    values = [value] if value else ([m.positive_label()] if m.type == "binary" else m.labels)
    audited = pc.is_in(frame["uid"], value_set=pa.array(sorted(labels.audit), pa.string()))
    frame = frame.append_column("audited", audited)
    if by:  # only audited rows need their uid: the others' are dropped before splitting
        frame = frame.set_column(frame.schema.get_field_index("uid"), "uid", pc.if_else(
            audited, frame["uid"], pa.scalar(None, pa.string())))
    # the labelled messages' codes, re-coded out of fold once, only if quantify needs them
    labelled = functools.cache(lambda: out_of_fold_codes(project, measure, sorted(labels.other)))
    parts: list[tuple[str | None, pa.Table]] = list(_groups(frame)) if by else []
    parts = parts or [(None, frame)]
    out = []
    for v in values:
        for g, part in parts:
            est, naive, reason = _one(m, v, part, labels, method, level, labelled,
                                      grouped=g is not None)
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
