"""What ``chatlens code`` prints about language-model scorers (dry run and after coding)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from chatlens.cli import emit_json, err, out, safe


def _money(x: float | None) -> str:
    return "-" if x is None else f"${x:,.2f}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def print_dry_run(plan: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"dry_run": True, "scorers": plan,
                   "calls": sum(p["requested"] for p in plan)})
        return
    if not plan:
        out.print("this codebook has no llm scorer: coding sends nothing anywhere")
        return
    table = Table("measure", "model", "endpoint", "cached", "calls", "input tokens",
                  "output tokens", "cost", "time", title="language-model calls coding would "
                  "make (dry run: nothing was sent)")
    for p in plan:
        table.add_row(safe(p["measure"]), safe(p["model"]), safe(p["base_url"]),
                      f"{p['cached']:,}", f"{p['requested']:,}", f"~{p['prompt_tokens']:,}",
                      f"~{p['completion_tokens']:,}", _money(p["cost"]),
                      _duration(p["seconds"]))
    out.print(table)
    out.print("tokens are estimated (UTF-8 bytes / 4); time assumes 1 s a call at the "
              "configured concurrency and rate limit")


def print_llm_report(stats: list[dict[str, Any]]) -> None:
    for s in stats:
        out.print(f"llm {safe(s['measure'])} ({safe(s['model'])}, prompt {s['prompt_hash']}): "
                  f"{s['cached']:,} cached, {s['answered']:,} answered, {s['invalid']:,} "
                  f"invalid, {s['failed']:,} failed")
        lost = s["invalid"] + s["failed"]
        if lost:
            err.print(f"[yellow]warning[/yellow]: {lost:,} messages of {safe(s['measure'])} "
                      "have no valid answer and no code, so they are outside its population "
                      "for now; rerun `chatlens code` to retry the failed ones")
