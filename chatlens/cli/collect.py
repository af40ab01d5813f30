"""``chatlens collect telegram`` and ``chatlens network``: thin shells over
:mod:`chatlens.collect.api` and :mod:`chatlens.project.network`."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from chatlens.cli import project_options  # defined before chatlens.cli imports this module
from chatlens.errors import UsageError


def parse_date(value: str | None, option: str) -> datetime | None:
    """``YYYY-MM-DD`` or an ISO date-time; naive values are UTC."""
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} expects a date such as 2022-09-21 or 2022-09-21T12:00, "
                         f"not {value!r}.") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class _ConsoleLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        from chatlens.cli import err, safe

        err.print(f"[yellow]{safe(record.getMessage())}[/yellow]")


@click.group()
def collect() -> None:
    """Collect public channels and groups through a platform's API (extra: collect)."""


@collect.command("telegram")
@click.argument("channels", nargs=-1, required=True)
@click.option("--since", default=None, metavar="DATE", help="Only messages from this date (UTC).")
@click.option("--until", default=None, metavar="DATE", help="Only messages before this date.")
@click.option("--comments", is_flag=True,
              help="Also collect the linked discussion group's comments on each post.")
@click.option("--takeout", is_flag=True,
              help="Use a takeout session (lower flood limits for bulk history; Telegram asks "
              "you to approve it on another device).")
@click.option("--recheck", is_flag=True,
              help="Re-read the whole range: keep earlier versions of edited messages, mark "
              "messages that disappeared, refresh views and reactions.")
@click.option("--max-wait", default=300.0, show_default=True, type=click.FloatRange(min=0),
              help="Longest flood wait (seconds) to sleep through; a longer one stops that "
              "channel with a resumable state and moves on.")
@click.option("--media", is_flag=True,
              help="Download media files (into the project's media/ folder) up to --media-max.")
@click.option("--media-max", default=20.0, show_default=True, type=click.FloatRange(min=0),
              help="Largest media file to download, in MB.")
@click.option("--session", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Login session file (default: $CHATLENS_TG_SESSION, else "
              "~/.config/chatlens/telegram.session); created with mode 0600.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML file with api_id and api_hash (default: $CHATLENS_TG_CONFIG, else "
              "~/.config/chatlens/telegram.toml); or set CHATLENS_TG_API_ID/_HASH.")
@project_options
def telegram(channels: tuple[str, ...], since: str | None, until: str | None, comments: bool,
             takeout: bool, recheck: bool, max_wait: float, media: bool, media_max: float,
             session: Path | None, config: Path | None, project_dir: Path | None,
             as_json: bool) -> None:
    """Collect public Telegram channels, groups and forum topics (usernames, t.me links or ids).

    Resumable: a rerun continues after the last stored message of each channel and never
    duplicates. Media are not downloaded unless --media is given.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from chatlens.cli import emit_json, err, opened, out, safe
    from chatlens.collect.api import collect_telegram
    from chatlens.collect.errors import require_telethon
    from chatlens.collect.runner import CollectOptions

    require_telethon()
    start, end = parse_date(since, "--since"), parse_date(until, "--until")
    if start and end and start >= end:
        raise UsageError("--since must be before --until.")
    handler = _ConsoleLog(logging.WARNING)
    logger = logging.getLogger("chatlens.collect")
    logger.addHandler(handler)
    try:
        with opened(project_dir) as proj:
            options = CollectOptions(
                since=start, until=end, comments=comments, takeout=takeout, recheck=recheck,
                max_wait=max_wait, media_dir=proj.root / "media" if media else None,
                media_max_bytes=int(media_max * 1024 * 1024))
            bar = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                           TextColumn("{task.completed:,} messages"), TimeElapsedColumn(),
                           console=err, transient=True, disable=as_json)
            tasks: dict[str, Any] = {}

            def progress(channel: str, n: int, phase: str) -> None:
                if channel not in tasks:
                    tasks[channel] = bar.add_task(safe(channel), total=None)
                bar.update(tasks[channel], completed=n,
                           description=f"{safe(channel)} ({phase})")

            with bar:
                report = collect_telegram(proj, list(channels), options, config=config,
                                          session=session, progress=progress)
    finally:
        logger.removeHandler(handler)
    bad = [c for c in report.channels if c.status != "complete"]
    if as_json:
        emit_json(report.as_dict())
        sys.exit(1 if bad else 0)
    table = Table("channel", "status", "new", "unchanged", "edited", "deleted", "skipped",
                  "comments", "waited", box=None)
    for c in report.channels:
        table.add_row(safe(c.title or c.target), c.status, f"{c.new - c.comments_new:,}",
                      f"{c.unchanged:,}", f"{c.edited:,}", f"{c.deleted:,}", f"{c.skipped:,}",
                      f"{c.comments_new:,} new in {c.threads:,} threads",
                      f"{c.waited:.0f} s ({c.flood_waits})")
    out.print(table)
    for c in bad:
        err.print(f"[red]{c.status}[/red]: {safe(c.target)}: {safe(c.error)}")
    sys.exit(1 if bad else 0)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["gexf", "csv", "json"]), default="gexf",
              show_default=True, help="gexf (opens in Gephi), csv (edge list) or json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")
@click.option("--discover", type=click.IntRange(min=1), default=None, metavar="N",
              help="Instead: list the N channels most forwarded into the project that it has "
              "not collected (nothing is collected).")
@project_options
def network(fmt: str, output: Path | None, discover: int | None, project_dir: Path | None,
            as_json: bool) -> None:
    """Forward, comment and reply networks between chats and channels (never people)."""
    import json

    from chatlens.cli import emit_json, opened, out, safe
    from chatlens.project import network as net

    with opened(project_dir, read_only=True) as proj:
        graph = net.network_graph(proj.store)
    if discover is not None:
        found = net.discover(graph, discover)
        if as_json:
            emit_json(found)
            return
        table = Table("channel", "forwards", "into chats", "first", "last", "link", box=None)
        for d in found:
            table.add_row(safe(d["label"]), f"{d['forwards']:,}", str(d["into"]),
                          str(d["first"] or "")[:10], str(d["last"] or "")[:10],
                          safe(d["link"] or d["chat_key"]))
        out.print(table)
        out.print(f"{len(found)} channels; collect them with `chatlens collect telegram …`")
        return
    text = (net.to_gexf(graph) if fmt == "gexf" else net.to_csv(graph) if fmt == "csv"
            else json.dumps(net.to_json(graph), ensure_ascii=False, indent=2, default=str))
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    summary = {"path": str(output), "format": fmt, "nodes": len(graph.nodes),
               "edges": len(graph.edges)}
    if as_json:
        emit_json(summary)
    else:
        out.print(f"wrote {safe(output)}: {len(graph.nodes):,} chats and channels, "
                  f"{len(graph.edges):,} edges ({fmt})")
