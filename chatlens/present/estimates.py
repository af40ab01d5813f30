"""Prevalence estimates for the dashboard and the report, flattened for templates.

The numbers are :func:`chatlens.project.estimate.estimate`'s, the same as the CLI's. Nothing is
written to the project (no run is recorded): the dashboard reads a project that another process
may be writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatlens.present.charts import BandPoint
from chatlens.project.estimate import estimate, status_note

if TYPE_CHECKING:
    from chatlens.project import Project


#: The group :func:`chatlens.project.estimate.estimate` gives messages without a date (or chat, …).
UNDATED = "(none)"


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
    undated: int = 0  # messages of the population left out of a time grouping (no date)
    notes: str = ""
    status_note: str = ""  # what the status means, as every surface shows it
    #: the points of the two settlements of unresolved coder ties (``point`` is their middle)
    point_range: tuple[float, float] | None = None
    #: the estimate's warnings (designs left out, ties, undated, ...), the CLI's own
    warnings: list[str] = field(default_factory=list)

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
            undated=r.undated or 0, notes=est.notes,
            status_note=status_note(r.status, est.n_labelled), warnings=list(r.warnings),
            point_range=est.point_range))
    return out


def warnings_of(*groupings: list[WebEstimate]) -> list[str]:
    """The warnings of one or more groupings of a measure's estimates, each once, in order."""
    return list(dict.fromkeys(w for rows in groupings for r in rows for w in r.warnings))


def dated(rows: list[WebEstimate]) -> tuple[list[WebEstimate], int]:
    """Rows of a week/month grouping without the undated messages' group, and how many
    messages of the population have no date (never drawn as a time bucket)."""
    undated = [r for r in rows if r.group == UNDATED]
    # one undated row per value, all of the same messages
    n = max(r.N for r in undated) if undated else max((r.undated for r in rows), default=0)
    return [r for r in rows if r.group != UNDATED], n


def band_points(rows: list[WebEstimate], titles: dict[str, str] | None = None,
                ) -> list[BandPoint]:
    """Chart points for rows: the small-group rule marks groups drawn without an interval."""
    titles = titles or {}
    return [BandPoint(titles.get(r.group or "") or r.group or "", r.point, r.lower, r.upper,
                      r.naive, r.too_small, r.n_labelled, r.point_range) for r in rows]
