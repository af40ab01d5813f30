"""Docs that cannot drift from the code, and the public API surface."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import chatlens
from chatlens.cli.reference import cli_reference
from chatlens.schema import MESSAGE_SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_generated_from_help() -> None:
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == cli_reference(), (
        "docs/cli.md is stale: run `python -m chatlens.cli.reference > docs/cli.md`")


def test_every_message_column_is_in_the_schema_doc() -> None:
    doc = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    for name in MESSAGE_SCHEMA.names:
        assert f"`{name}`" in doc, name


def test_readme_starts_with_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```")[0].strip() for b in readme.split("```bash")[1:3]]
    assert blocks[0] == "pip install . && chatlens demo"
    assert blocks[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_errors_derive_from_the_root_and_a_builtin() -> None:
    assert issubclass(chatlens.InputError, chatlens.ChatlensError)
    assert issubclass(chatlens.InputError, ValueError)
    assert issubclass(chatlens.ProjectLockedError, RuntimeError)


def test_package_is_ruff_clean_and_typed() -> None:
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "chatlens", "tests", "bench"],
                          cwd=ROOT, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    mypy = subprocess.run([sys.executable, "-m", "mypy", "chatlens"], cwd=ROOT,
                          capture_output=True, text=True)
    assert mypy.returncode == 0, mypy.stdout
