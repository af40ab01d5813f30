"""Result types shared by every estimator, and the one place the small-group rule lives."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Method = Literal["audit", "ppi", "quantify", "naive"]

#: A group with fewer human-labelled messages than this is too small to show.
MIN_LABELLED_N = 30
#: A group whose confidence interval is wider than this (on the 0-1 scale) is too small to show.
MAX_INTERVAL_WIDTH = 0.5


@dataclass(frozen=True)
class Estimate:
    """A prevalence estimate: a point value, a confidence interval and how it was made.

    ``point``, ``lower`` and ``upper`` are shares on the 0-1 scale; ``level`` is the confidence
    level (0.95 = 95%). ``n_labelled`` is the number of human labels behind the number (0 for
    the naive figure), ``N_population`` the size of the population it describes (``None`` when
    unknown or treated as infinite). ``se`` is the standard error when the method has one.
    """

    point: float
    lower: float
    upper: float
    level: float
    method: Method
    n_labelled: int
    N_population: int | None
    notes: str = ""
    se: float | None = None
    #: Share of the population in strata no audited message reached (their prevalence is
    #: unknown, so the interval spans every value it could take; 0 when the audit reached all).
    unreached: float = 0.0

    @property
    def width(self) -> float:
        """Width of the confidence interval."""
        return self.upper - self.lower

    @property
    def too_small(self) -> bool:
        """True when the small-group rule says this estimate should not be shown on its own."""
        return small_group(self.n_labelled, self.width)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly), including ``width`` and ``too_small``."""
        d = asdict(self)
        d["width"] = self.width
        d["too_small"] = self.too_small
        return d


@dataclass(frozen=True)
class Difference:
    """Difference ``a - b`` between two estimates (two groups or two periods), with its interval."""

    point: float
    lower: float
    upper: float
    level: float
    method: str
    a: Estimate
    b: Estimate
    notes: str = ""
    se: float | None = None

    @property
    def width(self) -> float:
        return self.upper - self.lower

    def as_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "lower": self.lower,
            "upper": self.upper,
            "level": self.level,
            "method": self.method,
            "notes": self.notes,
            "se": self.se,
            "width": self.width,
            "a": self.a.as_dict(),
            "b": self.b.as_dict(),
        }


def small_group(n_labelled: int, width: float | None = None) -> bool:
    """Small-group rule: too few labels (``< MIN_LABELLED_N``) or too wide an interval.

    The naive figure has no labels, so callers should apply the rule to the labelled estimate
    shown next to it.
    """
    if n_labelled < MIN_LABELLED_N:
        return True
    return width is not None and width > MAX_INTERVAL_WIDTH
