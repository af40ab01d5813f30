"""The docs cover the code, and every link in them resolves.

Every command, option, codebook and claims field, store table, environment variable and public
API name must be documented; every relative link and ``#anchor`` in README.md, docs/ and
examples/ must point at a file and heading that exist (generated pages included); every page is
in the site's navigation.
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import yaml

import chatlens
from chatlens.docgen import (
    GENERATORS,
    MARKER,
    cli_commands,
    expand,
    model_field_names,
    store_tables,
)
from chatlens.settings import ENVIRONMENT
from tests.docs_examples import ROOT, doc_files

DOCS = ROOT / "docs"
GENERATED_PAGES = {DOCS / "cli.md"}


def handwritten() -> str:
    """The text people wrote: every doc page except the generated CLI reference."""
    return "\n".join(p.read_text(encoding="utf-8") for p in doc_files()
                     if p not in GENERATED_PAGES)


def rendered(path: Path) -> str:
    """A page as the site shows it (generated parts filled in)."""
    if path == DOCS / "cli.md":
        return GENERATORS["cli"]()
    return expand(path.read_text(encoding="utf-8"))


# -- completeness -------------------------------------------------------------------------------

def test_every_command_is_used_in_the_handwritten_docs() -> None:
    text = handwritten()
    missing = [path for path, cmd in cli_commands()
               if path != "chatlens" and not getattr(cmd, "commands", None) and path not in text]
    assert not missing, f"commands no page explains (beyond the CLI reference): {missing}"


def test_every_option_is_documented() -> None:
    """Each option is either explained in the hand-written docs or has help text, so the
    generated CLI reference explains it."""
    import click

    text = handwritten()
    missing = []
    for path, cmd in cli_commands():
        for param in cmd.params:
            if not isinstance(param, click.Option) or param.name in ("help", "project_dir",
                                                                     "as_json"):
                continue
            if not param.help and not any(
                    re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text) for o in param.opts):
                missing.append(f"{path} {param.opts[-1]}")
    assert not missing, f"options without help text that no page explains: {missing}"


def test_every_option_appears_in_the_cli_reference() -> None:
    import click

    reference = rendered(DOCS / "cli.md")
    for path, cmd in cli_commands():
        assert f"## {path}" in reference or path == "chatlens", path
        for param in cmd.params:
            if isinstance(param, click.Option):
                assert any(o in reference for o in param.opts), (path, param.opts)


def test_every_codebook_and_claims_field_is_explained() -> None:
    text = (DOCS / "codebook.md").read_text(encoding="utf-8") + (
        DOCS / "howto" / "claims.md").read_text(encoding="utf-8")
    missing = sorted(f for f in model_field_names()
                     if f"{f}:" not in text and f"`{f}`" not in text)
    assert not missing, f"codebook/claims fields no example or text shows: {missing}"


def test_every_codebook_and_claims_field_has_a_meaning_in_the_reference() -> None:
    from chatlens.docgen import FIELD_MEANINGS, model_fields

    fields = model_fields()
    assert not [k for k, meaning in fields.items() if not meaning], (
        "give these fields a description= in the model or a line in docgen.FIELD_MEANINGS: "
        f"{[k for k, meaning in fields.items() if not meaning]}")
    assert set(FIELD_MEANINGS) <= set(fields), f"stale: {set(FIELD_MEANINGS) - set(fields)}"


def test_every_store_table_is_described_in_the_schema_page() -> None:
    page = (DOCS / "schema.md").read_text(encoding="utf-8")
    page = page.replace(MARKER.format(name="store-schema"), "")
    missing = [t for t in store_tables() if f"`{t.split(': ')[-1]}`" not in page]
    assert not missing, f"tables docs/schema.md does not describe: {missing}"


def test_every_environment_variable_is_declared() -> None:
    used: set[str] = set()
    for path in [*(ROOT / "chatlens").rglob("*.py"), ROOT / "tests" / "conftest.py"]:
        used |= set(re.findall(r"\bCHATLENS_[A-Z][A-Z_]*[A-Z]\b", path.read_text("utf-8")))
    declared = {s.name for s in ENVIRONMENT}
    assert used <= declared, f"declare these in chatlens/settings.py: {sorted(used - declared)}"
    text = rendered(DOCS / "reference" / "settings.md")
    assert all(f"`{name}`" in text for name in declared)


def test_every_public_name_is_in_the_api_reference() -> None:
    page = rendered(DOCS / "reference" / "api.md")
    missing = [n for n in chatlens.__all__
               if f"::: chatlens.{n}" not in page and f"chatlens.{n}" not in page]
    assert not missing, missing


def test_every_public_method_has_a_docstring() -> None:
    undocumented = [name for name, member in vars(chatlens.Project).items()
                    if not name.startswith("_") and callable(member)
                    and not (getattr(member, "__doc__", None) or "").strip()]
    allowed = {"init", "open", "close"}  # described in the class docstring
    assert set(undocumented) <= allowed, f"Project methods without a docstring: {undocumented}"


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(items: list[object]) -> set[str]:
        found: set[str] = set()
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            found |= pages(value) if isinstance(value, list) else {str(value)}
        return found

    nav = pages(config["nav"])
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "hooks" not in p.parts}
    assert on_disk <= nav, f"pages missing from mkdocs.yml nav: {sorted(on_disk - nav)}"


# -- links --------------------------------------------------------------------------------------

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCED = re.compile(r"^\s*(```|~~~).*?^\s*\1", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def slug(heading: str) -> str:
    """Python-Markdown's default ``toc`` slug, as mkdocs makes heading anchors."""
    text = re.sub(r"`|\*\*?|_(?=\w)|(?<=\w)_\b", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    text = _FENCED.sub("", rendered(path))
    found = {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}
    found |= set(re.findall(r"\{#([\w-]+)\}", text))
    return found


def links(path: Path) -> list[str]:
    text = _INLINE_CODE.sub("", _FENCED.sub("", rendered(path)))
    return _LINK.findall(text)


@pytest.mark.parametrize("page", doc_files(), ids=[str(p.relative_to(ROOT)) for p in doc_files()])
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, broken


def test_slug_matches_the_markdown_toc_extension() -> None:
    toc = pytest.importorskip("markdown.extensions.toc")
    for heading in ["2. Export your chats", "Viber Desktop `viber.db` (`viber`)",
                    "Fix an encoding", "\"… is not a chatlens project\"", "Label file columns"]:
        plain = re.sub(r"`", "", heading)
        assert slug(heading) == toc.slugify(plain, "-"), heading


# -- the worked study's script ------------------------------------------------------------------

@pytest.mark.slow
def test_the_worked_study_script_prepares_a_project(tmp_path: Path) -> None:
    import random

    from chatlens.demo import telegram_export

    export = tmp_path / "ChatExport" / "result.json"
    export.parent.mkdir()
    telegram_export(export, 120, random.Random(1))
    bin_dir = Path(sys.executable).parent
    shim = tmp_path / "bin" / "chatlens"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m chatlens.cli \"$@\"\n")
    shim.chmod(0o755)
    env = {"PATH": f"{shim.parent}:{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "STUDY_N": "40", "HOME": str(tmp_path)}
    run = subprocess.run(["bash", str(ROOT / "examples" / "exodus-2022" / "study.sh"), "prepare",
                          str(tmp_path / "exodus"), str(export.parent)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "audit-border_crossing-" in run.stdout
    again = subprocess.run(["bash", str(ROOT / "examples" / "exodus-2022" / "study.sh"),
                            "prepare", str(tmp_path / "exodus"), str(export.parent)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("sample audit-") == 0  # no second sample per measure
