"""Finding and running the examples of the docs (used by tests/test_docs_*.py).

A fenced block is an *example* when it is

* ```` ```bash ```` whose first line starts with ``chatlens``: every line (``\\`` continues a
  line, ``#`` starts a comment) is run as a chatlens command, in order, in the page's sandbox;
* ```` ```python ````: run with ``exec``; the blocks of one page share their variables;
* ```` ```yaml ```` that starts with ``name:`` (a codebook) or ``codebook:`` (a claims file): it
  must validate.

Markers, an HTML comment on the line before a block:

* ``<!-- no-test: REASON -->`` skips the block (a collector, a server, a remote service);
* ``<!-- exit: N -->`` expects exit status N from its last command instead of 0 (error messages
  shown in the FAQ).

Blocks with ``chatlens serve`` or ``chatlens collect`` (:data:`NOT_RUN`) are skipped without a
marker, unless they carry an ``exit`` marker.

A ```` ```text ```` block right after an example is its shown output: each of its non-blank lines
must appear in the actual output, in order (runs of spaces are one space; ``…`` matches
anything).

Every page runs in its own *sandbox*: a fresh directory holding a copy of the demo project
(``chatlens-demo``, the default ``$CHATLENS_PROJECT``, labelled by the demo's simulated coder),
and stand-ins for the files a reader would have made:

* exports named as in the docs: ``ChatExport_2022-10-01/result.json``,
  ``WhatsApp Chat with Relocation.txt``, ``WhatsApp Chat - Relocation.zip``;
* ``notes.docx``, a file that is not a chat export;
* ``training-labels.csv``, border_crossing training labels from the demo's planted truth;
* ``label import annotations.json --sample S`` (or ``annotations-b.json``, a second coder who
  disagrees on every seventh item) imports what a coder would have exported from Label Studio
  for S, written just before from the planted truth; ``label import SHEET.csv --sample S`` first
  fills the sheet's empty ``value`` cells the same way.

A sample id such as ``audit-border_crossing-1a2b3c`` in a command stands for the newest sample of
that kind and measure in the project.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sqlite3
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_ID = re.compile(r"^(audit|train)-([a-z][a-z0-9_]*)-[0-9a-f]{6}$")
#: Commands that never finish or need the network: their blocks are skipped unless marked with an
#: expected exit status (an error shown in the FAQ returns at once).
NOT_RUN = {"serve": "starts a web server that runs until stopped",
           "collect": "reaches a remote service over the network"}
_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
_MARKER = re.compile(r"^<!--\s*(no-test|exit)\s*:\s*(.*?)\s*-->\s*$")


def doc_files() -> list[Path]:
    """README.md, docs/**/*.md and examples/**/*.md."""
    files = [ROOT / "README.md"]
    files += sorted(p for p in (ROOT / "docs").rglob("*.md") if "hooks" not in p.parts)
    files += sorted((ROOT / "examples").rglob("*.md"))
    return [f for f in files if f.is_file()]


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None = None
    exit_code: int = 0
    output: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        """Why the block is not run: its marker, or a command of :data:`NOT_RUN`."""
        if self.skip or self.kind != "chatlens" or self.exit_code:
            return self.skip
        for args in commands(self.code):
            if len(args) > 1 and args[1] in NOT_RUN:
                return NOT_RUN[args[1]]
        return None

    @property
    def kind(self) -> str | None:
        first = next((ln.strip() for ln in self.code.splitlines() if ln.strip()), "")
        if self.lang in ("bash", "sh", "shell", "console") and first.startswith("chatlens"):
            return "chatlens"
        if self.lang in ("python", "py"):
            return "python"
        if self.lang == "yaml" and first.startswith("name:"):
            return "codebook"
        if self.lang == "yaml" and first.startswith("codebook:"):
            return "claims"
        return None


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, each with its marker and shown output."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        prev = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        block = Block(path, start + 1, lang.lower(), "\n".join(body) + "\n")
        if mk := _MARKER.match(prev):
            if mk.group(1) == "no-test":
                block.skip = mk.group(2) or "no reason given"
            else:
                block.exit_code = int(mk.group(2))
        if lang.lower() == "text" and found and found[-1].output is None and not prev.startswith(
                "<!--") and _only_blank_between(lines, found[-1], start):
            found[-1].output = block.code
            continue
        found.append(block)
    return found


def _only_blank_between(lines: list[str], previous: Block, start: int) -> bool:
    end_of_previous = previous.line + previous.code.count("\n")  # the closing fence (0-based)
    return all(not lines[k].strip() for k in range(end_of_previous + 1, start))


def examples() -> list[Block]:
    return [b for f in doc_files() for b in blocks(f) if b.kind]


def commands(code: str) -> Iterator[list[str]]:
    """The argument lists of a bash block of chatlens commands."""
    joined = re.sub(r"\\\n", " ", code)
    for line in joined.splitlines():
        args = shlex.split(line, comments=True)
        if args:
            yield args


def check_output(shown: str, actual: str, where: str) -> None:
    def norm(s: str) -> str:
        return " ".join(s.split())

    got = [norm(ln) for ln in actual.splitlines()]
    k = 0
    for want in (norm(ln) for ln in shown.splitlines()):
        if not want:
            continue
        pattern = re.compile(".*".join(re.escape(p) for p in want.split("…")))
        while k < len(got) and not pattern.search(got[k]):
            k += 1
        assert k < len(got), (f"{where}: shown output line {want!r} is not in the actual output "
                              f"(in order):\n{actual}")
        k += 1


@dataclass
class Sandbox:
    """One page's working directory, its default project and the Python namespace."""

    root: Path
    namespace: dict[str, object] = field(default_factory=dict)

    @property
    def default_project(self) -> Path:
        return self.root / "chatlens-demo"

    def env(self) -> dict[str, str]:
        return {"CHATLENS_PROJECT": str(self.default_project), "COLUMNS": "100",
                "NO_COLOR": "1", "TERM": "dumb"}

    def resolve(self, args: list[str]) -> list[str]:
        project = self.default_project
        if "--project" in args and args.index("--project") + 1 < len(args):
            project = self.root / args[args.index("--project") + 1]
        out = []
        for a in args:
            m = SAMPLE_ID.match(a)
            if m and (project / "labels.sqlite").exists():
                con = sqlite3.connect(project / "labels.sqlite")
                try:
                    row = con.execute(
                        "SELECT sample_id FROM samples WHERE kind = ? AND measure = ? "
                        "ORDER BY created DESC, rowid DESC LIMIT 1", m.groups()).fetchone()
                finally:
                    con.close()
                if row:
                    a = row[0]
            out.append(a)
        return out

    def run_chatlens(self, block: Block) -> str:
        outputs = []
        cmds = list(commands(block.code))
        with contextlib.chdir(self.root):
            for n, args in enumerate(cmds):
                assert args[0] == "chatlens", (
                    f"{block.where}: a tested bash block holds only chatlens commands; "
                    f"got {args[0]!r} (mark it <!-- no-test: reason -->)")
                args = self.resolve(args[1:])
                self.stand_in_coder(args)
                code, output = self.invoke(args)
                outputs.append(output)
                expected = block.exit_code if n == len(cmds) - 1 else 0
                assert code == expected, (
                    f"{block.where}: `chatlens {shlex.join(args)}` exited {code}, "
                    f"expected {expected}:\n{output}")
        return "".join(outputs)

    def stand_in_coder(self, args: list[str]) -> None:
        """Before ``label import annotations*.json --sample S``: write the Label Studio export a
        coder would have made for S, from the demo's planted truth (``annotations-b.json``: a
        second coder who disagrees on every seventh item)."""
        import json
        from datetime import UTC, datetime

        from chatlens.annotate.labelstudio import export_json
        from chatlens.annotate.records import LabelRecord

        if args[:2] != ["label", "import"] or "--sample" not in args:
            return
        path = next((a for a in args[2:] if re.fullmatch(r"annotations(-\w+)?\.json", a)), None)
        sheet = next((a for a in args[2:] if a.endswith(".csv")), None)
        if path is None and sheet is None:
            return
        project = self.default_project
        if "--project" in args:
            project = self.root / args[args.index("--project") + 1]
        sample = args[args.index("--sample") + 1]
        con = sqlite3.connect(project / "labels.sqlite")
        try:
            row = con.execute("SELECT measure FROM samples WHERE sample_id = ?",
                              [sample]).fetchone()
            uids = [r[0] for r in con.execute(
                "SELECT uid FROM sample_items WHERE sample_id = ? ORDER BY position", [sample])]
        finally:
            con.close()
        if row is None:  # no such sample: an empty export, so the command can say so
            if path is not None:
                (self.root / path).write_text("[]", encoding="utf-8")
            return
        truth = json.loads((self.root / "truth-by-uid.json").read_text(encoding="utf-8"))
        if sheet is not None:
            self._fill_sheet(self.root / sheet, row[0], truth)
            return
        assert path is not None
        second = path != "annotations.json"
        records = []
        for k, uid in enumerate(uids):
            yes = truth.get(uid) == row[0]
            if second and k % 7 == 3:
                yes = not yes
            records.append(LabelRecord(uid, row[0], "yes" if yes else "no",
                                       "coder-b@example.org" if second else "coder-a@example.org",
                                       datetime(2022, 11, 1, tzinfo=UTC)))
        (self.root / path).write_text(export_json(records), encoding="utf-8")

    @staticmethod
    def _fill_sheet(path: Path, measure: str, truth: dict[str, str]) -> None:
        """Fill the empty ``value`` cells of a coding sheet as a coder would."""
        import csv

        if not path.exists():
            return
        with path.open(encoding="utf-8-sig", newline="") as f:  # sheets carry a BOM
            rows = list(csv.DictReader(f))
        if not rows or "value" not in rows[0]:
            return
        for r in rows:
            if not r["value"]:
                r["value"] = "yes" if truth.get(r["uid"]) == measure else "no"
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    def invoke(self, args: list[str]) -> tuple[int, str]:
        """Run ``chatlens ARGS`` as the console script does (``chatlens.cli.main``)."""
        import types

        from click.testing import CliRunner

        from chatlens.cli import main

        old_argv, old_main = sys.argv, sys.modules["__main__"]
        sys.argv = ["chatlens", *args]
        sys.modules["__main__"] = types.ModuleType("__main__")  # click names the program "chatlens"
        try:
            with CliRunner().isolation(env=self.env()) as (_out, _err, mixed):
                try:
                    main()
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None
                                                                         else 1)
                return code, mixed.getvalue().decode("utf-8", "replace")
        finally:
            sys.argv = old_argv
            sys.modules["__main__"] = old_main

    def run_python(self, block: Block) -> str:
        buf = io.StringIO()
        old = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env())
        try:
            with contextlib.chdir(self.root), contextlib.redirect_stdout(buf):
                exec(compile(block.code, block.where, "exec"), self.namespace)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return buf.getvalue()


def make_sandbox_template(demo: Path, dest: Path) -> None:
    """Fill ``dest`` with the files every page's sandbox starts from (see the module doc)."""
    import csv
    import json
    import shutil

    from chatlens import Project

    shutil.copytree(demo, dest / "chatlens-demo")
    data = demo / "demo-data"
    tg = next(data.rglob("result.json"))
    wa = next(data.glob("WhatsApp*.txt"))
    (dest / "ChatExport_2022-10-01").mkdir()
    shutil.copy(tg, dest / "ChatExport_2022-10-01" / "result.json")
    shutil.copy(wa, dest / "WhatsApp Chat with Relocation.txt")
    (dest / "notes.docx").write_bytes(b"PK\x03\x04 not a chat export")
    with zipfile.ZipFile(dest / "WhatsApp Chat - Relocation.zip", "w") as z:
        z.write(wa, "_chat.txt")
    truth = {t["text"]: t["topic"] for t in json.loads(
        (data / "truth.json").read_text(encoding="utf-8"))}
    with Project.open(dest / "chatlens-demo") as proj:
        audit = proj.labels().sampled_uids(proj.codebook()[0].name, "border_crossing", "audit")
        rows = [r for r in proj.messages().select(["uid", "text", "kind"]).to_pylist()
                if r["kind"] != "service"]
    by_uid = {r["uid"]: truth.get(r["text"], "other") for r in rows}
    (dest / "truth-by-uid.json").write_text(json.dumps(by_uid), encoding="utf-8")
    with (dest / "training-labels.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["uid", "measure", "value", "annotator", "sample_kind"])
        for r in [r for r in rows if r["uid"] not in audit][::3]:
            value = "yes" if by_uid[r["uid"]] == "border_crossing" else "no"
            w.writerow([r["uid"], "border_crossing", value, "coder-a", "train"])
