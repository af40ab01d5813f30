"""``chatlens forget``: erase an author, a chat or a source (see :mod:`chatlens.project.forget`). A
click command for the CLI to register (it imports nothing from :mod:`chatlens.cli`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chatlens.project import Project, default_project_dir
from chatlens.textsafe import terminal_safe


@click.command()
@click.option("--author", default=None, metavar="KEY",
              help="An author's pseudonym (or raw id or display name).")
@click.option("--chat", default=None, metavar="CHAT",
              help="A chat key, the pseudonym a 1:1 chat is shown with, or an exact title.")
@click.option("--source", default=None, metavar="SOURCE",
              help="A source id or the path it was ingested from (then ingest it again, e.g. "
              "with a corrected --encoding).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Project directory (default: $CHATLENS_PROJECT, else the "
              "current directory).")
def forget(author: str | None, chat: str | None, source: str | None, as_json: bool,
           project_dir: Path | None) -> None:
    """Erase the messages of an author, a chat or a source, with their originals, codes,
    labels, index entries and identities, and rewrite the project's files so the text is gone
    from the disk; the runs log records the erasure without its content."""
    from chatlens.project.forget import forget as erase

    with Project.open(project_dir or default_project_dir()) as proj:
        report = erase(proj, author=author, chat=chat, source=source)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    if report.completed:
        click.echo(f"run {report.run_id}: finished the interrupted erasure "
                   f"{', '.join(report.completed)}; database files rewritten")
    if report.matched or not report.completed:
        click.echo(f"run {report.run_id}: erased {report.messages:,} messages of "
                   f"{report.matched} {report.criterion}(s); database files rewritten")
    for name in report.other_files:
        click.echo(f"note: {terminal_safe(name, single_line=True)} was written earlier and may "
                   "still hold erased messages; delete or regenerate it", err=True)
