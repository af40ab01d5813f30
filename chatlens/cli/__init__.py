"""The ``chatlens`` command: a thin shell over :mod:`chatlens.project`.

Exit codes: 0 success; 1 the command ran but nothing could be done (e.g. no input ingested);
2 usage or project errors (bad option, not a project, project locked).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chatlens import __version__
from chatlens.errors import ChatlensError, UsageError
from chatlens.project import Project, default_project_dir
from chatlens.textsafe import terminal_safe

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def safe(text: Any) -> str:
    """Untrusted text for rich output: controls escaped, markup neutralised."""
    return escape(terminal_safe(str(text) if text is not None else "", single_line=True))


def project_options(func: F) -> F:
    func = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(
        func)
    func = click.option(
        "--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
        default=None, help="Project directory (default: $CHATLENS_PROJECT, else the current "
        "directory).",
    )(func)
    return func


def reveal_option(func: F) -> F:
    return click.option(
        "--reveal", is_flag=True,
        help="Show raw chat titles, phone numbers, e-mails and names instead of masked and "
        "pseudonymised ones (local use only; recorded in the runs log).")(func)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, default=str, ensure_ascii=False, indent=2))


@contextmanager
def opened(project_dir: Path | None, read_only: bool = False,
           record_runs: bool | None = None) -> Iterator[Project]:
    """The project for one command; ``read_only`` with ``record_runs``: a reading command whose
    run is logged in the label store (it works while another command writes)."""
    proj = Project.open(project_dir or default_project_dir(), read_only=read_only,
                        record_runs=record_runs)
    if proj.store.from_snapshot and (writing := proj.store.writer()) is not None:
        from chatlens.store.snapshot import published

        as_of = (published(proj.root) or "")[:19].replace("T", " ")
        err.print(f"[yellow]note[/yellow]: another chatlens command (process "
                  f"{writing.get('pid', '?')}) is writing to this project; showing it as it was"
                  f"{f' at {as_of} UTC' if as_of else ''}.")
    try:
        yield proj
    finally:
        proj.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatlens")
def cli() -> None:
    """chatlens: turn claims about messaging-app communities into measurements."""


@cli.command()
@click.option("--languages", default=None, metavar="ru,uk,en",
              help="Languages the corpus is in; language ID answers only these (or und). "
              "A code it cannot detect is refused with the list of those it can. "
              "Default: ru, uk, en, ka, kk, hy, be.")
@project_options
def init(languages: str | None, project_dir: Path | None, as_json: bool) -> None:
    """Create a new project (a directory with its store and pseudonym key)."""
    from chatlens.project import check_languages

    root = project_dir or default_project_dir()
    wanted = [x.strip() for x in languages.split(",") if x.strip()] if languages else None
    if wanted is not None:
        check_languages(wanted)  # before anything is created
    with Project.init(root) as proj:
        if wanted:
            proj.set_languages(wanted)
        declared = proj.languages()
    if as_json:
        emit_json({"project": str(root.resolve()), "created": True,
                   "languages": list(declared)})
    else:
        out.print(f"Created chatlens project in {safe(root.resolve())} "
                  f"(languages: {', '.join(declared)})")


def _parse_map(items: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        col, sep, fld = item.partition("=")
        if not sep or not col or not fld:
            raise UsageError(f"--map expects COLUMN=FIELD (e.g. body=text), not {item!r}.")
        mapping[fld.strip()] = col.strip()
    return mapping


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", default=None,
              help="Importer to use instead of sniffing (telegram-json, telegram-html, "
              "whatsapp, viber, csv, jsonl, parquet).")
@click.option("--map", "maps", multiple=True, metavar="COL=FIELD",
              help="Generic tables: map a source column to a chatlens field (text, ts, author, "
              "author_name, chat, message_id, reply_to, kind). Repeatable.")
@click.option("--tz", default="UTC", show_default=True,
              help="Time zone of naive local timestamps (WhatsApp, old exports).")
@click.option("--chat", default=None, help="Chat id/title for sources that carry none.")
@click.option("--date-order", type=click.Choice(["dmy", "mdy", "ymd"]), default=None,
              help="WhatsApp date order when it cannot be inferred from the file.")
@click.option("--encoding", default=None, metavar="NAME",
              help="Text encoding of the sources (e.g. cp1251, koi8-r, gb18030, utf-16) "
              "instead of detecting it: WhatsApp, Telegram HTML, CSV/TSV, JSON Lines; for "
              "Viber, the encoding of text that is not UTF-8.")
@project_options
def ingest(paths: tuple[str, ...], fmt: str | None, maps: tuple[str, ...], tz: str,
           chat: str | None, date_order: str | None, encoding: str | None,
           project_dir: Path | None, as_json: bool) -> None:
    """Ingest exports: files, folders or zip archives."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    column_map = _parse_map(maps)
    with opened(project_dir) as proj:
        bar = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                       TextColumn("{task.completed:,} records"), TimeElapsedColumn(),
                       console=err, transient=True, disable=as_json)
        tasks: dict[str, Any] = {}

        def progress(path: str, n: int) -> None:
            if path not in tasks:
                tasks[path] = bar.add_task(safe(Path(path).name), total=None)
            bar.update(tasks[path], completed=n)

        with bar:
            report = proj.ingest(list(paths), format=fmt, column_map=column_map, tz=tz,
                                 chat=chat, date_order=date_order, encoding=encoding,
                                 progress=progress)
    if as_json:
        emit_json(report.as_dict())
    else:
        for s in report.sources:
            if s.status == "failed":
                err.print(f"[red]error[/red]: {safe(s.error)}")
            elif s.status in ("unchanged", "skipped"):
                out.print(safe(s.error))  # it names the file
            else:
                resumed = f", resumed at record {s.resumed_from:,}" if s.resumed_from else ""
                out.print(
                    f"{safe(s.path)} {safe(f'[{s.format}]')}: read {s.read:,} = stored "
                    f"{s.stored:,} + duplicate {s.duplicate:,} + quarantined "
                    f"{s.quarantined:,}{resumed}"
                )
        naive = [s for s in report.sources if s.status == "complete" and s.format == "whatsapp"]
        if naive and click.get_current_context().get_parameter_source("tz") is \
                click.core.ParameterSource.DEFAULT:
            err.print("[yellow]note[/yellow]: WhatsApp times carry no time zone and were read "
                      "as UTC. If the phone was in another zone, erase the source with "
                      "`chatlens forget --source ID` and ingest it again with --tz ZONE (e.g. "
                      "--tz Europe/Moscow): months and --split dates depend on it.")
        counts = Counter(s.status for s in report.sources)
        others = ", ".join(f"{counts[k]} {k}" for k in ("unchanged", "skipped", "failed")
                           if counts[k])
        out.print(f"run {report.run_id}: {counts['complete']} of {len(report.sources)} sources "
                  f"ingested, {report.total('stored'):,} new messages"
                  + (f" ({others})" if others else ""))
    if not [s for s in report.sources if s.status != "failed"]:
        sys.exit(1)


@cli.command()
@click.option("--quarantine", "show_quarantine", is_flag=True,
              help="Also list quarantined records with source, position and reason.")
@project_options
def status(show_quarantine: bool, project_dir: Path | None, as_json: bool) -> None:
    """Counts of messages, chats, sources and quarantined records."""
    with opened(project_dir, read_only=True) as proj:
        st = proj.status()
        quarantined = proj.quarantined(200) if show_quarantine else []
    if as_json:
        if show_quarantine:
            st["quarantine"] = quarantined
        emit_json(st)
        return
    out.print(f"[bold]{st['messages']:,}[/bold] messages in {st['chats']:,} chats from "
              f"{st['sources']:,} sources; {st['quarantined']:,} quarantined; "
              f"{st['authors']:,} pseudonymous authors")
    if st["first"]:
        out.print(f"time span: {st['first']} … {st['last']} (UTC)")
    table = Table("platform", "messages", "chats", "service", title="by platform")
    for row in st["by_platform"]:
        table.add_row(row["platform"], f"{row['messages']:,}", f"{row['chats']:,}",
                      f"{row['service']:,}")
    out.print(table)
    src = Table("source", "format", "status", "read", "stored", "dup", "quar.", title="sources")
    for s in st["sources_detail"]:
        src.add_row(safe(s["path"]), s["format"], s["status"], f"{s['n_read']:,}",
                    f"{s['n_stored']:,}", f"{s['n_duplicate']:,}", f"{s['n_quarantined']:,}")
    out.print(src)
    for q in quarantined:
        out.print(f"{safe(q['path'])} ({safe(q['source_loc'])}): {safe(q['reason'])}")
    if st["interrupted_erasures"]:
        click.echo(f"warning: the erasure {', '.join(st['interrupted_erasures'])} did not finish: "
                   "erased text may still be in the database file; run the same `chatlens "
                   "forget` again to finish it", err=True)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]),
              default=None, help="Output format (default: from the file suffix, else parquet).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Output file (default: messages.<format> in the project).")
@reveal_option
@project_options
def export(fmt: str | None, output: Path | None, reveal: bool, project_dir: Path | None,
           as_json: bool) -> None:
    """Export messages with pseudonymised authors and 1:1 chats, phone numbers, e-mails and
    names in service texts masked (no original records)."""
    with opened(project_dir, read_only=True, record_runs=True) as proj:
        if output is None:
            output = proj.root / f"messages.{fmt or 'parquet'}"
        n = proj.export(output, fmt, reveal=reveal)
    if as_json:
        emit_json({"path": str(output), "rows": n})
    else:
        out.print(f"wrote {n:,} messages to {safe(output)}")


def _stage_bar(as_json: bool) -> tuple[Any, Callable[[str, int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err, transient=True, disable=as_json)
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return bar, progress


def engine_options(func: F) -> F:
    func = click.option("--master", default=None, metavar="URL",
                        help="Spark master for --engine spark, e.g. local[2] or "
                        "spark://host:7077 (default: spark-submit's or SPARK_* settings).")(func)
    func = click.option("--engine", type=click.Choice(["local", "spark"]), default="local",
                        show_default=True, help="Where the stages run: worker processes here, "
                        "or Spark (pip install 'chatlens[spark]'; Java 17).")(func)
    return click.option("--workers", default=1, show_default=True,
                        help="Worker processes (local engine).")(func)


@cli.command()
@engine_options
@project_options
def enrich(workers: int, engine: str, master: str | None, project_dir: Path | None,
           as_json: bool) -> None:
    """Language, normalised text, lemmas, URLs, mentions, hashtags, emoji and places per message."""
    bar, progress = _stage_bar(as_json)
    with opened(project_dir) as proj, bar:
        report = proj.enrich(workers=workers, progress=progress, engine=engine, master=master)
    if as_json:
        emit_json(report.as_dict())
        return
    out.print(f"enriched {report.enriched:,} new messages (settings {report.fingerprint}); "
              f"{report.todo - report.enriched:,} left")
    langs = ", ".join(f"{k} {v:,}" for k, v in report.languages.items())
    out.print(f"languages: {langs}")


@cli.command()
@click.option("--codebook", "codebook_ref", default=None,
              help="Codebook file or builtin:NAME (default: the last one used, else "
              "builtin:exodus-2022).")
@engine_options
@click.option("--allow-remote", is_flag=True, help="Let llm scorers whose codebook entry says "
              "allow_remote: true send messages to a host that is not this machine.")
@click.option("--dry-run", is_flag=True, help="Print the language-model calls, tokens, cost "
              "and time coding would take; send nothing.")
@project_options
def code(codebook_ref: str | None, workers: int, engine: str, master: str | None,
         allow_remote: bool, dry_run: bool, project_dir: Path | None, as_json: bool) -> None:
    """Apply every measure of a codebook to the project's messages (enriching first)."""
    if dry_run:
        from chatlens.cli.llm import print_dry_run

        with opened(project_dir) as proj:
            plan = proj.llm_dry_run(codebook_ref, workers=workers, allow_remote=allow_remote)
        print_dry_run(plan, as_json)
        return
    bar, progress = _stage_bar(as_json)
    with opened(project_dir) as proj, bar:
        report = proj.code(codebook_ref, workers=workers, progress=progress,
                           allow_remote=allow_remote, engine=engine, master=master)
    if as_json:
        emit_json(report.as_dict())
        return
    if report.llm:
        from chatlens.cli.llm import print_llm_report

        print_llm_report(report.llm)
    changed = ", ".join(report.recoded_measures) or "none"
    out.print(f"codebook {safe(report.codebook)} {safe(report.version)}: coded "
              f"{report.messages:,} messages ({report.rows:,} codes); re-coded measures: "
              f"{safe(changed)}")
    table = Table("measure", "value", "messages", title="codes (naive counts of the codebook's "
                  "rules and models: not estimates)")
    for row in report.summary:
        table.add_row(safe(row["measure"]), safe(row["value"]), f"{row['n']:,}")
    out.print(table)
    for note in report.pending:
        err.print(f"[yellow]pending[/yellow]: {safe(note)}")


@cli.group()
def parquet() -> None:
    """The Parquet dataset exchanged with a Spark cluster (docs/spark.md)."""


@parquet.command("export")
@click.argument("uri")
@click.option("--codebook", "codebook_ref", default=None,
              help="Codebook the job codes with (default: the last one used, else "
              "builtin:exodus-2022).")
@project_options
def parquet_export(uri: str, codebook_ref: str | None, project_dir: Path | None,
                   as_json: bool) -> None:
    """Write every message to a dataset partitioned by platform, chat and month at URI (a
    folder or s3://…), with the job for `python -m chatlens.engines.spark URI`. Texts are
    included as stored; authors' identities and original records are not."""
    with opened(project_dir, read_only=True, record_runs=True) as proj:
        report = proj.export_dataset(uri, codebook_ref)
    if as_json:
        emit_json(report)
    else:
        out.print(f"wrote {report['messages']:,} messages to {safe(uri)} (codebook "
                  f"{safe(report['codebook'])}); run the Spark job on it, then `chatlens "
                  "parquet attach`")


@parquet.command("attach")
@click.argument("uri")
@project_options
def parquet_attach(uri: str, project_dir: Path | None, as_json: bool) -> None:
    """Add the enrichment and codes a Spark job wrote into the dataset at URI to the project
    (only what it lacks; estimates then read them as usual)."""
    with opened(project_dir) as proj:
        report = proj.attach_dataset(uri)
    if as_json:
        emit_json(report)
    else:
        out.print(f"attached {report['enriched']:,} enriched messages and {report['codes']:,} "
                  f"codes of codebook {safe(report['codebook'])} from {safe(uri)}")


@cli.group()
def codebook() -> None:
    """Validate and show codebooks."""


@codebook.command("validate")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def codebook_validate(ref: str, as_json: bool) -> None:
    """Check a codebook file (or builtin:NAME); every problem names its place in the file."""
    from chatlens.codebook import load_codebook
    from chatlens.errors import CodebookError

    try:
        cb = load_codebook(ref)
    except CodebookError as exc:
        if as_json:
            emit_json({"valid": False, "problems": [
                {"path": p, "line": line, "message": m} for p, line, m in exc.problems]})
        else:
            err.print(safe_block(str(exc)))
        sys.exit(1)
    if as_json:
        emit_json({"valid": True, "name": cb.name, "version": cb.version, "hash": cb.hash(),
                   "measures": [m.id for m in cb.measures]})
    else:
        out.print(f"{safe(ref)}: valid — {safe(cb.name)} {safe(cb.version)}, "
                  f"{len(cb.measures)} measures, hash {cb.hash()[:12]}")


@codebook.command("show")
@click.argument("ref", required=False)
@click.option("--yaml", "as_yaml", is_flag=True,
              help="Print the whole codebook as YAML, to copy and edit (e.g. to add a model).")
@project_options
def codebook_show(ref: str | None, as_yaml: bool, project_dir: Path | None,
                  as_json: bool) -> None:
    """Show a codebook (default: the project's current one) with its measures."""
    from chatlens.codebook import builtin_names, load_codebook

    if ref is None and project_dir is None and not (default_project_dir() / "chatlens.duckdb"
                                                     ).exists():
        cb = load_codebook("builtin:exodus-2022")
    elif ref is not None:
        cb = load_codebook(ref)
    else:
        with opened(project_dir, read_only=True) as proj:
            cb = proj.codebook()[0]
    if as_json:
        emit_json(cb.resolved() | {"hash": cb.hash()})
        return
    if as_yaml:
        import yaml

        click.echo(yaml.safe_dump(cb.model_dump(mode="json", exclude_defaults=True),
                                  allow_unicode=True, sort_keys=False, width=100), nl=False)
        return
    out.print(f"[bold]{safe(cb.name)}[/bold] {safe(cb.version)} — languages "
              f"{', '.join(cb.languages)}; hash {cb.hash()[:12]}")
    if cb.description:
        out.print(safe(cb.description.strip()))
    for m in cb.measures:
        scorers = ", ".join(s.type for s in m.scorers)
        out.print(f"\n[bold]{safe(m.id)}[/bold] ({m.type}: {safe(' / '.join(m.labels))}; "
                  f"scorers: {scorers}, combine {m.combine})")
        out.print(f"  {safe(m.question)}")
    out.print(f"\nbuilt-in codebooks: {', '.join('builtin:' + n for n in builtin_names())}")


def safe_block(text: str) -> str:
    """Like :func:`safe` but keeps line breaks."""
    return "\n".join(safe(line) for line in text.splitlines())


@cli.command()
@click.argument("query")
@click.option("--measure", "measure_value", default=None, metavar="M[=V]",
              help="Only messages in measure M's population (with value V).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="Messages per page.")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0),
              help="Skip this many (newest first): the next page starts at offset + limit.")
@reveal_option
@project_options
def search(query: str, measure_value: str | None, limit: int, offset: int, reveal: bool,
           project_dir: Path | None, as_json: bool) -> None:
    """Lemma-aware search: every word of QUERY, in any inflected form, highlighted (phone
    numbers, e-mails and 1:1 chats masked unless --reveal)."""
    measure, _, value = (measure_value or "").partition("=")
    with opened(project_dir, read_only=True, record_runs=True) as proj:
        rows = proj.search(query, measure or None, value or None, limit, offset, reveal)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        text = r["text"]
        parts, pos = [], 0
        for a, b in r["highlights"]:
            parts.append(safe(text[pos:a]))
            parts.append(f"[bold yellow]{safe(text[a:b])}[/bold yellow]")
            pos = b
        parts.append(safe(text[pos:]))
        out.print(f"[dim]{r['ts']} {safe(r['chat_title'] or r['chat_key'])} "
                  f"{safe(r['author_key'])}[/dim]\n  {''.join(parts)}")
    shown = f"messages {offset + 1}-{offset + len(rows)}" if rows else "no messages"
    more = f"; more with --offset {offset + limit}" if len(rows) == limit else ""
    out.print(shown + more)


@cli.command()
@click.option("--measure", required=True, help="Measure whose population is sampled.")
@click.option("--kind", type=click.Choice(["audit", "train"]), default="audit", show_default=True,
              help="audit: a probability sample for estimates; train: items to improve a model.")
@click.option("--n", "n", type=int, default=200, show_default=True, help="Sample size.")
@click.option("--strata", type=click.Choice(["chat", "month"]), default=None,
              help="Audit only: stratify by chat or month (proportional allocation).")
@click.option("--seed", type=int, default=None, help="Random seed (default: a new one, recorded).")
@click.option("--design", type=click.Choice(["random", "active"]), default="random",
              show_default=True,
              help="Audit only. random: simple random (or --strata) sample; active: a Poisson "
              "batch that favours messages the model is unsure of, each drawn with a recorded "
              "probability (its size is random, about --n); estimates weight by it.")
@click.option("--floor", type=float, default=None,
              help="--design active: share of the inclusion probabilities spread evenly over "
              "all messages, so none is almost never drawn (default 0.2).")
@project_options
def sample(measure: str, kind: str, n: int, strata: str | None, seed: int | None, design: str,
           floor: float | None, project_dir: Path | None, as_json: bool) -> None:
    """Draw an audit or a training sample of a measure's population for labelling."""
    with opened(project_dir) as proj:
        result = proj.sample(measure, kind, n, strata, seed, design, floor)
    if as_json:
        emit_json(result)
        return
    what = f"{kind}, active design" if design == "active" else kind
    out.print(f"sample {result['sample_id']}: {result['n']:,} of {result['frame_size']:,} "
              f"messages ({what}, seed {result['seed']}); label it in `chatlens serve` or "
              f"export it with `chatlens label export --sample {result['sample_id']} "
              "--format labelstudio-tasks -o tasks.json`")
    if design == "active":
        lo, hi = result["design"]["pi_range"] or (0.0, 0.0)
        out.print(f"  drawn with probabilities {lo:.4f}-{hi:.4f} (recorded per item; about "
                  f"{result['design']['expected_n']:,} expected); estimates weight each label "
                  "by 1/probability")
    comp = result["design"].get("composition")
    if comp:  # a training sample: how it compares with the population it was drawn from
        if result["design"].get("note"):
            out.print(f"[dim]{safe(result['design']['note'])}[/dim]")
        for name in ("sample", "frame"):
            c = comp[name]
            out.print(f"  {name:<6} {c['n']:>8,} messages, {100 * c['share_flagged']:.1f}% coded "
                      f"positive, median length {c['length']['median']:.0f} characters")
    if result["design"].get("warning"):
        err.print(f"[yellow]warning[/yellow]: {safe(result['design']['warning'])}")


@cli.group(invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Dropped samples too.")
@project_options
@click.pass_context
def samples(ctx: click.Context, show_all: bool, project_dir: Path | None,
            as_json: bool) -> None:
    """List samples with their kind, size and labelling progress (or drop one)."""
    from chatlens.project.estimate import design_key

    if ctx.invoked_subcommand is not None:
        return
    with opened(project_dir, read_only=True) as proj:
        rows = proj.labels().samples(dropped=show_all)
    if as_json:
        emit_json(rows)
        return
    table = Table("sample", "measure", "kind", "items", "labelled", "created",
                  *(["status"] if show_all else []))
    table.columns[0].overflow = "fold"  # ids are typed into later commands: never cut them
    for r in rows:
        kind = f"{r['kind']} (active)" if design_key(r) == "active" else r["kind"]
        table.add_row(r["sample_id"], safe(r["measure"]), kind, str(r["n"]),
                      str(r["labelled"]), r["created"][:19], *([r["status"]] if show_all else []))
    out.print(table)


@samples.command("drop")
@click.argument("sample_id")
@click.option("--restore", is_flag=True, help="Make a dropped sample count again.")
@project_options
def samples_drop(sample_id: str, restore: bool, project_dir: Path | None,
                 as_json: bool) -> None:
    """Drop a sample: its labels stay stored but no longer count in estimates or training."""
    with opened(project_dir) as proj:
        proj.drop_sample(sample_id, restore)
    if as_json:
        emit_json({"sample_id": sample_id, "status": "active" if restore else "dropped"})
    else:
        out.print(f"{safe(sample_id)}: {'restored' if restore else 'dropped'}")


@cli.group()
def label() -> None:
    """Import and export human labels.

    \b
    Label files (CSV with a header row, or JSONL with one object a line):
      column       required  meaning
      uid          yes       the message's uid (as in evidence exports and samples)
      measure      yes*      the measure id (*or give --measure to import one measure)
      value        yes       one of the measure's labels; a row without one is skipped and
                             counted as not labelled yet
      annotator    no        the coder (default: --annotator, else import); with
                             --annotator, a row naming another coder is refused
      created      no        ISO 8601 time, naive = UTC (default: the time of import)
      span         no        character offsets start:end (JSONL: [start, end])
      comment      no        free text
      origin       no        import (default) or correction (a correction never audits)
      sample_kind  no        written by export, ignored by import: only --sample makes
                             labels audit labels
    Other columns (text, context_before, context_after, choices) are ignored on import.
    Label Studio JSON exports (a .json file) are read too.

    \b
    Coding sheet: `chatlens label export --sample S -o items.csv` (or .jsonl) writes one row
    per item of the sample: uid, measure, text, context_before, context_after (plain text,
    one message per line), choices, value (empty until coded), annotator, comment. Fill in
    value and read it back with `chatlens label import items.csv --sample S`. For a second
    coder, `label export --sample S --annotator B` writes a blind sheet: only B's own labels,
    B's name in every row.
    """


@label.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--annotator", default=None,
              help="The coder of these labels: rows naming another coder are refused. Default: "
              "each row's annotator column, else 'import'.")
@click.option("--sample", "sample_id", default=None,
              help="The sample these labels were made for; only then can they count as audit "
              "labels.")
@click.option("--measure", default=None, help="Only labels of this measure.")
@click.option("--reference", default=None, metavar="NAME",
              help="Declare these labels a reference set: labels of another corpus or period, "
              "which quantification may use where this project has no audit.")
@project_options
def label_import(path: Path, annotator: str | None, sample_id: str | None, measure: str | None,
                 reference: str | None, project_dir: Path | None, as_json: bool) -> None:
    """Import labels from CSV, JSONL or a Label Studio export."""
    with opened(project_dir, read_only=True) as proj:  # labels have their own store
        report = proj.import_labels(path, annotator, sample_id, measure, reference)
    if as_json:
        emit_json(report.as_dict())
    else:
        from chatlens.annotate.labels_io import NO_VALUE

        blank = [p for p in report.problems if p.endswith(NO_VALUE)]
        for problem in report.problems:
            if not problem.endswith(NO_VALUE):
                err.print(f"[yellow]skipped[/yellow]: {safe(problem)}")
        unlabelled = f" ({len(blank):,} without a value: not labelled yet)" if blank else ""
        out.print(f"{safe(path)}: read {report.read:,}, stored {report.stored:,}, "
                  + (f"already imported {report.already:,}, " if report.already else "")
                  + f"skipped {len(report.problems):,}{unlabelled}")
    if report.read and not report.stored and not report.already:
        sys.exit(1)


@label.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "labelstudio",
                                                    "labelstudio-tasks"]), default=None,
              help="Labels as CSV/JSONL/Label Studio JSON, or a sample as Label Studio tasks "
              "(with a .config.xml beside it). Default: from the suffix.")
@click.option("--sample", "sample_id", default=None,
              help="A sample: as CSV or JSONL, a coding sheet with one row per item (uid, "
              "measure, text, context, choices, an empty value column) that `label import "
              "--sample` reads back; as labelstudio, the sample's labels.")
@click.option("--measure", default=None)
@click.option("--annotator", default=None,
              help="Only this coder's labels; with --sample, a blind coding sheet for them.")
@project_options
def label_export(output: Path, fmt: str | None, sample_id: str | None, measure: str | None,
                 annotator: str | None, project_dir: Path | None, as_json: bool) -> None:
    """Export labels, or a sample's items as a coding sheet or Label Studio tasks."""
    with opened(project_dir, read_only=True) as proj:
        n = proj.export_labels(output, fmt, sample_id, measure, annotator)
    if as_json:
        emit_json({"path": str(output), "rows": n})
    else:
        out.print(f"wrote {n:,} rows to {safe(output)}")


@label.command("adjudicate")
@click.option("--measure", required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the disagreements as a CSV sheet: fill its value column.")
@click.option("--import", "sheet", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Import a filled sheet (columns uid, value).")
@click.option("--uid", default=None, help="Settle one message (with --value).")
@click.option("--value", default=None)
@click.option("--adjudicator", default="adjudicator", show_default=True,
              help="Name recorded with the decisions.")
@project_options
def label_adjudicate(measure: str, output: Path | None, sheet: Path | None, uid: str | None,
                     value: str | None, adjudicator: str, project_dir: Path | None,
                     as_json: bool) -> None:
    """Settle audited messages whose coders disagree: list them, write them to a sheet, or
    import decisions. A decision wins over the coders' labels (theirs are kept)."""
    from chatlens.project.labels import read_decisions, write_adjudication_sheet

    if (uid is None) != (value is None):
        raise UsageError("--uid and --value go together.")
    decisions = read_decisions(sheet) if sheet else {}
    if uid is not None and value is not None:
        decisions[uid] = value
    with opened(project_dir, read_only=not decisions) as proj:
        if decisions:
            result = proj.adjudicate(measure, decisions, adjudicator)
            if as_json:
                emit_json(result)
                return
            for p in result["problems"]:
                err.print(f"[yellow]skipped[/yellow]: {safe(p)}")
            out.print(f"settled {result['decided']:,}; {result['remaining']:,} disagreements "
                      "left")
            return
        items = proj.unresolved(measure)
    if output is not None:
        n = write_adjudication_sheet(items, output)
        if as_json:
            emit_json({"path": str(output), "rows": n})
        else:
            out.print(f"wrote {n:,} disagreements to {safe(output)}; fill the value column and "
                      f"run `chatlens label adjudicate --measure {measure} --import "
                      f"{safe(output)}`")
        return
    if as_json:
        emit_json(items)
        return
    for it in items:
        coders = ", ".join(f"{safe(k)}: {safe(v)}" for k, v in sorted(it["labels"].items()))
        out.print(f"[bold]{it['uid']}[/bold] ({coders})\n  {safe(it['text'])}")
    out.print(f"{len(items):,} unresolved disagreements")


@cli.command()
@click.option("--measure", default=None)
@project_options
def agreement(measure: str | None, project_dir: Path | None, as_json: bool) -> None:
    """Inter-coder agreement per measure (Krippendorff's alpha, Cohen's kappa) and the items
    coders disagree on, for adjudication."""
    with opened(project_dir, read_only=True) as proj:
        result = proj.agreement(measure)
    if as_json:
        emit_json(result)
        return
    def num(x: float | None, scale: float = 1.0, digits: int = 3) -> str:
        return "—" if x is None else f"{scale * x:.{digits}f}"

    table = Table("measure", "units", "coders", "pairable", "alpha", "kappa", "agree %")
    for m, r in result["report"].items():
        table.add_row(safe(m), str(r["n_units"]), str(r["n_coders"]), str(r["pairable_units"]),
                      num(r["alpha"]), num(r["kappa"]), num(r["percent_agreement"], 100, 1))
    out.print(table)
    for d in result["disagreements"][:50]:
        values = ", ".join(f"{safe(k)}: {safe(v)}" for k, v in d["values"].items())
        out.print(f"disagreement {safe(d['measure'])} {d['uid']}: {values}")


@cli.command()
@click.option("--measure", required=True)
@click.option("--cv", default=5, show_default=True, help="Cross-validation folds.")
@click.option("--seed", default=0, show_default=True)
@click.option("--merge", "merges", multiple=True, metavar="RARE=INTO",
              help="Train with label RARE counted as INTO (the model predicts INTO). Repeatable.")
@click.option("--leave-out", "leave_out", multiple=True, metavar="LABEL",
              help="Train without the messages labelled LABEL (never predicted). Repeatable.")
@click.option("--dense", is_flag=True,
              help="Add a multilingual sentence embedding to the features (needs `pip install "
                   "'chatlens[dense]'`; slow: a few to tens of messages per CPU-second, to "
                   "train and to code).")
@project_options
def train(measure: str, cv: int, seed: int, merges: tuple[str, ...], leave_out: tuple[str, ...],
          dense: bool, project_dir: Path | None, as_json: bool) -> None:
    """Train a model for a measure from training labels and corrections (audit labels are
    never used), with cross-validated metrics and a model card."""
    with opened(project_dir) as proj:
        result = proj.train(measure, cv, seed, dict(_pair(x) for x in merges) or None,
                            list(leave_out) or None, dense=dense)
    if as_json:
        emit_json(result)
        return
    met = result["metrics"]
    out.print(f"trained {result['model']} ({met['chosen']}): macro F1 {met['macro_f1']:.3f}, "
              f"calibration error {met['ece']:.3f}, cross-validated on {result['labels']}")
    out.print(f"card: {safe(result['path'])}/MODEL_CARD.md; to use it, {result['use']}")


@cli.command()
@click.option("--card", "card", default=None, metavar="NAME", help="Print one model's card.")
@project_options
def models(card: str | None, project_dir: Path | None, as_json: bool) -> None:
    """Models trained in this project and shipped with chatlens."""
    from chatlens.project.train import model_card

    with opened(project_dir, read_only=True) as proj:
        if card:
            click.echo(model_card(proj, card))
            return
        rows = proj.models()
    if as_json:
        emit_json(rows)
        return
    table = Table("model", "where", "measure", "labels", "macro F1", "ECE", "created")
    for r in rows:
        table.add_row(safe(r["model"]), r["where"], safe(r["measure"]),
                      safe(", ".join(r["labels"] or [])),
                      f"{r['macro_f1']:.3f}" if r["macro_f1"] is not None else "—",
                      f"{r['ece']:.3f}" if r["ece"] is not None else "—",
                      safe(str(r["created"])[:19]))
    out.print(table)


def _interval(d: dict[str, Any]) -> str:
    """The point (a range when unresolved ties allow several, see ``Estimate.point_range``)
    and the interval, in percent."""
    rng = d.get("point_range")
    point = (f"{100 * rng[0]:.1f}–{100 * rng[1]:.1f}%" if rng else f"{100 * d['point']:.1f}%")
    return f"{point} [{100 * d['lower']:.1f}, {100 * d['upper']:.1f}]"


def population_options(func: F) -> F:
    """--lang, --chat, --since, --until and --where: the one population filter."""
    for opt in reversed([
        click.option("--lang", "langs", multiple=True, help="Only messages in this language "
                     "(ISO code). Repeatable."),
        click.option("--chat", "chats", multiple=True, help="Only this chat (chat key, as "
                     "`chatlens status` lists). Repeatable."),
        click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None),
        click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None),
        click.option("--where", "where", multiple=True, metavar="MEASURE=VALUE",
                     help="Only messages coded MEASURE=VALUE. Repeatable.")]):
        func = opt(func)
    return func


def _population(langs: tuple[str, ...], chats: tuple[str, ...], since: Any, until: Any,
                where: tuple[str, ...]) -> Any:
    from chatlens.project.estimate import Population

    return Population(languages=list(langs) or None, chats=list(chats) or None,
                      since=since.date() if since else None,
                      until=until.date() if until else None, where=[_pair(w) for w in where])


@cli.command()
@click.option("--measure", required=True)
@click.option("--value", default=None, help="Value to estimate (default: binary positive label, "
              "or every label of a categorical measure).")
@click.option("--by", type=click.Choice(["chat", "month", "week", "lang"]), default=None)
@click.option("--method", type=click.Choice(["auto", "audit", "ppi", "quantify", "naive"]),
              default="auto", show_default=True)
@click.option("--level", type=float, default=0.95, show_default=True)
@population_options
@click.option("--split", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Compare before and from this date (e.g. 2022-09-21): both shares and the "
              "difference with its interval.")
@click.option("--sample", "sample_ids", multiple=True, metavar="ID",
              help="Use these audit samples only (default: all of one design). Repeatable.")
@click.option("--ties", default="bounds", show_default=True,
              help="Audited messages whose coders disagree, not adjudicated: bounds (counted "
              "both ways: the point is shown as the range of the two settlements' points and "
              "the interval covers both), exclude, or annotator:NAME.")
@project_options
def estimate(measure: str, value: str | None, by: str | None, method: str, level: float,
             langs: tuple[str, ...], chats: tuple[str, ...], since: Any, until: Any,
             where: tuple[str, ...], split: Any, sample_ids: tuple[str, ...], ties: str,
             project_dir: Path | None, as_json: bool) -> None:
    """Prevalence of a measure's value with a confidence interval, overall or by group."""
    from chatlens.project.estimate import compare_periods

    pop = _population(langs, chats, since, until, where)
    samples_ = list(sample_ids) or None
    with opened(project_dir, read_only=True, record_runs=True) as proj:
        if split is not None:
            result = compare_periods(proj, measure, value, split.date(), method, level, pop,
                                     samples_, ties)
        else:
            rows = proj.estimate(measure, value, by, method, level, pop, samples_, ties)
            if by == "chat":  # 1:1 chats are shown by their pseudonym, as everywhere
                masker = proj.masker()
                for r in rows:
                    r.group = masker.chat_key(r.group) or r.group
    if split is not None:
        if as_json:
            emit_json(result)
            return
        for name, shown in (("before", "before"), ("after", "from")):  # the split day is after
            d = result[name]
            out.print(f"{shown} {split.date()}: {_shown(d, method)} ({d['method']}, "
                      f"{d['n_labelled']:,} labelled of {d['N_population'] or 0:,})")
        diff = result["difference"]
        if result["valid"]:
            rng = diff["point_range"]
            point = (f"{100 * rng[0]:+.1f} to {100 * rng[1]:+.1f}" if rng else
                     f"{100 * diff['point']:+.1f}")
            out.print(f"after − before: {point} points "
                      f"[{100 * diff['lower']:+.1f}, {100 * diff['upper']:+.1f}] ({level:.0%})")
        else:
            out.print("after − before: no valid estimate (see above)")
        if result["undated"]:
            err.print(f"[yellow]warning[/yellow]: {result['undated']:,} undated messages are in "
                      "neither period")
        for w in dict.fromkeys(result["before"]["warnings"] + result["after"]["warnings"]):
            if "no date" not in w:
                err.print(f"[yellow]warning[/yellow]: {safe(w)}")
        return
    if as_json:
        emit_json([r.as_dict() for r in rows])
        return
    table = Table("value", *(["group"] if by else []), "estimate [interval]", "method",
                  "labelled", "N", "naive", title=f"{safe(measure)} ({level:.0%} intervals)")
    if by:
        table.columns[1].overflow = "fold"  # a group's name is what tells the rows apart
    for r in rows:
        d = r.as_dict()
        table.add_row(safe(r.value), *([safe(r.group)] if by else []), _shown(d, method),
                      d["method"], f"{d['n_labelled']:,}" + (
                          f" ({d['unresolved']} tied)" if d["unresolved"] else ""),
                      f"{d['N_population'] or 0:,}", f"{100 * d['naive']['point']:.1f}% (naive)")
    out.print(table)
    if rows:
        out.print(f"[dim]{safe(rows[0].method_reason)}[/dim]")
        for w in rows[0].warnings:
            err.print(f"[yellow]warning[/yellow]: {safe(w)}")


def _shown(d: dict[str, Any], method: str) -> str:
    """An estimate as the CLI shows it: no interval where there is no valid one."""
    if d["status"] == "none" and method != "naive":
        return "— no valid estimate yet: draw and label an audit sample"
    if d["status"] == "at-bound":
        return f"{100 * d['point']:.1f}% [yellow](at a bound: no valid interval)[/yellow]"
    if d["status"] == "too-few":
        return f"— {d['status_note']}"
    note = d["status_note"]
    return _interval(d) + (f" [yellow]({note})[/yellow]" if note else "")


def _pair(text: str) -> tuple[str, str]:
    left, sep, right = text.partition("=")
    if not sep or not left or not right:
        raise UsageError(f"expected MEASURE=VALUE, not {text!r}.")
    return left, right


@cli.group()
def claims() -> None:
    """Check claims files against the project."""


@claims.command("check")
@click.argument("path")
@project_options
def claims_check(path: str, project_dir: Path | None, as_json: bool) -> None:
    """Estimate every claim of PATH (a file or builtin:NAME) and give verdicts by interval."""
    from chatlens.project.claims import check_claims

    with opened(project_dir, read_only=True, record_runs=True) as proj:
        result = check_claims(proj, path)
    if as_json:
        emit_json(result)
        return
    colour = {"supported": "green", "contradicted": "red", "inconclusive": "yellow"}
    for c in result["results"]:
        v = c["verdict"]
        out.print(f"[bold]{safe(c['id'])}[/bold]: [{colour[v]}]{v}[/{colour[v]}] — "
                  f"{safe(c['statement'])}")
        out.print(f"  {safe(c['measure'])}={safe(c['value'])}, {safe(c['compare'])}: "
                  f"{safe(c['reason'])}")
        out.print(f"  evidence: {safe(c['evidence'])}")


@cli.command()
@click.option("--measure", required=True)
@click.option("--value", required=True)
@population_options
@click.option("--limit", default=20, show_default=True)
@reveal_option
@project_options
def evidence(measure: str, value: str, langs: tuple[str, ...], chats: tuple[str, ...],
             since: Any, until: Any, where: tuple[str, ...], limit: int, reveal: bool,
             project_dir: Path | None, as_json: bool) -> None:
    """Messages of the population coded MEASURE=VALUE (random order, reproducible), with
    matched terms; the same population filter as `estimate` (phone numbers, e-mails and 1:1
    chats masked unless --reveal)."""
    pop = _population(langs, chats, since, until, where)
    with opened(project_dir, read_only=True, record_runs=True) as proj:
        rows = proj.evidence(measure, value, pop, limit, reveal)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        terms = ", ".join(r["matched"] or [])
        out.print(f"[dim]{r['ts']} {safe(r['chat_title'] or r['chat_key'])} "
                  f"{safe(r['author_key'])} ({safe(terms)})[/dim]\n  {safe(r['text'])}")
    out.print(f"{len(rows)} messages")


@cli.command()
@click.option("--messages", default=400, show_default=True, help="Messages per synthetic chat.")
@click.option("--seed", default=7, show_default=True)
@project_options
def demo(messages: int, seed: int, project_dir: Path | None, as_json: bool) -> None:
    """Build a synthetic corpus in real export formats, ingest it and summarise it."""
    from chatlens.demo import run_demo

    root = project_dir or Path("chatlens-demo")
    result = run_demo(root, n_messages=messages, seed=seed)
    if as_json:
        emit_json(result)
        sys.exit(1 if result["ingest"]["failed"] else 0)
    out.print("[bold]chatlens demo[/bold] — SYNTHETIC data, generated for this demo; "
              "no real person or chat.")
    out.print(f"project: {safe(result['project'])}")
    for f in result["files"]:
        out.print(f"  wrote {safe(f['path'])} ({f['format']}, {f['messages']:,} messages)")
    ing = result["ingest"]["totals"]
    out.print(f"ingested: read {ing['read']:,} = stored {ing['stored']:,} + duplicate "
              f"{ing['duplicate']:,} + quarantined {ing['quarantined']:,}")
    st = result["status"]
    out.print(f"store: {st['messages']:,} messages, {st['chats']} chats, "
              f"{st['authors']} pseudonymous authors, {st['first']} … {st['last']}")
    coded = result["code"]
    out.print(f"coded with {coded['codebook']} {coded['version']}: {coded['messages']:,} "
              "messages; rule-based hits per measure (naive counts, not estimates):")
    for row in coded["summary"]:
        out.print(f"  {safe(row['measure'])} = {safe(row['value'])}: {row['n']:,}")
    out.print("estimates from an audit sample of 150 labelled by a simulated coder "
              "(95% intervals), against the planted truth:")
    for e in result["estimates"]:
        mark = "[green]contains[/green]" if e["covered"] else "[red]misses[/red]"
        out.print(f"  {e['measure']} = {e['value']}: {100 * e['point']:.1f}% "
                  f"[{100 * e['lower']:.1f}, {100 * e['upper']:.1f}] ({e['method']}) {mark} "
                  f"the true {100 * e['true_share']:.1f}%; naive count says "
                  f"{100 * e['naive']:.1f}%")
    out.print(f"report: {safe(result['report'])} (open it in a browser; works offline)")
    out.print(f"dashboard: chatlens serve --project {safe(result['project'])} "
              "then open http://127.0.0.1:8000")
    for s in result["ingest"]["sources"]:
        if s["status"] == "failed":
            err.print(f"[red]error[/red]: {safe(s['error'])}")
    if result["ingest"]["failed"]:
        sys.exit(1)


from chatlens.cli.forget import forget  # noqa: E402  (erasure: its own module)
from chatlens.cli.web import report, serve  # noqa: E402  (click commands of the web app)

cli.add_command(serve)
cli.add_command(report)
from chatlens.cli.plan import plan  # noqa: E402

cli.add_command(plan)

from chatlens.cli.collect import collect, network  # noqa: E402  (collectors, networks)

cli.add_command(collect)
cli.add_command(network)
cli.add_command(forget)


def main() -> None:
    try:
        rc = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except ChatlensError as exc:
        err.print(f"[red]error[/red]: {safe(exc)}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; rerun the same command to continue where it stopped")
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
