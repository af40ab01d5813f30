"""Charts as server-made SVG: no JavaScript library, no external asset, safe under a strict CSP.

Every label is escaped; colours are SVG attributes (not inline styles), so the dashboard's
``style-src 'self'`` policy holds and the same markup works inside the self-contained report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf")


@dataclass(slots=True)
class BandPoint:
    """One group's estimate. ``too_small`` (the small-group rule of
    :func:`chatlens.estimate.small_group`) draws it hollow and without its interval."""

    x: str
    point: float
    lower: float
    upper: float
    naive: float | None = None
    too_small: bool = False
    n_labelled: int | None = None
    #: the points of the two settlements of unresolved coder ties (``point`` is their middle)
    point_range: tuple[float, float] | None = None


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def _frame(w: int, h: int, title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {w} {h}" '
            f'width="{w}" height="{h}" role="img" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>"]


def _runs(points: Sequence[BandPoint]) -> list[list[int]]:
    """Indices of consecutive points that pass the small-group rule."""
    runs: list[list[int]] = []
    for i, p in enumerate(points):
        if p.too_small:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _point(p: BandPoint) -> str:
    return f"{_pct(p.point_range[0])}–{_pct(p.point_range[1])}" if p.point_range \
        else _pct(p.point)


def _tip(p: BandPoint) -> str:
    if p.too_small:
        n = "" if p.n_labelled is None else f" ({p.n_labelled} audit labels)"
        return f"{p.x}: {_point(p)}, too few labels for an interval{n}"
    return f"{p.x}: {_point(p)} [{_pct(p.lower)}, {_pct(p.upper)}]"


def _settlements(p: BandPoint, at: float, y: Callable[[float], float], vertical: bool) -> str:
    """The range between the two settlements' points of unresolved ties, as a thick dash
    (empty when there is one point)."""
    if p.point_range is None:
        return ""
    a, b = (y(v) for v in p.point_range)
    ends = (f'x1="{at:.1f}" x2="{at:.1f}" y1="{a:.1f}" y2="{b:.1f}"' if vertical else
            f'x1="{a:.1f}" x2="{b:.1f}" y1="{at:.1f}" y2="{at:.1f}"')
    return (f'<line class="settlements" {ends} stroke="#1f77b4" stroke-width="3">'
            f"<title>{escape(_tip(p))}</title></line>")


def small_note(points: Sequence[BandPoint], what: str) -> str | None:
    """The caption that explains hollow points, or None when every point has its interval."""
    small = sum(p.too_small for p in points)
    if not small:
        return None
    from chatlens.estimate import MIN_LABELLED_N

    return (f"{small} of {len(points)} {what}s have fewer than {MIN_LABELLED_N} audit labels "
            "(or an interval wider than 50 points): they are drawn hollow, without an "
            "interval, and are not joined to the line.")


def band_chart(points: Sequence[BandPoint], title: str, method: str, w: int = 640,
               h: int = 240) -> Markup:
    """Share over time: the corrected estimate with its interval band; the naive share, if
    given, as a dashed grey line labelled *naive*. Points under the small-group rule are
    hollow circles with no band and no line through them (a gap, not a 0-100% band)."""
    out = _frame(w, h, title)
    if not points:
        out.append(f'<text x="10" y="{h // 2}">no data</text></svg>')
        return Markup("".join(out))
    left, right, top, bottom = 48, 90, 14, 40
    top_v = max(0.05, *(p.point if p.too_small else p.upper for p in points),
                *(p.naive or 0 for p in points))
    top_v = min(1.0, top_v * 1.1)
    n = len(points)

    def x(i: int) -> float:
        return left + (w - left - right) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - v / top_v)

    for k in range(5):
        v = top_v * k / 4
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{_pct(v)}</text>')
    for run in _runs(points):
        if len(run) == 1:  # an isolated month with an interval: a whisker
            i = run[0]
            out.append(f'<line class="band" x1="{x(i):.1f}" x2="{x(i):.1f}" '
                       f'y1="{y(points[i].lower):.1f}" y2="{y(points[i].upper):.1f}" '
                       'stroke="#1f77b4" stroke-opacity="0.35" stroke-width="6"/>')
            continue
        band = [f"{x(i):.1f},{y(points[i].upper):.1f}" for i in run]
        band += [f"{x(i):.1f},{y(points[i].lower):.1f}" for i in reversed(run)]
        out.append(f'<polygon class="band" points="{" ".join(band)}" fill="#1f77b4" '
                   'fill-opacity="0.18" stroke="none"/>')
        line = " ".join(f"{x(i):.1f},{y(points[i].point):.1f}" for i in run)
        out.append(f'<polyline class="estimate" points="{line}" fill="none" '
                   'stroke="#1f77b4" stroke-width="2"/>')
    for i, p in enumerate(points):
        fill = ' fill="#fff" stroke="#1f77b4" stroke-width="1.5" class="small"' \
            if p.too_small else ' fill="#1f77b4"'
        out.append(f'<circle cx="{x(i):.1f}" cy="{y(p.point):.1f}" r="3"{fill}>'
                   f"<title>{escape(_tip(p))}</title></circle>" + _settlements(p, x(i), y, True))
    if any(p.naive is not None for p in points):
        nl = " ".join(f"{x(i):.1f},{y(p.naive or 0):.1f}" for i, p in enumerate(points))
        out.append(f'<polyline class="naive" points="{nl}" fill="none" stroke="#888" '
                   'stroke-dasharray="4 3" stroke-width="1.5"/>')
        out.append(f'<text x="{w - right + 6}" y="{y(points[-1].naive or 0) + 4:.1f}" '
                   'font-size="11" fill="#666">naive</text>')
    out.append(f'<text x="{w - right + 6}" y="{y(points[-1].point) + 4:.1f}" font-size="11" '
               f'fill="#1f77b4">{escape(method)}</text>')
    step = max(1, n // 8)
    for i in range(0, n, step):
        out.append(f'<text x="{x(i):.1f}" y="{h - bottom + 16}" text-anchor="middle" '
                   f'font-size="11">{escape(points[i].x)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def interval_bars(rows: Sequence[BandPoint], title: str, w: int = 640) -> Markup:
    """One row per group (e.g. chat): the estimate as a dot with its interval as a whisker;
    a group under the small-group rule as a hollow dot without a whisker."""
    h = 24 + 22 * max(1, len(rows))
    out = _frame(w, h, title)
    left, right = 220, 60
    top_v = min(1.0, max(0.05, *(r.point if r.too_small else r.upper for r in rows)) * 1.1) \
        if rows else 1.0

    def x(v: float) -> float:
        return left + (w - left - right) * v / top_v

    for i, r in enumerate(rows):
        cy = 18 + 22 * i
        label = r.x if len(r.x) <= 32 else r.x[:31] + "…"
        out.append(f'<text x="{left - 8}" y="{cy + 4}" text-anchor="end" font-size="11">'
                   f"{escape(label)}</text>")
        if r.too_small:
            out.append(f'<circle cx="{x(r.point):.1f}" cy="{cy}" r="4" fill="#fff" '
                       f'stroke="#1f77b4" stroke-width="1.5" class="small">'
                       f"<title>{escape(_tip(r))}</title></circle>")
            out.append(f'<text x="{w - right + 4}" y="{cy + 4}" font-size="11" fill="#666">'
                       f"{_point(r)}</text>")
            continue
        out.append(f'<line x1="{x(r.lower):.1f}" x2="{x(r.upper):.1f}" y1="{cy}" y2="{cy}" '
                   'stroke="#1f77b4" stroke-width="2"/>')
        out.append(f'<circle cx="{x(r.point):.1f}" cy="{cy}" r="4" fill="#1f77b4">'
                   f"<title>{escape(_tip(r))}</title></circle>" + _settlements(r, cy, x, False))
        out.append(f'<text x="{w - right + 4}" y="{cy + 4}" font-size="11">'
                   f"{_point(r)}</text>")
    out.append("</svg>")
    return Markup("".join(out))


def lines_chart(series: dict[str, list[tuple[str, float]]], title: str, w: int = 640,
                h: int = 220, percent: bool = False) -> Markup:
    """Counts over time, one line per series (the first is drawn thickest, e.g. *total*);
    ``percent`` for shares (0-1), with ticks in percent."""
    out = _frame(w, h, title)
    xs = sorted({t for pts in series.values() for t, _ in pts})
    if not xs:
        out.append(f'<text x="10" y="{h // 2}">no data</text></svg>')
        return Markup("".join(out))
    left, right, top, bottom = 56, 150, 12, 36
    top_v = max(1.0, *(v for pts in series.values() for _, v in pts))
    if percent:
        top_v = min(1.0, max(0.01, *(v for pts in series.values() for _, v in pts)) * 1.1)

    def tick(v: float) -> str:
        return (f"{100 * v:.{0 if top_v >= 0.1 else 1}f}%" if percent else f"{v:,.0f}")
    pos = {t: i for i, t in enumerate(xs)}
    n = len(xs)

    def x(t: str) -> float:
        return left + (w - left - right) * (pos[t] / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - v / top_v)

    for k in range(5):
        v = top_v * k / 4
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{tick(v)}</text>')
    for j, (name, pts) in enumerate(list(series.items())[:8]):
        colour = PALETTE[j % len(PALETTE)]
        p = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        out.append(f'<polyline points="{p}" fill="none" stroke="{colour}" '
                   f'stroke-width="{2.5 if j == 0 else 1.2}"/>')
        label = name if len(name) <= 22 else name[:21] + "…"
        out.append(f'<text x="{w - right + 6}" y="{top + 14 * j + 8}" font-size="11" '
                   f'fill="{colour}">{escape(label)}</text>')
    step = max(1, n // 6)
    for t in xs[::step]:
        out.append(f'<text x="{x(t):.1f}" y="{h - bottom + 16}" text-anchor="middle" '
                   f'font-size="11">{escape(t)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def topic_charts(model: Any) -> dict[int, Markup]:
    """Each topic's share of its language's messages per time bucket (a ``TopicModel``)."""
    return {t.id: lines_chart({"share": t.over_time}, f"{t.name}: share of {t.lang_name} "
                              f"messages per {model.bucket}", w=420, h=140, percent=True)
            for t in model.topics}
