"""``chatlens plan``: how many audit labels a target interval half-width needs.

Registered in :mod:`chatlens.cli`, whose helpers it imports when it runs (not at import time, so
that ``python -m chatlens.cli`` does not import itself in a circle).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table


def _safe(text: Any) -> str:
    from chatlens.cli import safe

    return safe(text)


def _row(table: Table, p: dict[str, Any], first: str | None = None) -> None:
    cells = [_safe(first)] if first is not None else []
    table.add_row(*cells, p["method"], f"{p['n']:,}", f"{p['N']:,}", f"{p['p']:.3f}",
                  f"{p['sigma2']:.4f}", p["binding"])


@click.command()
@click.option("--measure", required=True)
@click.option("--value", default=None, help="Value to plan for (default: binary positive label).")
@click.option("--width", "half_width", type=float, required=True,
              help="Target half-width of the interval, as a share (0.05: ±5 points).")
@click.option("--group", "by", type=click.Choice(["chat", "month", "week", "lang"]),
              default=None, help="Also plan for an interval of this width in every group.")
@click.option("--split", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Also plan for the difference between before and from this date.")
@click.option("--level", type=float, default=0.95, show_default=True)
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Project directory (default: $CHATLENS_PROJECT, else the "
              "current directory).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def plan(measure: str, value: str | None, half_width: float, by: str | None,
         split: datetime | None, level: float, project_dir: Path | None,
         as_json: bool) -> None:
    """How many audit labels a target interval half-width needs: audit-only and with PPI,
    from a pilot audit if there is one, else from the model's scores."""
    from chatlens.cli import emit_json, opened, out, safe
    from chatlens.project.plan import plan_labels

    with opened(project_dir, read_only=True) as proj:
        result = plan_labels(proj, measure, half_width, value, by,
                             split.date() if split else None, level)
    if as_json:
        emit_json(result)
        return
    out.print(f"{safe(measure)} = {safe(result['value'])}: audit labels for ±{half_width:.3f} "
              f"at {level:.0%} ({result['N']:,} messages, pilot audit of {result['pilot']})")
    table = Table("method", "labels", "population", "share", "variance/label", "set by")
    for p in result["plans"]:
        _row(table, p)
    out.print(table)
    out.print(f"PPI basis: {safe(result['basis'])}")
    if "groups" in result:
        gt = Table(by or "group", "method", "labels", "population", "share", "variance/label",
                   "set by", title=f"per {by}")
        for p in result["groups"]:
            _row(gt, p, p["group"])
        out.print(gt)
        for method, t in result["group_totals"].items():
            out.print(f"{method}: {t['stratified']:,} labels stratified by {by}, or "
                      f"{t['simple_random']:,} in one simple random sample")
    if "difference" in result:
        d = result["difference"]
        for method in ("audit", "ppi"):
            if method in d:
                out.print(f"difference from {d['split']} ({method}): {d[method]['before']:,} "
                          f"labels before and {d[method]['after']:,} after")
