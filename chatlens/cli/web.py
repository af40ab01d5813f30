"""``chatlens serve`` and ``chatlens report``: click commands for the CLI to register::

    from chatlens.cli.web import report, serve
    cli.add_command(serve)
    cli.add_command(report)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chatlens.cli import emit_json, project_options
from chatlens.project import default_project_dir


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs a token.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--token", envvar="CHATLENS_TOKEN", default=None,
              help="Access token (or $CHATLENS_TOKEN); `auto` generates one. Required for a "
              "non-loopback --host.")
@click.option("--read-only", is_flag=True, help="Disable labelling and corrections (sharing).")
@click.option("--codebook", "codebook_ref", default=None,
              help="Codebook file or builtin:NAME (default: the one the project was coded with).")
@click.option("--claims", "claims_ref", default=None,
              help="Claims file or builtin:NAME for the Claims page (default builtin:exodus-2022).")
@click.option("--annotator", default=None, help="Name recorded with labels (default: "
              "dashboard:<user>).")
@project_options
def serve(host: str, port: int, token: str | None, read_only: bool, codebook_ref: str | None,
          claims_ref: str | None, annotator: str | None, project_dir: Path | None,
          as_json: bool) -> None:
    """Run the local dashboard: overview, measures, claims, evidence, annotation, topics
    (``--json``: one line with the address and token on standard output, for scripts)."""
    import uvicorn

    from chatlens.store import is_project
    from chatlens.web.app import Settings, create_app
    from chatlens.web.security import resolve_token

    root = project_dir or default_project_dir()
    if not is_project(root):
        raise click.UsageError(f"{root} is not a chatlens project; pass --project DIR.")
    required, generated = resolve_token(host, token)
    app = create_app(Settings(project=root, codebook=codebook_ref, claims=claims_ref,
                              read_only=read_only, token=required, host=host,
                              annotator=annotator))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    if as_json:
        click.echo(json.dumps({"url": url, "token": required, "read_only": read_only,
                               "project": str(root)}))
    elif required:
        click.echo(f"chatlens dashboard: {url}?token={required}", err=True)
        if generated:
            click.echo("(token generated for this run; set CHATLENS_TOKEN to choose one)",
                       err=True)
    else:
        click.echo(f"chatlens dashboard: {url}", err=True)
    if read_only and not as_json:
        click.echo("read-only: labelling and corrections are disabled", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("report.html"), show_default=True)
@click.option("--pdf", "pdf", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also print the report to this PDF (headless Chromium).")
@click.option("--claims", "claims_ref", default=None,
              help="Claims file or builtin:NAME (e.g. builtin:exodus-2022).")
@click.option("--codebook", "codebook_ref", default=None)
@click.option("--evidence", "n_evidence", default=5, show_default=True,
              help="Sampled evidence messages per measure.")
@project_options
def report(output: Path, pdf: Path | None, claims_ref: str | None, codebook_ref: str | None,
           n_evidence: int, project_dir: Path | None, as_json: bool) -> None:
    """Write one self-contained HTML report (no external requests), optionally a PDF."""
    from chatlens.report import build_report, print_pdf

    root = project_dir or default_project_dir()
    path = build_report(root, output, claims=claims_ref, codebook=codebook_ref,
                        n_evidence=n_evidence)
    if pdf is not None:
        print_pdf(path, pdf)
    if as_json:
        emit_json({"report": str(path), "pdf": str(pdf) if pdf is not None else None})
    else:
        click.echo(f"wrote {path}")
        if pdf is not None:
            click.echo(f"wrote {pdf}")
    sys.stdout.flush()
