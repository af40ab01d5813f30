"""Prevalence estimates for a project: frames from the store, labels from the label store,
numbers from :mod:`chatlens.estimate`.

For a measure and value, ``yhat`` is the model's score for that value on each message of the
population: the probability of the positive label for binary measures (rule scorers give 0 or
1), the indicator "coded as this value" for categorical ones.

Which labels count for what:

- **audit** labels (items of an active audit sample of the measure) give every valid estimate;
- **reference** labels (a labelled set the user declared as another corpus or period, with
  ``chatlens label import --reference``) allow quantification, valid only if the model errs the
  same way there as here (prior shift), and only when asked for or when no audit exists;
- **training** labels and corrections train models and never enter an estimate: they were not
  drawn at random, and the model has learned from them.

The method is chosen once for the whole measure, never per group: a group the audit did not
reach gets the 0-100% interval, not another method. Without an audit the answer is "no valid
estimate yet", with the naive figure labelled naive.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chatlens.codebook import Measure
from chatlens.errors import UsageError
from chatlens.estimate import (
    MAX_INTERVAL_WIDTH,
    MIN_LABELLED_N,
    Estimate,
    audit_estimate,
    auto_method,
    difference,
    naive_estimate,
    ppi_finite_estimate,
    ppi_finite_stratified,
    quantify_estimate,
)
from chatlens.estimate.domain import domain_stratified
from chatlens.estimate.ppi import working_model_values
from chatlens.project.active import Batch, active_estimate, batch_from_design
from chatlens.project.labels import TIE_POLICIES, consensus
from chatlens.store.frames import (
    STRATUM_COLUMN,
    Population,
    measure_frame,
    population_size,
    uncoded_count,
    undated_count,
)

if TYPE_CHECKING:
    from chatlens.project import Project

METHODS = ("auto", "audit", "ppi", "quantify", "naive")
#: How much an estimate can be trusted: ``valid`` a design-based interval; ``partial`` valid
#: but widened for what the audit could not reach (unresolved coder disagreements, strata with
#: no audited message); ``too-small`` the small-group rule holds (fewer than
#: ``MIN_LABELLED_N`` audit labels, or an interval wider than ``MAX_INTERVAL_WIDTH``): the
#: large-sample approximation behind the interval is not met, so it is not shown as valid;
#: ``too-few`` fewer than two audit labels in the group (0-100%); ``assumption``
#: quantification, valid only if the model errs alike in the reference set and here;
#: ``at-bound`` the estimator hit a bound (clipped, degenerate); ``none`` no valid estimate:
#: only the naive figure exists.
Status = Literal["valid", "partial", "too-small", "too-few", "assumption", "at-bound", "none"]

__all__ = ["METHODS", "Population", "Row", "Status", "compare_periods", "estimate",
           "shown_status", "status_note"]


def shown_status(est: Estimate, status: Status) -> Status:
    """The status an estimate is shown with: the one place where the small-group rule
    (:attr:`Estimate.too_small`) turns a valid or partial interval into ``too-small``, so that
    ``valid`` and ``too_small`` can never both hold."""
    return "too-small" if status in ("valid", "partial") and est.too_small else status


def status_note(status: Status, n_labelled: int) -> str:
    """What a status means for the reader, in a few words (empty for ``valid``): the one text
    the CLI, the dashboard and the report show beside an estimate."""
    if status == "too-small":
        return (f"not a valid interval: {n_labelled:,} audit labels, fewer than the "
                f"{MIN_LABELLED_N} its approximation needs" if n_labelled < MIN_LABELLED_N else
                f"not a valid interval: wider than {MAX_INTERVAL_WIDTH:.0%}, too small a group "
                "to show on its own")
    return {"valid": "",
            "partial": "widened: part of the population unreached or disputed, see the warnings",
            "too-few": f"too few audit labels ({n_labelled:,}) for an interval",
            "assumption": "assumes the model errs as in the reference set",
            "at-bound": "the estimate hit a bound: no valid interval",
            "none": "naive classify-and-count: ignores the classifier's errors, not a valid "
                    "estimate"}[status]


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
    status: Status = "valid"
    #: audited messages of this group whose coders disagree and nobody adjudicated
    unresolved: int = 0
    #: messages of the population without a date (in no month/week, outside any date range)
    undated: int | None = None
    samples: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the estimate is shown as a valid confidence interval under the audit's
        design: never for a group under the small-group rule (see :func:`shown_status`)."""
        return self.status in ("valid", "partial")

    def as_dict(self) -> dict[str, Any]:
        e = self.estimate.as_dict()
        return {"measure": self.measure, "value": self.value, "group": self.group,
                "point": e["point"], "point_range": e["point_range"],
                "lower": e["lower"], "upper": e["upper"],
                "level": e["level"], "method": e["method"], "n_labelled": e["n_labelled"],
                "N_population": e["N_population"], "too_small": e["too_small"],
                "notes": e["notes"], "method_reason": self.method_reason,
                "status": self.status, "valid": self.valid,
                "status_note": status_note(self.status, e["n_labelled"]),
                "unresolved": self.unresolved,
                "undated": self.undated, "unreached": e["unreached"], "samples": self.samples,
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
    """A measure's human labels, sorted by what they may be used for."""

    audit: dict[str, str]  # audit uid -> its value (consensus or adjudicated)
    ties: dict[str, list[str]]  # audit uid -> the tied values, coders disagreeing unresolved
    reference: dict[str, str]  # declared reference-set uid -> value
    training: dict[str, str]  # training labels and corrections: never used by estimates
    strata_by: dict[str, str | None]  # audit uid -> the variable its sample was stratified by
    samples: list[str]  # the audit samples used
    warnings: list[str]
    #: the batches of an active (Poisson, unequal-probability) audit; empty for other designs
    active: list[Batch] = field(default_factory=list)


def design_key(sample: dict[str, Any]) -> str:
    """Samples with the same key are one design and may be pooled: ``active`` (batches of an
    active audit, combined batch by batch), else the variable a random audit was stratified by
    (``None``: simple random)."""
    design = sample["design"]
    return "active" if design.get("method") == "active-poisson" else str(design.get("strata_by"))


def _design_name(key: str) -> str:
    return {"None": "simple random", "active": "active"}.get(key, f"{key}-stratified")


def _pick_samples(store_samples: list[dict[str, Any]], chosen: list[str] | None, measure: str,
                  warnings: list[str]) -> list[dict[str, Any]]:
    """The audit samples an estimate uses: those asked for, else all of one design (samples of
    different designs cannot simply be pooled; see :func:`design_key`): the design with the
    most labelled items, the others named in a warning."""
    if chosen:
        known = {s["sample_id"]: s for s in store_samples}
        bad = [c for c in chosen if c not in known]
        if bad:
            raise UsageError(f"{', '.join(bad)}: not an active audit sample of {measure}; "
                             f"`chatlens samples` lists them ({', '.join(known) or 'none yet'}).")
        picked = [known[c] for c in chosen]
        kinds = sorted({_design_name(design_key(s)) for s in picked})
        if len(kinds) > 1:
            raise UsageError(f"The samples asked for have different designs ({', '.join(kinds)})"
                             ", whose labels cannot be pooled as one sample; estimate with one "
                             "design at a time.")
        return picked
    by_design: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in store_samples:
        by_design[design_key(s)].append(s)
    if len(by_design) <= 1:
        return store_samples
    ranked = sorted(by_design.items(), key=lambda kv: -sum(s["labelled"] for s in kv[1]))
    (design, picked), rest = ranked[0], ranked[1:]
    left = [s["sample_id"] for _, group in rest for s in group]
    warnings.append(
        f"The audit samples of {measure} have different designs; this estimate uses the "
        f"{_design_name(design)} one(s) "
        f"({', '.join(s['sample_id'] for s in picked)}) with the most labels and leaves out "
        f"{', '.join(left)}. Choose with --sample, or drop a sample with `chatlens samples "
        "drop ID`.")
    return picked


def measure_labels(project: Project, codebook: str, measure: str,
                   samples: list[str] | None = None, ties: str = "bounds") -> Labels:
    """The measure's labels: audit labels of the chosen samples (coder disagreements resolved
    by adjudication, else by majority, else by the ``ties`` policy), the reference set, and a
    count of training labels."""
    if ties not in TIE_POLICIES and not ties.startswith("annotator:"):
        raise UsageError(f"--ties must be one of {', '.join(TIE_POLICIES)} or annotator:NAME.")
    store = project.labels()
    rows = store.labels_arrow(codebook, measure).to_pylist()
    warnings: list[str] = []
    mine = store.samples(codebook, measure, "audit")
    elsewhere = sorted({s["codebook"] for s in store.samples(None, measure, "audit")} - {codebook})
    if not mine and elsewhere:
        warnings.append(f"Audit samples of {measure} exist under the codebook(s) "
                        f"{', '.join(elsewhere)}, not under {codebook}, which the project is coded "
                        "with now: labels belong to a codebook's name. Keep the name when you "
                        "revise a codebook (change its version), or code with the other one.")
    used = _pick_samples(mine, samples, measure, warnings)
    used_ids = {s["sample_id"] for s in used}
    prefer = ties.removeprefix("annotator:") if ties.startswith("annotator:") else None
    coders = {r["annotator"] for r in rows if r["sample_kind"] == "audit"}
    if prefer is not None and prefer not in coders:
        raise UsageError(f"--ties {ties}: nobody called {prefer!r} coded audit labels of "
                         f"{measure}; the coders are {', '.join(sorted(coders)) or 'none yet'}.")
    audit, tied = consensus([r for r in rows if r["sample_kind"] == "audit"
                             and r["sample_id"] in used_ids], prefer)
    reference, ref_ties = consensus([r for r in rows if r["sample_kind"] == "reference"])
    if ref_ties:
        warnings.append(f"{len(ref_ties)} reference-set messages have coders who disagree; "
                        "they are left out of quantification.")
    strata_by: dict[str, str | None] = {}
    active: list[Batch] = []
    size_now = population_size(project.store, codebook, measure)
    for s in used:
        design = s["design"]
        items = store.sample_items(s["sample_id"])
        for item in items:
            strata_by[item["uid"]] = design.get("strata_by")
        if design_key(s) == "active":
            active.append(batch_from_design(s["sample_id"], design, items))
        then = design.get("frame_size")
        if then is not None and then != size_now and s["labelled"]:
            warnings.append(
                f"The population of {measure} had {then:,} messages when {s['sample_id']} was "
                f"drawn and has {size_now:,} now; messages added since had no chance of being "
                "audited, so the estimate speaks for the earlier population. Draw a new audit "
                "sample to cover the new messages.")
    training, _ = consensus([r for r in rows if r["sample_kind"] in ("train", "none")])
    return Labels(audit=audit, ties=tied, reference=reference, training=training,
                  strata_by=strata_by, samples=sorted(used_ids), warnings=warnings,
                  active=active)


def _unestimable(y: np.ndarray, f: np.ndarray, N: int, method: str, level: float,
                 naive: Estimate) -> Estimate:
    """A group with fewer than two audit labels: the interval is the whole range (the data say
    nothing more), the point the model's share corrected by the one label if there is one."""
    n = int(y.size)
    point = naive.point if n == 0 else min(1.0, max(0.0, naive.point + float(y[0] - f[0])))
    return Estimate(point, 0.0, 1.0, level, "audit" if method == "audit" else "ppi", n, N,
                    f"{n} audit label(s) in this group: too few for an interval narrower than "
                    "0-100%")


def _at_bound(est: Estimate, census: bool) -> bool:
    """An interval of zero width is only right for a census; anything else that collapsed
    (a degenerate bootstrap, a clipped adjustment) is flagged."""
    return est.at_bound or (est.width <= 0.0 and not census)


@dataclass(slots=True)
class _Context:
    """What every group's estimate needs, resolved once per call of :func:`estimate`."""

    measure: Measure
    labels: Labels
    method: str  # resolved: audit, ppi, quantify or naive
    reason: str
    level: float
    ties: str
    cross_fitted: Callable[[tuple[str, ...]], tuple[pa.Table, dict[str, Any]]]
    #: working models of the whole audit, by (value, labels): the same for every domain
    working: dict[tuple[str, bytes], Any] = field(default_factory=dict)


def _design_estimate(ctx: _Context, method: str, y: np.ndarray, f: np.ndarray,
                     uids: list[str], frame: pa.Table, y_hat: np.ndarray,
                     in_frame: np.ndarray, value: str) -> Estimate:
    """The audit or PPI estimate for labels ``y`` of the audited rows ``in_frame`` (sorted by
    uid, so nothing depends on the order rows come from the store), by the sample's design."""
    N = frame.num_rows
    if ctx.labels.active:  # inverse-probability weighted, batch by batch
        positive = ctx.measure.type == "binary" and value == ctx.measure.positive_label()
        score_all = y_hat if positive else 1.0 - y_hat
        return active_estimate(ctx.labels.active, method, y, uids, score_all,
                               score_all[in_frame], positive, ctx.level)
    designs = {ctx.labels.strata_by.get(u) for u in uids}
    if designs == {None}:
        if method == "audit":
            return audit_estimate(y, N, ctx.level)
        return ppi_finite_estimate(y, f, y_hat, ctx.level, keys=uids)
    (by,) = designs  # one design: see _pick_samples
    strata_all = np.asarray(frame[STRATUM_COLUMN[str(by)]].to_numpy(zero_copy_only=False)
                            ).astype(str)
    strata_l = strata_all[in_frame]
    if method == "audit":
        sizes = dict(Counter(strata_all.tolist()))
        return audit_estimate(y, N, ctx.level, strata=strata_l, strata_sizes=sizes)
    return ppi_finite_stratified(y, f, strata_l, y_hat, strata_all, ctx.level, keys=uids)


def _bounded_by_ties(low: Estimate, high: Callable[[], Estimate], moved: int,
                     ) -> tuple[Estimate, Status]:
    """The estimate with the ``moved`` disputed audit messages counted as not the value
    (``low``) and, when there are any, as the value (``high()``): the interval covers both,
    and the point is the range of the two settlements' points (``point_range``; ``point`` is
    its midpoint); and its status (``partial`` when widened for this or unreached strata)."""
    status: Status = "partial" if low.unreached > 0 else "valid"
    if not moved:
        return low, status
    up = high()
    a, b = sorted((low.point, up.point))
    return replace(low, point=(a + b) / 2, point_range=(a, b), lower=min(low.lower, up.lower),
                   upper=max(low.upper, up.upper), se=None,
                   notes=low.notes + f"; {moved} audited messages whose coders disagree (not "
                   f"adjudicated) could be this value or not: the point is {a:.1%} settled one "
                   f"way and {b:.1%} the other, and the interval covers both"), "partial"


def _one(ctx: _Context, value: str, frame: pa.Table, grouped: bool,
         ) -> tuple[Estimate, Estimate, Status, int]:
    """One value in one group: the estimate, the naive figure, its status and the number of
    unresolved disagreements in the group. ``frame`` has an ``audited`` column."""
    m, labels, method, level = ctx.measure, ctx.labels, ctx.method, ctx.level
    y_hat = yhat(m, value, frame)
    N = frame.num_rows
    naive = naive_estimate(y_hat, level) if len(y_hat) else Estimate(
        0.0, 0.0, 1.0, level, "naive", 0, 0, "empty population")
    if method == "naive":
        return naive, naive, "none", 0
    if method == "quantify":
        return _quantify(ctx, value, frame, naive)
    in_frame = np.flatnonzero(frame["audited"].to_numpy(zero_copy_only=False))
    uids_all = frame["uid"].take(pa.array(in_frame, pa.int64())).to_pylist()
    order = np.argsort(np.array(uids_all, dtype=object), kind="stable")
    in_frame, uids = in_frame[order], [uids_all[i] for i in order]
    tied = [u for u in uids if u in labels.ties]
    if ctx.ties == "exclude" and tied:
        keep = np.array([u not in labels.ties for u in uids], dtype=bool)
        in_frame, uids = in_frame[keep], [u for u in uids if u not in labels.ties]
    f = y_hat[in_frame]
    low = np.array([1.0 if labels.audit.get(u) == value else 0.0 for u in uids])
    if labels.active and not any(sum(u in b.pi for u in uids) >= 2 for b in labels.active):
        reached = 0  # no batch reached the group twice: too few for its weighted estimate
    else:
        reached = int(in_frame.size)
    if reached < 2:
        if grouped:  # a group the audit barely reached: flag, do not fail
            return _unestimable(low, f, N, method, level, naive), naive, "too-few", len(tied)
        raise UsageError(f"{'Only one audit label' if in_frame.size else 'No audit labels'} "
                         f"for {m.id} in this population; draw a sample with "
                         f"`chatlens sample --measure {m.id} --kind audit` and label it.")
    high = np.array([1.0 if labels.audit.get(u) == value or value in labels.ties.get(u, ())
                     else 0.0 for u in uids])
    est, status = _bounded_by_ties(
        _design_estimate(ctx, method, low, f, uids, frame, y_hat, in_frame, value),
        lambda: _design_estimate(ctx, method, high, f, uids, frame, y_hat, in_frame, value),
        int((high != low).sum()))
    census = in_frame.size >= N
    if _at_bound(est, census):
        status = "at-bound"
    return est, naive, status, len(tied)


def _domain(ctx: _Context, value: str, frame: pa.Table, group: str | None, part: pa.Table,
            ) -> tuple[Estimate, Estimate, Status, int]:
    """One group of a stratified audit that is not one of its strata (a month of a
    chat-stratified audit): the whole sample estimates it, see :mod:`chatlens.estimate.domain`.
    ``part`` is the group's slice, for the naive figure and the group's own labels."""
    m, labels, level = ctx.measure, ctx.labels, ctx.level
    naive = naive_estimate(yhat(m, value, part), level)
    in_part = np.flatnonzero(part["audited"].to_numpy(zero_copy_only=False))
    part_uids = set(part["uid"].take(pa.array(in_part, pa.int64())).to_pylist())
    tied = sum(1 for u in part_uids if u in labels.ties)
    n_here = len(part_uids) - (tied if ctx.ties == "exclude" else 0)
    if n_here < 2:
        low = np.array([1.0 if labels.audit.get(u) == value else 0.0 for u in part_uids])
        f = yhat(m, value, part)[in_part] if in_part.size else np.array([])
        return _unestimable(low, f, part.num_rows, ctx.method, level, naive), naive, \
            "too-few", tied
    keys = pc.fill_null(pc.cast(frame["grp"], pa.string()), "(none)")
    d_all = np.asarray(pc.equal(keys, group).to_numpy(zero_copy_only=False), dtype=bool)
    y_hat = yhat(m, value, frame)
    in_frame = np.flatnonzero(frame["audited"].to_numpy(zero_copy_only=False))
    uids = frame["uid"].take(pa.array(in_frame, pa.int64())).to_pylist()
    order = np.argsort(np.array(uids, dtype=object), kind="stable")
    in_frame, uids = in_frame[order], [uids[i] for i in order]
    if ctx.ties == "exclude":
        keep = np.array([u not in labels.ties for u in uids], dtype=bool)
        in_frame, uids = in_frame[keep], [u for u in uids if u not in labels.ties]
    (by,) = {labels.strata_by.get(u) for u in uids}
    strata_all = np.asarray(frame[STRATUM_COLUMN[str(by)]].to_numpy(zero_copy_only=False)
                            ).astype(str)
    low = np.array([1.0 if labels.audit.get(u) == value else 0.0 for u in uids])
    high = np.array([1.0 if labels.audit.get(u) == value or value in labels.ties.get(u, ())
                     else 0.0 for u in uids])
    scores = {"yhat_labelled": y_hat[in_frame], "yhat_population": y_hat} \
        if ctx.method == "ppi" else {}

    def working(y: np.ndarray, f: np.ndarray, f_all: np.ndarray) -> Any:
        key = (value, y.tobytes())
        if key not in ctx.working:
            ctx.working[key] = working_model_values(y, f, f_all)
        return ctx.working[key]

    def run(y: np.ndarray) -> Estimate:
        return domain_stratified(y, strata_all[in_frame], d_all[in_frame], strata_all, d_all,
                                 level, keys=uids, working=working, **scores)

    est, status = _bounded_by_ties(run(low), lambda: run(high),
                                   int(((high != low) & d_all[in_frame]).sum()))
    if _at_bound(est, n_here >= part.num_rows):
        status = "at-bound"
    return est, naive, status, tied


def _quantify(ctx: _Context, value: str, part: pa.Table, naive: Estimate,
              ) -> tuple[Estimate, Estimate, Status, int]:
    """Quantification of one group: the declared reference set's labels give the model's
    error rates, and reference and target are scored by the same cross-fitted models
    (:func:`chatlens.project.train.cross_fitted_codes`), so the rates describe the scores they
    correct; EMQ, the narrowest method that covered under a true prior shift."""
    m, labels = ctx.measure, ctx.labels
    if not labels.reference:
        raise UsageError(
            f"Quantification needs a reference set: labels of {m.id} on another corpus or "
            "period, imported with `chatlens label import FILE --reference NAME`. Training "
            "labels and corrections cannot be used (they are not a random sample, and the "
            "model has learned from them).")
    target = sorted(set(part["uid"].to_pylist()) - set(labels.reference))
    codes, info = ctx.cross_fitted(tuple(sorted(labels.reference)) + tuple(target))
    if not info["cross_fitted"]:
        raise UsageError(f"The model of {m.id} ({', '.join(info['models'])}) was saved without "
                         f"its fold models, which quantification needs; retrain it (`chatlens "
                         f"train --measure {m.id}`) and code again.")
    is_ref = pc.is_in(codes["uid"], value_set=pa.array(sorted(labels.reference), pa.string()))
    ref, tgt = codes.filter(is_ref), codes.filter(pc.invert(is_ref))
    y_ref = np.array([1.0 if labels.reference[u] == value else 0.0
                      for u in ref["uid"].to_pylist()])
    if y_ref.size < 2 or y_ref.min() == y_ref.max():
        raise UsageError(f"The reference set of {m.id} has no message labelled "
                         f"{'other than ' if y_ref.size and y_ref.min() else ''}{value!r} "
                         "among its coded messages; quantification needs both.")
    if tgt.num_rows == 0:
        raise UsageError(f"No message of {m.id}'s population outside its reference set.")
    # sorted scores: the frame has no row order, and the bootstrap must not depend on one
    est = quantify_estimate(y_ref, yhat(m, value, ref), np.sort(yhat(m, value, tgt)), "emq",
                            ctx.level, rng=0)
    return est, naive, "at-bound" if _at_bound(est, False) else "assumption", 0


def _resolve_method(m: Measure, method: str, labels: Labels, frame: pa.Table,
                    ) -> tuple[str, str]:
    if method not in METHODS:
        raise UsageError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    has_audit = bool(pc.any(frame["audited"]).as_py()) if frame.num_rows else False
    if method == "auto":
        method, reason = auto_method(has_audit, bool(labels.reference), len(labels.training))
    else:
        reason = f"Method {method} was requested."
    if method == "quantify" and labels.audit:
        reason += (" An audit sample of this measure exists; its estimate (ppi) is valid "
                   "without quantification's assumption.")
    return method, reason


def estimate(project: Project, measure: str, value: str | None = None, by: str | None = None,
             method: str = "auto", level: float = 0.95, population: Population | None = None,
             samples: list[str] | None = None, ties: str = "bounds") -> list[Row]:
    """Estimates for one measure: each value asked for (binary: the positive label; categorical
    without ``value``: every label), overall or per group. ``samples`` picks audit samples;
    ``ties`` says what counts for audited messages whose coders disagree and that nobody
    adjudicated: ``bounds`` (the interval covers every resolution), ``exclude`` (left out,
    counted), or ``annotator:NAME`` (that coder's label)."""
    cb = project.codebook()[0]
    m = cb.measure(measure)
    if value is not None and value not in m.labels:
        raise UsageError(f"{value!r} is not a label of {measure} ({', '.join(m.labels)}).")
    if by is not None and by not in ("chat", "month", "week", "lang"):
        raise UsageError("--by must be chat, month, week or lang.")
    pop = population or Population()
    labels = measure_labels(project, cb.name, measure, samples, ties)
    strata = {str(b) for b in labels.strata_by.values() if b}
    fingerprint = project.enrich_settings().fingerprint()
    frame = measure_frame(project.store, cb.name, measure, fingerprint, pop, by, strata)
    if frame.num_rows and frame["value"].null_count == frame.num_rows:
        raise UsageError(f"{measure} is not scored yet: its model is not trained (`chatlens "
                         f"code` says so). Label a training sample (`chatlens sample --measure "
                         f"{measure} --kind train`), run `chatlens train --measure {measure}`, "
                         "then `chatlens code`.")
    unanswered = frame["value"].null_count
    values = [value] if value else ([m.positive_label()] if m.type == "binary" else m.labels)
    audit_uids = sorted(set(labels.audit) | set(labels.ties))
    audited = pc.is_in(frame["uid"], value_set=pa.array(audit_uids, pa.string()))
    frame = frame.append_column("audited", audited)
    resolved, reason = _resolve_method(m, method, labels, frame)
    if by and resolved != "quantify":  # only audited rows need their uid: drop the others
        frame = frame.set_column(frame.schema.get_field_index("uid"), "uid", pc.if_else(
            audited, frame["uid"], pa.scalar(None, pa.string())))
    # reference and target scored by models that never learned from them, only for quantify
    def cross_fitted(uids: tuple[str, ...]) -> tuple[pa.Table, dict[str, Any]]:
        from chatlens.project.train import cross_fitted_codes

        return cross_fitted_codes(project, measure, list(uids))

    ctx = _Context(m, labels, resolved, reason, level, ties, functools.cache(cross_fitted))
    warnings = list(labels.warnings)
    if unanswered:
        warnings.append(f"{unanswered:,} messages of this population have no answer from the "
                        "model yet (an LLM gave none valid); the model counts as scoring them 0, "
                        "which the audit corrects, but the naive figure does not. Run `chatlens "
                        "code` again to retry them.")
    undated = None
    if by in ("month", "week") or pop.dated:
        undated = undated_count(project.store, cb.name, measure, fingerprint, pop)
        if undated:
            warnings.append(f"{undated:,} messages of this population have no date: they are in "
                            f"no {by or 'date range'} and not in these estimates.")
    parts: list[tuple[str | None, pa.Table]] = list(_groups(frame)) if by else []
    if by in ("month", "week"):
        parts = [(g, t) for g, t in parts if g != "(none)"]
    parts = parts or [(None, frame)]
    # groups that cut across the audit's strata are domains of the whole stratified sample
    across = by is not None and bool(strata) and strata != {by} and resolved in ("audit", "ppi")
    if labels.ties:
        how = "left out of" if ties == "exclude" else "counted both ways in"
        warnings.append(
            f"{len(labels.ties)} audited messages of {measure} have coders who disagree and "
            f"nobody adjudicated; they are {how} the estimate. Settle them with `chatlens label "
            f"adjudicate --measure {measure}`.")
    uncoded = uncoded_count(project.store, cb.name)
    if uncoded:
        warnings.append(f"{uncoded:,} messages of the project are not coded with {cb.name} yet "
                        "(ingested since the last `chatlens code`), so they are in no estimate; "
                        "run `chatlens code`.")
    out = []
    for v in values:
        for g, part in parts:
            est, naive, status, tied = (_domain(ctx, v, frame, g, part) if across else
                                        _one(ctx, v, part, grouped=g is not None))
            out.append(Row(measure, v, g, est, naive, reason, pop.as_dict(),
                           warnings=warnings, status=shown_status(est, status),
                           unresolved=tied, undated=undated,
                           samples=labels.samples))
    far = max((r.estimate.unreached for r in out), default=0.0)
    if far > 0:
        warnings.append(f"Up to {far:.1%} of a population is in strata the audit never reached "
                        "(chats or months with no audited message): the interval allows any share "
                        "there. Draw an audit sample that covers them.")
    return out


def compare_periods(project: Project, measure: str, value: str | None, split: date,
                    method: str = "auto", level: float = 0.95,
                    population: Population | None = None, samples: list[str] | None = None,
                    ties: str = "bounds") -> dict[str, Any]:
    """The share before ``split`` and from ``split`` on, and ``after - before`` with its
    interval (independent estimates of the two periods)."""
    pop = population or Population()
    before = replace(pop, until=min(d for d in (pop.until, split - timedelta(days=1)) if d))
    after = replace(pop, since=max(d for d in (pop.since, split) if d))
    (b,) = project.estimate(measure, value, None, method, level, before, samples, ties)[:1]
    (a,) = project.estimate(measure, value, None, method, level, after, samples, ties)[:1]
    return {"measure": measure, "value": a.value, "split": split.isoformat(),
            "before": b.as_dict(), "after": a.as_dict(), "undated": a.undated,
            "valid": a.valid and b.valid,
            "difference": difference(a.estimate, b.estimate).as_dict()}
