"""Differences between two groups or periods, with an interval for the difference."""

from __future__ import annotations

import math

from numpy.typing import ArrayLike

from chatlens.estimate.audit import audit_estimate, z_value
from chatlens.estimate.result import Difference, Estimate


def difference(a: Estimate, b: Estimate) -> Difference:
    """Estimate of ``a - b`` from two independent estimates at the same confidence level.

    - Both PPI: the two estimates come from independent samples, so their variances add:
      ``(a - b) +- z * sqrt(se_a^2 + se_b^2)`` (normal interval, clipped to [-1, 1]).
    - Otherwise (audit, quantify, naive, or mixed): the MOVER method (Zou & Donner 2008) recovers
      each group's variance from the distance between its point and its own interval ends:
      ``L = d - sqrt((a - l_a)^2 + (u_b - b)^2)``, ``U = d + sqrt((u_a - a)^2 + (b - l_b)^2)``.
      With two Wilson intervals this is exactly Newcombe's (1998) hybrid score interval, which
      keeps good coverage for small samples and extreme shares.

    An estimate with a ``point_range`` (unresolved coder ties counted both ways, its interval
    the union of the two settlements') enters MOVER by the end of its range that makes the
    bound widest: ``L`` from ``a``'s lowest and ``b``'s highest point, ``U`` from the other
    two. That bound is at least as wide as the MOVER interval of every pair of settlements
    (MOVER's lower end grows with ``a``'s point and falls with ``b``'s), so the difference
    covers them all.
    """
    if not math.isclose(a.level, b.level):
        raise ValueError(f"confidence levels differ ({a.level} vs {b.level})")
    d = a.point - b.point
    if a.method == "ppi" and b.method == "ppi" and a.se is not None and b.se is not None:
        se = math.hypot(a.se, b.se)
        z = z_value(a.level)
        return Difference(
            d,
            max(d - z * se, -1.0),
            min(d + z * se, 1.0),
            a.level,
            "ppi-difference",
            a,
            b,
            "difference of independent PPI estimates; variances added; normal interval",
            se,
        )
    a_lo, a_hi = a.point_range or (a.point, a.point)
    b_lo, b_hi = b.point_range or (b.point, b.point)
    lo = a_lo - b_hi - math.hypot(a_lo - a.lower, b.upper - b_hi)
    hi = a_hi - b_lo + math.hypot(a.upper - a_hi, b_lo - b.lower)
    method = "newcombe" if a.method == b.method == "audit" else "mover"
    notes = (
        "Newcombe hybrid score interval (MOVER on Wilson intervals)"
        if method == "newcombe"
        else f"MOVER interval combining a {a.method} and a {b.method} interval"
    )
    return Difference(d, max(lo, -1.0), min(hi, 1.0), a.level, method, a, b, notes)


def audit_difference(
    labels_a: ArrayLike,
    labels_b: ArrayLike,
    N_a: int | None = None,
    N_b: int | None = None,
    level: float = 0.95,
) -> Difference:
    """Difference of audit shares ``a - b`` with Newcombe's hybrid score interval.

    Each group's Wilson interval is finite-population corrected when its ``N`` is given.
    """
    return difference(audit_estimate(labels_a, N_a, level), audit_estimate(labels_b, N_b, level))
