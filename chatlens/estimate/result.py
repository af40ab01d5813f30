"""Result types shared by every estimator, and the one place the small-group rule lives."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
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

    ``at_bound`` is True when the estimate hit a limit it cannot honestly report as an ordinary
    number: the method's raw value fell outside 0-1 and was clipped, or its interval came out with
    zero width although not every message was coded (a degenerate bootstrap, say). ``warning``
    then says what happened in a sentence for the reader; see :func:`check_bounds`.

    ``point_range`` is set when the data allow more than one point: audited messages whose
    coders disagree, counted each way (``--ties bounds``). It holds the lowest and highest
    point over those settlements; ``point`` is then only their midpoint (for ordering and
    drawing), not an estimate, and is shown as the range.
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
    at_bound: bool = False
    warning: str = ""
    point_range: tuple[float, float] | None = None

    @property
    def width(self) -> float:
        """Width of the confidence interval."""
        return self.upper - self.lower

    @property
    def too_small(self) -> bool:
        """True when the small-group rule says this estimate should not be shown on its own."""
        return small_group(self.n_labelled, self.width)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly), including ``width`` and ``too_small``; shares within
        1e-12 of 0 (floating-point residue of bounds arithmetic) read 0."""
        d = {k: 0.0 if isinstance(v, float) and abs(v) < 1e-12 else v
             for k, v in asdict(self).items()}
        d["width"] = self.width
        d["too_small"] = self.too_small
        if self.point_range is not None:
            d["point_range"] = [0.0 if abs(v) < 1e-12 else v for v in self.point_range]
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

    @property
    def point_range(self) -> tuple[float, float] | None:
        """The lowest and highest difference over the settlements of unresolved ties in
        ``a`` or ``b`` (see :attr:`Estimate.point_range`); None when each has one point."""
        if self.a.point_range is None and self.b.point_range is None:
            return None
        a_lo, a_hi = self.a.point_range or (self.a.point, self.a.point)
        b_lo, b_hi = self.b.point_range or (self.b.point, self.b.point)
        return a_lo - b_hi, a_hi - b_lo

    def as_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "point_range": list(self.point_range) if self.point_range else None,
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


def check_bounds(est: Estimate, *, census: bool = False, raw_point: float | None = None,
                 ) -> Estimate:
    """Flag an estimate that hit a bound, and keep zero-width intervals for censuses only.

    - ``raw_point`` (the method's value before clipping to 0-1) outside [0, 1]: ``at_bound`` is
      set and ``warning`` gives the raw value; the point stays clipped.
    - A zero-width interval when not every message of the population was coded (``census``
      False): it claims a certainty no sample gives, so the interval becomes 0-1 and the
      estimate is flagged. Only a census may have a zero-width interval.

    Returns ``est`` itself when nothing is flagged.
    """
    warnings = [est.warning] if est.warning else []
    lower, upper = est.lower, est.upper
    if raw_point is not None and not 0.0 <= raw_point <= 1.0:
        side = "0" if raw_point < 0.0 else "1"
        warnings.append(f"the {est.method} value {raw_point:.3f} lies outside 0-1 and was "
                        f"clipped to {side}")
    if est.width <= 0.0 and not census:
        warnings.append("its interval came out with zero width although not every message was "
                        "coded, which no sample can justify; shown as 0-100% instead")
        lower, upper = 0.0, 1.0
    if len(warnings) == (1 if est.warning else 0):
        return est
    text = "; ".join(warnings)
    return replace(est, lower=lower, upper=upper, at_bound=True, warning=text,
                   notes=f"{est.notes}; AT BOUND: {text}" if est.notes else f"AT BOUND: {text}")
