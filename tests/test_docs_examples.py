"""Every example in the docs runs, and its shown output is what it prints.

How blocks are found, the markers and the sandbox: ``tests/docs_examples.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chatlens.codebook import load_codebook, parse_codebook
from chatlens.codebook.claims import parse_claims
from tests.docs_examples import ROOT, Block, Sandbox, blocks, doc_files, make_sandbox_template

PAGES = [p for p in doc_files() if any(b.kind for b in blocks(p))]


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chatlens.demo import run_demo

    demo = tmp_path_factory.mktemp("docs-demo") / "chatlens-demo"
    run_demo(demo)
    template = tmp_path_factory.mktemp("docs-sandbox")
    make_sandbox_template(demo, template)
    return template


def run_block(box: Sandbox, block: Block) -> None:
    if block.kind == "chatlens":
        out = box.run_chatlens(block)
    elif block.kind == "python":
        out = box.run_python(block)
    elif block.kind == "codebook":
        parse_codebook(block.code, block.where)
        out = ""
    else:
        parse_claims(block.code, block.where, load_codebook("builtin:exodus-2022"))
        out = ""
    if block.output is not None:
        from tests.docs_examples import check_output

        check_output(block.output, out, block.where)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_example_on_the_page_runs(page: Path, sandbox_template: Path,
                                        tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    shutil.copytree(sandbox_template, root)
    box = Sandbox(root)
    for block in blocks(page):
        if block.kind and not block.skip_reason:
            run_block(box, block)


def test_examples_are_found_and_skips_give_a_reason() -> None:
    found = [b for p in doc_files() for b in blocks(p) if b.kind]
    assert len(found) >= 20
    for b in found:
        assert b.skip is None or len(b.skip) > 5, f"{b.where}: say why the block is not tested"


def test_shown_output_is_matched_line_by_line_in_order() -> None:
    from tests.docs_examples import check_output

    actual = "a: 1\nsome   table │ 23.6% [19.7, 27.5] │\nend\n"
    check_output("a: 1\nsome table │ 23.6% … │\n", actual, "here")
    with pytest.raises(AssertionError, match="not in the actual output"):
        check_output("end\na: 1\n", actual, "here")
    with pytest.raises(AssertionError, match="not in the actual output"):
        check_output("a: 2\n", actual, "here")


def test_markers_and_output_blocks_are_read(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- no-test: a server -->\n```bash\nchatlens serve\n```\n\n"
        "<!-- exit: 2 -->\n```bash\nchatlens status --project x\n```\n\n"
        "```text\nerror: x\n```\n\n```bash\nchatlens serve --port 9\n```\n"
        "```python\nprint(1)\n```\n", encoding="utf-8")
    found = blocks(page)
    assert [b.kind for b in found] == ["chatlens", "chatlens", "chatlens", "python"]
    assert found[0].skip == "a server" and found[0].skip_reason == "a server"
    assert found[1].exit_code == 2 and found[1].output == "error: x\n"
    assert found[1].skip_reason is None
    assert found[2].skip_reason == "starts a web server that runs until stopped"


def test_every_shell_block_runs_or_says_why_not() -> None:
    """A shell block that is not a chatlens example (installing, a benchmark) is marked."""
    unmarked = [b.where for p in doc_files() for b in blocks(p)
                if b.lang in ("bash", "sh", "shell", "console") and b.kind is None
                and not b.skip]
    assert not unmarked, f"mark these <!-- no-test: reason --> or make them chatlens examples: "\
        f"{unmarked}"
