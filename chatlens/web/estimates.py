"""Prevalence estimates for the dashboard and the report, flattened for templates.

The numbers are :func:`chatlens.estimation.estimate`'s, the same as the CLI's. Nothing is
written to the project (no run is recorded): the dashboard reads a project that another process
may be writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatlens.estimation import estimate

if TYPE_CHECKING:
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
    status: str = "valid"
    unresolved: int = 0
    undated: int | None = None
    notes: str = ""

    @property
    def corrected(self) -> bool:
        """False when there is no valid estimate (only the naive figure, or one at a bound)."""
        return self.method != "naive" and self.status != "at-bound"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def estimates(project: Project, measure: str, by: str | None = None, level: float = 0.95,
              value: str | None = None) -> list[WebEstimate]:
    """Estimates of a measure's value(s) (binary: the positive label), overall or by group
    (``chat``, ``month``, ``week`` or ``lang``), flattened for templates."""
    out = []
    for r in estimate(project, measure, value, by, "auto", level):
        est = r.estimate
        out.append(WebEstimate(
            measure=measure, value=r.value, group=r.group, point=est.point, lower=est.lower,
            upper=est.upper, method=est.method, reason=r.method_reason,
            n_labelled=est.n_labelled, N=est.N_population or 0, naive=r.naive.point,
            too_small=est.too_small, level=level, status=r.status, unresolved=r.unresolved,
            undated=r.undated, notes=est.notes))
    return out
