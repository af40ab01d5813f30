"""``chatlens forget``: erase an author, a chat or a source (see :mod:`chatlens.forget`)."""

from __future__ import annotations

from pathlib import Path

import click

from chatlens.cli import emit_json, opened, out, project_options, safe


@click.command()
@click.option("--author", default=None, metavar="KEY",
              help="An author's pseudonym (or raw id or display name).")
@click.option("--chat", default=None, metavar="CHAT",
              help="A chat key, the pseudonym a 1:1 chat is shown with, or an exact title.")
@click.option("--source", default=None, metavar="SOURCE",
              help="A source id or the path it was ingested from (then ingest it again, e.g. "
              "with a corrected --encoding).")
@project_options
def forget(author: str | None, chat: str | None, source: str | None,
           project_dir: Path | None, as_json: bool) -> None:
    """Erase the messages of an author, a chat or a source, with their originals, codes,
    labels, index entries and identities, and rewrite the project's files so the text is gone
    from the disk; the runs log records the erasure without its content."""
    from chatlens.forget import forget as erase

    with opened(project_dir) as proj:
        report = erase(proj, author=author, chat=chat, source=source)
    if as_json:
        emit_json(report.as_dict())
        return
    out.print(f"run {report.run_id}: erased {report.messages:,} messages of "
              f"{report.matched} {report.criterion}(s); database files rewritten")
    for name in report.other_files:
        out.print(f"[yellow]note[/yellow]: {safe(name)} was written earlier and may still hold "
                  "erased messages; delete or regenerate it")
