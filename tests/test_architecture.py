"""Tests that hold the design: no import cycle between the package's parts, SQL only in the
store, pure stages that load neither DuckDB nor the importers, and a pinned public surface.
Built from the standard library's ``ast``, so they read the code, not a running program."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import chatlens

PKG = Path(chatlens.__file__).parent
#: SQL as chatlens writes it (keywords in capitals).
SQL = re.compile(r"\bSELECT\b.*\bFROM\b|\bINSERT\b.*\bINTO\b|\bDELETE FROM\b|\bUPDATE \w+ SET\b|"
                 r"\b(CREATE|ALTER|DROP) (TABLE|INDEX|VIEW)\b|\bPRAGMA\b|\bCOPY\b.*\b(TO|FROM)\b",
                 re.DOTALL)
#: The one exception: the Viber importer queries the user's own viber.db, its source file.
SQL_ALLOWED = ("store/", "ingest/viber.py")


def modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(PKG)): ast.parse(p.read_text(encoding="utf-8"))
            for p in sorted(PKG.rglob("*.py"))}


def part(path: str) -> str:
    """The package part a module belongs to: its first folder, or the module itself."""
    first = path.split("/")[0]
    return first.removesuffix(".py")


def imported_parts(tree: ast.Module) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            name = node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("chatlens."):
                    out.add(alias.name.split(".")[1])
            continue
        else:
            continue
        if name.startswith("chatlens."):
            out.add(name.split(".")[1])
        elif name == "chatlens":
            out.update(a.name for a in node.names)  # from chatlens import X
    return out


def _type_checking_free(tree: ast.Module) -> ast.Module:
    """The module without its ``if TYPE_CHECKING:`` blocks (annotations only, never run)."""
    class Strip(ast.NodeTransformer):
        def visit_If(self, node: ast.If) -> ast.AST | None:
            t = node.test
            if isinstance(t, ast.Name) and t.id == "TYPE_CHECKING":
                return None
            return self.generic_visit(node)

    return Strip().visit(tree)  # type: ignore[no-any-return]


def test_no_import_cycle_between_parts_of_the_package() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for path, tree in modules().items():
        me = part(path)
        if me == "__init__":
            continue  # the package's front door re-exports everything
        for other in imported_parts(_type_checking_free(tree)):
            if other != me and other != "__init__":
                graph[me].add(other)
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif len(stack) < 12:
                visit(nxt, [*stack, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "import cycles between package parts:\n" + "\n".join(sorted(set(cycles)))


def test_sql_is_only_in_the_store() -> None:
    offenders = []
    for path, tree in modules().items():
        if path.startswith(SQL_ALLOWED):
            continue
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef
                                    | ast.AsyncFunctionDef)
                      and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings and SQL.search(node.value)):
                offenders.append(f"{path}:{node.lineno}")
    assert not offenders, f"SQL outside chatlens/store/: {offenders}"


def test_pure_stages_load_neither_duckdb_nor_the_importers() -> None:
    for stage in ("chatlens.estimate", "chatlens.annotate", "chatlens.enrich",
                  "chatlens.code", "chatlens.train"):
        code = (f"import sys, {stage}; bad = [m for m in ('duckdb', 'chatlens.ingest', "
                "'chatlens.store', 'chatlens.project') if m in sys.modules]; print(bad)")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert res.stdout.strip() == "[]", (stage, res.stdout)


def test_ingest_loads_no_enrichment(tmp_path: Path) -> None:
    """Ingest reads the project's languages from :mod:`chatlens.languages`; importing
    enrichment (pandas, scipy) cost every ingest a few tenths of a CPU second."""
    export = Path(__file__).parent / "fixtures" / "telegram_json" / "single_chat.json"
    code = ("import sys; from chatlens import Project\n"
            f"with Project.init({str(tmp_path / 'p')!r}) as p:\n"
            f"    assert p.ingest([{str(export)!r}]).sources[0].status == 'complete'\n"
            "print([m for m in ('chatlens.enrich', 'scipy') if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == "[]", res.stdout


def test_public_names_are_pinned() -> None:
    assert sorted(chatlens.__all__) == sorted([
        "ChatlensError", "ClaimsError", "CodebookError", "CollectError", "EncodingError",
        "InputError", "ModelError", "Population", "Project", "ProjectError",
        "ProjectLockedError", "UnknownFormatError", "UnsafeArchiveError", "UsageError",
        "__version__"])
    for name in chatlens.__all__:
        assert hasattr(chatlens, name), name


def test_every_error_derives_from_the_root_and_a_builtin() -> None:
    from chatlens import errors

    for name in dir(errors):
        obj = getattr(errors, name)
        if (isinstance(obj, type) and issubclass(obj, Exception)
                and obj is not errors.ChatlensError and obj.__module__ == errors.__name__):
            assert issubclass(obj, errors.ChatlensError), name
    from chatlens.web.access import ProjectBusy

    assert issubclass(ProjectBusy, errors.ChatlensError)


def test_every_command_takes_json_and_project_as_the_readme_says() -> None:
    import click

    from chatlens.cli import cli

    def walk(cmd: click.Command, path: list[str]) -> list[tuple[str, click.Command]]:
        if isinstance(cmd, click.Group):
            return [x for n, c in cmd.commands.items() for x in walk(c, [*path, n])]
        return [(" ".join(path), cmd)]

    def opts(cmd: click.Command) -> set[str]:
        return {o for p in cmd.params if isinstance(p, click.Option) for o in p.opts}

    commands = walk(cli, [])
    assert len(commands) > 25
    assert [p for p, c in commands if "--json" not in opts(c)] == []
    # checking a codebook file needs no project
    assert [p for p, c in commands if "--project" not in opts(c)] == ["codebook validate"]
