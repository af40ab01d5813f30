"""A full disk and a read-only project (issue 14): ingest, code and label import stop with a
chatlens error that says what happened, keep nothing half-written, and the project still opens
with the counts it had; after space is freed the same command completes.

Disk full is made two ways: a small tmpfs (needs root and ``mount``; the test skips otherwise) and,
anywhere, ``RLIMIT_FSIZE`` in a subprocess, which makes writes past the limit fail with EFBIG
("File too large"). Read-only is a read-only bind mount as root (root ignores file modes) or
``chmod`` otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chatlens import Project
from chatlens.errors import ChatlensError, ProjectError
from chatlens.store.diskerrors import storage_errors, storage_problem

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["очередь", "на", "границе", "Верхний", "Ларс", "сегодня", "стоим", "часов", "граница",
         "пропускают", "медленно", "кто", "знает", "Казбеги", "справка", "мобилизация"]


def export(path: Path, n: int, start: int = 1) -> Path:
    """A Telegram Desktop channel export with ``n`` messages."""
    msgs = []
    for i in range(start, start + n):
        text = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(10 + i % 30))
        msgs.append({"id": i, "type": "message", "date": "2022-09-21T10:00:00",
                     "date_unixtime": str(1663754400 + i * 60), "from": f"user {i % 13}",
                     "from_id": f"user{i % 13}", "text": text,
                     "text_entities": [{"type": "plain", "text": text}]})
    path.write_text(json.dumps({"name": "Границы", "type": "public_channel", "id": 77,
                                "messages": msgs}, ensure_ascii=False), encoding="utf-8")
    return path


def counts(root: Path) -> tuple[int, int, int]:
    with Project.open(root, read_only=True) as p:
        s = p.status()
    return s["messages"], s["quarantined"], _label_rows(root)


def _label_rows(root: Path) -> int:
    import sqlite3

    db = root / "labels.sqlite"
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT count(*) FROM labels").fetchone()[0])
    finally:
        con.close()


def reconciled(root: Path) -> None:
    with Project.open(root, read_only=True) as p:
        for s in p.store.sources():
            read, parts = s.get("n_read") or 0, [s.get(k) or 0 for k in (
                "n_stored", "n_duplicate", "n_quarantined")]
            assert read == sum(parts), s


# --- the translation itself (runs anywhere) ------------------------------------------------------
def test_storage_problems_are_recognised_in_the_chain_of_causes() -> None:
    import errno

    assert storage_problem(OSError(errno.ENOSPC, "No space left on device")) == (
        "full", "No space left on device")
    assert storage_problem(OSError(errno.EROFS, "Read-only file system"))[0] == "read-only"
    try:
        try:
            raise RuntimeError('Could not write file "x.wal": No space left on device')
        except RuntimeError as inner:
            raise KeyError("later") from inner
    except KeyError as outer:
        assert storage_problem(outer) == ("full", "No space left on device")
    assert storage_problem(ValueError("no such column")) is None


def test_storage_errors_turns_a_full_disk_into_a_project_error_and_lets_others_through(
        tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"is full .*free some space"), \
            storage_errors(tmp_path):
        raise RuntimeError("IO Error: Could not write file: No space left on device")
    with pytest.raises(ProjectError, match="CHATLENS_LOAD_MEMORY"), storage_errors(tmp_path):
        raise RuntimeError("Out of Memory Error: failed to allocate data of size 32.0 KiB "
                           "(244.1 MiB/244.1 MiB used)")
    with pytest.raises(ZeroDivisionError), storage_errors(tmp_path):
        raise ZeroDivisionError
    with pytest.raises(ChatlensError, match=r"^own$"), storage_errors(tmp_path):
        raise ChatlensError("own")


# --- a real full disk ----------------------------------------------------------------------------
@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a tmpfs needs root and mount; the RLIMIT_FSIZE test covers a full disk")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def squeeze(mnt: Path, spare: int) -> None:
    """Shrink the tmpfs to what it holds plus ``spare`` bytes."""
    st = os.statvfs(mnt)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    subprocess.run(["mount", "-o", f"remount,size={used + spare}", str(mnt)], check=True)


def widen(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=256m", str(mnt)], check=True)


def test_ingest_on_a_full_disk_fails_clearly_and_keeps_nothing(tmpfs: Path,
                                                               tmp_path: Path) -> None:
    root = tmpfs / "p"
    with Project.init(root) as p:
        p.ingest([export(tmp_path / "first.json", 50)])
    before = counts(root)
    big = export(tmp_path / "big.json", 20_000, start=1000)
    squeeze(tmpfs, 256 << 10)
    with pytest.raises(ProjectError, match="is full"), Project.open(root) as p:
        p.ingest([big])
    widen(tmpfs)
    assert counts(root) == before  # opens, and nothing of the big export was kept
    reconciled(root)
    with Project.open(root) as p:  # the same command, with space, completes
        (src,) = p.ingest([big]).sources
    assert src.status == "complete" and src.stored == 20_000
    assert counts(root)[0] == before[0] + 20_000
    reconciled(root)


def test_code_and_label_import_on_a_full_disk_fail_clearly_and_keep_nothing(
        tmpfs: Path, tmp_path: Path) -> None:
    from chatlens.annotate import write_labels
    from chatlens.annotate.records import LabelRecord

    root = tmpfs / "p"
    with Project.init(root) as p:
        p.ingest([export(tmp_path / "e.json", 3000)])
        p.enrich()
    before = counts(root)
    squeeze(tmpfs, 64 << 10)
    with pytest.raises(ProjectError, match="is full"), Project.open(root) as p:
        p.code("builtin:exodus-2022")
    widen(tmpfs)
    assert counts(root) == before
    with Project.open(root) as p:
        p.code("builtin:exodus-2022")
        m = p.codebook("builtin:exodus-2022")[0].measures[0]
        sid = p.sample(m.id, n=30, seed=1)["sample_id"]
        uids = [it["uid"] for it in p.labels().sample_items(sid)]
    labels = tmp_path / "labels.jsonl"
    write_labels([LabelRecord(u, m.id, m.labels[0], "coder", datetime(2024, 1, 1, tzinfo=UTC))
                  for u in uids], labels)
    before = counts(root)
    squeeze(tmpfs, 0)
    with pytest.raises(ProjectError, match="is full"), Project.open(root) as p:
        p.import_labels(labels, "coder", sample_id=sid)
    widen(tmpfs)
    assert counts(root) == before
    with Project.open(root) as p:
        p.import_labels(labels, "coder", sample_id=sid)
    assert counts(root)[2] == before[2] + 30


CHILD = """
import resource, signal, sys
from chatlens import Project
from chatlens.errors import ProjectError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    with Project.open(sys.argv[1]) as p:
        p.ingest([sys.argv[2]])
except ProjectError as exc:
    print("REFUSED", exc)
else:
    print("STORED")
"""


def test_ingest_past_the_file_size_limit_fails_clearly_and_keeps_nothing(tmp_path: Path) -> None:
    root = tmp_path / "p"
    with Project.init(root) as p:
        p.ingest([export(tmp_path / "first.json", 50)])
    before = counts(root)
    big = export(tmp_path / "big.json", 20_000, start=1000)
    size = (root / "chatlens.duckdb").stat().st_size
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), str(root), str(big),
                          str(size + (256 << 10))], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert "REFUSED" in res.stdout and "is full" in res.stdout, (res.stdout, res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    assert counts(root) == before
    reconciled(root)
    with Project.open(root) as p:
        (src,) = p.ingest([big]).sources
    assert src.status == "complete" and src.stored == 20_000


# --- a read-only project ------------------------------------------------------------------------
@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(writable project, the same project seen read-only)."""
    src = tmp_path / "src"
    root = src / "p"
    with Project.init(root) as p:
        p.ingest([export(tmp_path / "e.json", 200)])
    if os.geteuid() == 0:
        view = tmp_path / "ro"
        view.mkdir()
        res = subprocess.run(["mount", "--bind", str(src), str(view)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"root ignores chmod and a bind mount is not permitted: {res.stderr}")
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
            yield root, view / "p"
        finally:
            subprocess.run(["umount", "-l", str(view)], check=False)
    else:
        for f in [root, *root.iterdir()]:
            f.chmod(0o555 if f.is_dir() else 0o444)
        try:
            yield root, root
        finally:
            for f in [root, *root.iterdir()]:
                f.chmod(0o755 if f.is_dir() else 0o644)


@pytest.mark.parametrize("command", ["ingest", "code", "label import"])
def test_writing_commands_on_a_read_only_project_fail_clearly(
        read_only_view: tuple[Path, Path], tmp_path: Path, command: str) -> None:
    root, view = read_only_view
    before = counts(root)
    labels = tmp_path / "l.jsonl"
    labels.write_text('{"uid": "x", "measure": "m", "value": "yes"}\n', encoding="utf-8")
    with pytest.raises(ProjectError) as info, Project.open(view) as p:
        if command == "ingest":
            p.ingest([export(tmp_path / "more.json", 10, start=5000)])
        elif command == "code":
            p.code("builtin:exodus-2022")
        else:
            p.import_labels(labels, "coder")
    assert "Read-only file system" in str(info.value) or "cannot be written" in str(info.value) \
        or "Permission denied" in str(info.value)
    with Project.open(view, read_only=True) as p:  # reading still works
        assert p.status()["messages"] == before[0]
    assert counts(root) == before


def test_ingest_past_duckdbs_memory_limit_fails_clearly_and_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB's primary-key index must fit in its memory limit; past it, the error says which
    setting to raise (a 5 GB export hit the default 256MB in bench/ingest_big.py)."""
    root = tmp_path / "p"
    big = export(tmp_path / "big.json", 20_000)
    with Project.init(root) as p:
        monkeypatch.setenv("CHATLENS_LOAD_MEMORY", "1MB")
        with pytest.raises(ProjectError, match="CHATLENS_LOAD_MEMORY"):
            p.ingest([big])
    monkeypatch.delenv("CHATLENS_LOAD_MEMORY")
    reconciled(root)
    with Project.open(root) as p:
        (src,) = p.ingest([big]).sources
    assert src.status == "complete"
    assert counts(root)[0] == 20_000
    reconciled(root)
