"""Check a claims file against a project: estimates, intervals and verdicts per claim."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from chatlens.codebook import load_codebook
from chatlens.codebook.claims import (
    Claim,
    Filter,
    Verdict,
    load_claims,
    verdict_sign,
    verdict_threshold,
)
from chatlens.errors import ChatlensError, UsageError
from chatlens.estimate import difference
from chatlens.project.estimate import Population, Row, status_note

if TYPE_CHECKING:
    from chatlens.project import Project


def _population(*filters: Filter) -> Population:
    """Intersect filters: later dates narrow earlier ones; conditions add up."""
    pop = Population()
    for f in filters:
        pop = replace(
            pop,
            languages=_narrow(pop.languages, f.languages), chats=_narrow(pop.chats, f.chats),
            since=max((d for d in (pop.since, f.since) if d), default=None),
            until=min((d for d in (pop.until, f.until) if d), default=None),
            where=[*pop.where, *((c.measure, c.value) for c in f.where)])
    return pop


def _narrow(current: list[str] | None, extra: list[str] | None) -> list[str] | None:
    """Intersect two optional allow-lists (None allows everything)."""
    if current is None or extra is None:
        return extra if current is None else current
    both = [x for x in current if x in extra]
    if not both:
        raise UsageError(f"a group's filter {extra} leaves nothing of the claim's {current}")
    return both


def _evidence(claim: Claim, pop: Population) -> str:
    parts = [f"chatlens evidence --measure {claim.measure} --value {claim.value}"]
    if pop.since:
        parts.append(f"--since {pop.since}")
    if pop.until:
        parts.append(f"--until {pop.until}")
    parts += [f"--where {m}={v}" for m, v in pop.where]
    parts += [f"--lang {x}" for x in pop.languages or []]
    parts += [f"--chat {x}" for x in pop.chats or []]
    return " ".join(parts)


def bucket_index(key: str, by: str) -> float:
    """Position of a time bucket in bucket steps: weeks (from their start date) or months."""
    if by == "month":
        year, month = key.split("-")[:2]
        return float(int(year) * 12 + int(month))
    return date.fromisoformat(key).toordinal() / 7.0


def slope(rows: list[Row], level: float, by: str = "week") -> tuple[float, float, float]:
    """Weighted least-squares slope of the share per time bucket (per week or month, measured
    on the calendar, so empty buckets are gaps, not skipped steps), weights 1/se², with its
    confidence interval."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    x = np.array([bucket_index(str(r.group), by) for r in rows])
    y = np.array([r.estimate.point for r in rows])
    se = np.array([r.estimate.se if r.estimate.se else (r.estimate.upper - r.estimate.lower)
                   / (2 * z) for r in rows])
    w = 1.0 / np.maximum(se, 1e-6) ** 2
    xm = np.sum(w * x) / np.sum(w)
    sxx = np.sum(w * (x - xm) ** 2)
    b = float(np.sum(w * (x - xm) * (y - np.sum(w * y) / np.sum(w))) / sxx)
    half = z * float(np.sqrt(1.0 / sxx))
    return b, b - half, b + half


def _point(point: float, point_range: tuple[float, float] | None) -> str:
    """A point, or the range of points over the settlements of unresolved coder ties."""
    return f"{point_range[0]:.3f} to {point_range[1]:.3f}" if point_range else f"{point:.3f}"


def check_claim(project: Project, claim: Claim) -> dict[str, Any]:
    kind, *args = claim.comparison()
    pop = _population(claim.population)
    out: dict[str, Any] = {"id": claim.id, "statement": claim.statement,
                           "measure": claim.measure, "value": claim.value,
                           "compare": claim.compare, "level": claim.level,
                           "evidence": _evidence(claim, pop)}
    verdict: Verdict
    if kind == "threshold":
        (row,) = project.estimate(claim.measure, claim.value, None, claim.method, claim.level,
                                  pop)
        est = row.estimate
        verdict = verdict_threshold(est.lower, est.upper, args[0], float(args[1]))
        out["estimates"] = [row.as_dict()]
        out["reason"] = (f"{est.method} estimate {_point(est.point, est.point_range)} with "
                         f"{claim.level:.0%} interval "
                         f"[{est.lower:.3f}, {est.upper:.3f}] against {args[1]}")
        methods = {est.method}
        invalid = [] if row.valid else [row]
    elif kind == "groups":
        op, a_name, b_name = args
        groups = claim.groups or {}
        rows = {g: project.estimate(claim.measure, claim.value, None, claim.method, claim.level,
                                    _population(claim.population, groups[g]))[0]
                for g in (a_name, b_name)}
        d = difference(rows[a_name].estimate, rows[b_name].estimate)
        verdict = verdict_sign(d.lower, d.upper, expect_positive=op == ">")
        out["estimates"] = [rows[a_name].as_dict() | {"group": a_name},
                            rows[b_name].as_dict() | {"group": b_name}]
        out["difference"] = d.as_dict()
        out["reason"] = (f"share({a_name}) − share({b_name}) = {_point(d.point, d.point_range)}, "
                         "interval "
                         f"[{d.lower:.3f}, {d.upper:.3f}]")
        methods = {r.estimate.method for r in rows.values()}
        invalid = [r for r in rows.values() if not r.valid]
    else:
        rows_t = project.estimate(claim.measure, claim.value, claim.by, claim.method,
                                  claim.level, pop)
        invalid = [r for r in rows_t if not r.valid]
        rows_t = [r for r in rows_t if r.valid]
        out["estimates"] = [r.as_dict() for r in rows_t]
        methods = {r.estimate.method for r in rows_t}
        if len(rows_t) < 3:
            verdict = "inconclusive"
            out["reason"] = (f"fewer than three {claim.by}s with a valid interval (enough audit "
                             "labels); no trend can be told")
        else:
            b, lo, hi = slope(rows_t, claim.level, claim.by)
            verdict = verdict_sign(lo, hi, expect_positive=args[0] == "up")
            out["trend"] = {"slope_per_bucket": b, "lower": lo, "upper": hi, "by": claim.by}
            out["reason"] = (f"slope {b:+.4f} per {claim.by}, interval [{lo:+.4f}, {hi:+.4f}]")
        if invalid:  # never drop buckets silently: say which the trend does not cover
            out["left_out"] = [r.as_dict() for r in invalid]
            out["reason"] += (f"; {len(invalid)} of {len(invalid) + len(rows_t)} {claim.by}s "
                              "left out (no valid interval: label more audit messages there)")
    if "naive" in methods or (invalid and kind != "trend"):
        verdict = "inconclusive"
        status = {r.status for r in invalid}
        small = min((r.estimate.n_labelled for r in invalid if r.status == "too-small"),
                    default=0)
        out["reason"] = (
            "no valid estimate: the naive classify-and-count figure cannot decide a claim; "
            "label an audit sample first" if "none" in status or "naive" in methods else
            "the estimate hit a bound and has no valid interval; label more audit messages"
            if "at-bound" in status else
            "fewer than two audit labels fall in the claim's population; label more of it"
            if "too-few" in status else
            f"too few audit labels in the claim's population for a valid interval "
            f"({status_note('too-small', small)}); "
            "label more of it" if "too-small" in status else
            "the estimate rests on quantification's assumption, not on an audit of this "
            "population; an audit sample can decide the claim")
    out["verdict"] = verdict
    return out


def check_claims(project: Project, path: str) -> dict[str, Any]:
    """Check every claim of a file (validated against the project's codebook first)."""
    cf = load_claims(path)
    current, source = project.codebook()
    if load_codebook(cf.codebook).name != current.name:
        raise UsageError(f"{path} states claims about codebook {cf.codebook}, but the project "
                         f"is coded with {source}; run `chatlens code --codebook {cf.codebook}`.")
    cf = load_claims(path, current)
    results = []
    for c in cf.claims:
        try:
            results.append(check_claim(project, c))
        except ChatlensError as exc:  # one claim that cannot be estimated does not stop others
            results.append({"id": c.id, "statement": c.statement, "measure": c.measure,
                            "value": c.value, "compare": c.compare, "level": c.level,
                            "verdict": "inconclusive", "reason": str(exc), "estimates": [],
                            "evidence": _evidence(c, _population(c.population))})
    return {"claims_file": path, "codebook": source, "checked": date.today().isoformat(),
            "results": results}
