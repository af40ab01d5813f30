"""The figures of docs/methods.md, from planted-truth simulations (a reduced estimate_sim sweep).

Usage: ``python bench/figures.py [--reps 300] [--out docs/figures]``. Writes two SVG files (no
plotting library needed) and prints the numbers behind them:

* ``coverage.svg``: how often the 95 % interval of ``audit``, ``ppi`` and ``naive`` contains the
  planted truth, per prevalence and classifier, audit samples of 200 in populations of 10,000;
* ``width.svg``: the ``ppi`` interval's width relative to ``audit``'s, per classifier and audit
  size.

Seeds are fixed, so the same command gives the same figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatlens.estimate import audit_estimate, naive_estimate, ppi_estimate
from chatlens.estimate.simulate import CLASSIFIERS, audit_indices, population

PREVALENCES = (0.02, 0.1, 0.3, 0.5)
AUDIT_SIZES = (50, 200, 1000)
N_POP = 10_000
METHODS = ("audit", "ppi", "naive")
COLOURS = {"audit": "#1f77b4", "ppi": "#d62728", "naive": "#7f7f7f",
           "weak": "#9467bd", "medium": "#2ca02c", "strong": "#ff7f0e", "miscalibrated": "#8c564b"}


def sweep(reps: int) -> dict[tuple[float, str, int, str], tuple[float, float]]:
    """(prevalence, classifier, n, method) -> (coverage, mean width)."""
    out: dict[tuple[float, str, int, str], tuple[float, float]] = {}
    for pi, prev in enumerate(PREVALENCES):
        for ci, clf in enumerate(CLASSIFIERS):
            for ni, n in enumerate(AUDIT_SIZES):
                rng = np.random.default_rng([pi, ci, ni, 2026])
                hits = dict.fromkeys(METHODS, 0.0)
                width = dict.fromkeys(METHODS, 0.0)
                for _ in range(reps):
                    y, s = population(rng, N_POP, prev, clf)
                    truth = y.mean()
                    idx = audit_indices(rng, N_POP, n)
                    rest = np.ones(N_POP, dtype=bool)
                    rest[idx] = False
                    for m, e in (("audit", audit_estimate(y[idx], N_POP)),
                                 ("ppi", ppi_estimate(y[idx], s[idx], s[rest])),
                                 ("naive", naive_estimate(s))):
                        hits[m] += e.lower <= truth <= e.upper
                        width[m] += e.width
                for m in METHODS:
                    out[(prev, clf.name, n, m)] = (hits[m] / reps, width[m] / reps)
    return out


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>', *body, "</svg>", ""])


def coverage_svg(res: dict[tuple[float, str, int, str], tuple[float, float]], reps: int) -> str:
    w, h, left, top, bottom = 760, 330, 60, 40, 60
    plot_h = h - top - bottom
    lo = 0.0

    def y(v: float) -> float:
        return top + (1 - (v - lo) / (1 - lo)) * plot_h

    names = [c.name for c in CLASSIFIERS]
    groups = [(p, c) for p in PREVALENCES for c in names]
    step = (w - left - 20) / len(groups)
    body = [f'<text x="{left}" y="20" font-size="14">95 % interval coverage, audit of 200 '
            f'({reps} populations of {N_POP:,} per setting)</text>']
    for v in (0.0, 0.25, 0.5, 0.75, 0.95, 1.0):
        dash = ' stroke-dasharray="4 3"' if v == 0.95 else ""
        body.append(f'<line x1="{left}" x2="{w - 20}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                    f'stroke="#ccc"{dash}/>')
        body.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for k, (p, c) in enumerate(groups):
        x0 = left + k * step
        for j, m in enumerate(METHODS):
            cov = res[(p, c, 200, m)][0]
            cx = x0 + step * (0.3 + 0.2 * j)
            body.append(f'<circle cx="{cx:.1f}" cy="{y(cov):.1f}" r="3.5" '
                        f'fill="{COLOURS[m]}"><title>{m}, prevalence {p:.0%}, {c}: '
                        f'{cov:.3f}</title></circle>')
        body.append(f'<text x="{x0 + step / 2:.1f}" y="{h - bottom + 14}" text-anchor="middle" '
                    f'font-size="9">{c[:4]}</text>')
        if c == names[0]:
            body.append(f'<text x="{x0 + 2 * step:.1f}" y="{h - bottom + 30}" '
                        f'text-anchor="middle">prevalence {p:.0%}</text>')
    for j, m in enumerate(METHODS):
        body.append(f'<circle cx="{left + 10 + 90 * j}" cy="{h - 12}" r="4" '
                    f'fill="{COLOURS[m]}"/><text x="{left + 18 + 90 * j}" y="{h - 8}">{m}</text>')
    return _svg(w, h, body, "Coverage of audit, ppi and naive intervals")


def width_svg(res: dict[tuple[float, str, int, str], tuple[float, float]], reps: int) -> str:
    w, h, left, top, bottom = 660, 300, 60, 40, 50
    plot_h, plot_w = h - top - bottom, w - left - 200

    def y(v: float) -> float:
        return top + (1 - v / 1.2) * plot_h

    def x(i: int) -> float:
        return left + plot_w * i / (len(AUDIT_SIZES) - 1)

    body = [f'<text x="{left}" y="20" font-size="14">ppi interval width / audit interval width '
            f'(mean over prevalences 2–50 %, {reps} populations each)</text>']
    for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2):
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                    f'stroke="#ccc"/><text x="{left - 6}" y="{y(v) + 4:.1f}" '
                    f'text-anchor="end">{v:.1f}</text>')
    for i, n in enumerate(AUDIT_SIZES):
        body.append(f'<text x="{x(i):.1f}" y="{h - bottom + 16}" text-anchor="middle">'
                    f'audit of {n}</text>')
    for k, clf in enumerate(CLASSIFIERS):
        ratios = [float(np.mean([res[(p, clf.name, n, "ppi")][1] / res[(p, clf.name, n, "audit")][1]
                                 for p in PREVALENCES])) for n in AUDIT_SIZES]
        pts = " ".join(f"{x(i):.1f},{y(r):.1f}" for i, r in enumerate(ratios))
        colour = COLOURS[clf.name]
        body.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body += [f'<circle cx="{x(i):.1f}" cy="{y(r):.1f}" r="3" fill="{colour}"><title>'
                 f'{clf.name}, audit of {n}: {r:.3f}</title></circle>'
                 for i, (n, r) in enumerate(zip(AUDIT_SIZES, ratios, strict=True))]
        body.append(f'<text x="{left + plot_w + 12}" y="{top + 16 + 18 * k}" fill="{colour}">'
                    f'{clf.name} (AUC {clf.auc:.2f})</text>')
    return _svg(w, h, body, "Width of ppi intervals relative to audit-only intervals")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs"
                    / "figures")
    args = ap.parse_args()
    res = sweep(args.reps)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "coverage.svg").write_text(coverage_svg(res, args.reps), encoding="utf-8")
    (args.out / "width.svg").write_text(width_svg(res, args.reps), encoding="utf-8")
    print("prevalence classifier n method coverage width")
    for (p, c, n, m), (cov, wid) in sorted(res.items()):
        print(f"{p:.2f} {c} {n} {m} {cov:.3f} {wid:.4f}")
    print(f"wrote {args.out / 'coverage.svg'} and {args.out / 'width.svg'}")


if __name__ == "__main__":
    main()
