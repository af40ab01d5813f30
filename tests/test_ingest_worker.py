"""Ingest with a worker process (CHATLENS_INGEST_WORKER) stores exactly what one process does:
on the real channel export, on a damaged copy of it, across batch boundaries that cut runs, after
a kill, and when the worker itself dies."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import chatlens.ingest.pipeline as pipeline
from chatlens import Project
from chatlens.errors import UsageError
from chatlens.ingest.base import Chat
from chatlens.ingest.rows import Batch
from chatlens.ingest.telegram_json import ElementRun
from chatlens.ingest.worker import TableWorker

from .helpers import telegram_export

TABLES = {
    "messages": "SELECT * EXCLUDE (uid_hash) FROM messages ORDER BY source_pos",
    "quarantine": "SELECT * EXCLUDE (run_id) FROM quarantine ORDER BY source_pos",
    "identities": "SELECT * FROM identities ORDER BY author_key",
    "chats": "SELECT * FROM chats ORDER BY chat_key",
}


def _ingest(tmp: Path, name: str, paths: list[Path], mode: str,
            monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("CHATLENS_INGEST_WORKER", mode)
    with Project.init(tmp / name) as p:
        reports = [s.as_dict() for s in p.ingest(paths).sources]
        got: dict[str, object] = {k: p.store.con.execute(q).fetchall()
                                  for k, q in TABLES.items()}
        got["originals"] = p.store.originals().sort_by("source_pos").to_pylist()
        for r in reports:
            r.pop("path")
        got["reports"] = reports
        return got


def _damaged(real: Path, out: Path) -> Path:
    """The real export with the damage real files show, at a few places."""
    text = real.read_text(encoding="utf-8")
    starts = [m.start() for m in re.finditer(r'^  \{$', text, flags=re.M)]
    assert len(starts) > 2000
    pieces, last = [], 0
    for k, at in enumerate(starts[100:1900:300]):
        pieces.append(text[last:at])
        last = at
        body_end = text.index("\n  }", at)
        element = text[at:body_end]
        if k == 0:  # invalid JSON
            element = element.replace('"type": "message"', '"type": message', 1)
        elif k == 1:  # an exporter's \x escape
            element = element.replace('"text": "', '"text": "\\x41', 1)
        elif k == 2:  # a stray line between messages
            pieces.append("  garbage\n")
        elif k == 3:  # an id that is no integer
            element = re.sub(r'"id": -?\d+', '"id": "x"', element, count=1)
        elif k == 4:  # blank lines inside a message
            element = element.replace("\n", "\n\n", 2)
        pieces.append(element)
        last = body_end
    pieces.append(text[last:])
    out.write_text("".join(pieces), encoding="utf-8")
    return out


@pytest.mark.shared_data
def test_a_worker_process_stores_what_one_process_stores(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shared_data / "telegram" / "json_ru_channel" / "result.json"
    damaged = _damaged(real, tmp_path / "damaged.json")
    monkeypatch.setattr(pipeline, "BATCH", 700)  # batches end inside runs
    secret = b"s" * 32
    monkeypatch.setattr("chatlens.store.core.Store.secret", lambda self: secret)
    started = []
    init = TableWorker.__init__

    def counted(self: TableWorker) -> None:
        started.append(1)
        init(self)

    monkeypatch.setattr(TableWorker, "__init__", counted)
    one = _ingest(tmp_path, "one", [real, damaged], "off", monkeypatch)
    assert not started
    two = _ingest(tmp_path, "two", [real, damaged], "on", monkeypatch)
    assert len(started) == 1  # one worker for both sources
    assert one == two
    reports = one["reports"]
    assert isinstance(reports, list) and [r["status"] for r in reports] == ["complete"] * 2
    assert reports[1]["quarantined"] >= 3 and reports[1]["duplicate"] > 3000
    messages = one["messages"]
    assert isinstance(messages, list) and len(messages) == reports[0]["stored"] > 3000


KILLER = """
import sys
import chatlens.ingest.pipeline as pipeline
from chatlens import Project
pipeline.BATCH = 500
with Project.open(sys.argv[1]) as p:
    p.ingest([sys.argv[2]], progress=lambda path, n: print(n, flush=True))
"""


def test_a_killed_ingest_with_a_worker_resumes_to_the_same_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = tmp_path / "big.json"
    telegram_export(export, [f"сообщение {i} " * (i % 7 + 1) for i in range(12_000)])
    monkeypatch.setenv("CHATLENS_INGEST_WORKER", "on")
    Project.init(tmp_path / "p").close()
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(tmp_path / "p"), str(export)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(3):
        assert proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)  # the worker sees its stdin end and exits
    proc.wait()
    with Project.open(tmp_path / "p") as p:
        (src,) = p.store.sources()
        assert src["status"] == "partial" and 1500 <= src["n_stored"] < 12_000
        (rep,) = p.ingest([export]).sources
        assert rep.status == "complete" and rep.resumed_from == src["n_read"]
        assert (rep.read, rep.stored, rep.duplicate) == (12_000, 12_000, 0)
        resumed = p.store.con.execute(
            "SELECT message_id, text, source_pos FROM messages ORDER BY source_pos").fetchall()
        assert p.store.originals().num_rows == 12_000
    monkeypatch.setenv("CHATLENS_INGEST_WORKER", "off")
    with Project.init(tmp_path / "q") as q:
        q.ingest([export])
        assert resumed == q.store.con.execute(
            "SELECT message_id, text, source_pos FROM messages ORDER BY source_pos").fetchall()


INTERRUPTED = """
import sys
import chatlens.ingest.pipeline as pipeline
import chatlens.ingest.worker as worker
from chatlens import Project
pipeline.BATCH = 500
init = worker.TableWorker.__init__
def started(self):
    init(self)
    print("worker", self._proc.pid, flush=True)
worker.TableWorker.__init__ = started
with Project.open(sys.argv[1]) as p:
    p.ingest([sys.argv[2]], progress=lambda path, n: print(n, flush=True))
"""


def test_ctrl_c_stops_an_ingest_and_its_worker_quietly_and_it_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = tmp_path / "big.json"
    telegram_export(export, [f"сообщение {i}" for i in range(12_000)])
    monkeypatch.setenv("CHATLENS_INGEST_WORKER", "on")
    Project.init(tmp_path / "p").close()
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED, str(tmp_path / "p"),
                             str(export)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    pid = int(proc.stdout.readline().split()[1])
    for _ in range(3):
        assert proc.stdout.readline()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole process group
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert "chatlens/ingest/worker.py" not in err  # the worker stopped without a word
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with Project.open(tmp_path / "p") as p:
        (rep,) = p.ingest([export]).sources
        assert rep.status == "complete" and (rep.read, rep.stored) == (12_000, 12_000)


def test_a_worker_that_dies_fails_its_source_clearly_and_the_rerun_completes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = tmp_path / "big.json"
    telegram_export(export, [f"текст {i}" for i in range(5_000)])
    monkeypatch.setenv("CHATLENS_INGEST_WORKER", "on")
    monkeypatch.setattr(pipeline, "BATCH", 400)
    result = TableWorker.result
    calls = []

    def dies_on_the_fourth(self: TableWorker) -> object:
        calls.append(1)
        if len(calls) == 4:
            self._proc.kill()
        return result(self)

    with Project.init(tmp_path / "p") as p:
        monkeypatch.setattr(TableWorker, "result", dies_on_the_fourth)
        (rep,) = p.ingest([export]).sources
        assert rep.status == "failed" and "ingest worker process stopped" in (rep.error or "")
        assert rep.read == rep.stored == 1200  # the three batches stored before it died
        monkeypatch.setattr(TableWorker, "result", result)
        (rep,) = p.ingest([export]).sources  # a new worker
        assert rep.status == "complete" and (rep.read, rep.stored) == (5_000, 5_000)
        assert p.store.con.execute("SELECT count(DISTINCT message_id) FROM messages").fetchone() \
            == (5_000,)


def test_an_error_in_the_worker_is_raised_in_the_main_process() -> None:
    worker = TableWorker()
    try:
        worker.begin(b"k" * 32, "UTC", "src", "run")
        bad = Batch()
        bad.pieces.append((0, ElementRun([b'{"id": 1}', b'{"id": 2}'], [1], Chat("telegram", "1"),
                                         "f.json")))  # one line number for two elements
        bad.read = 2
        worker.submit(bad)
        with pytest.raises(ValueError, match="zip"):
            worker.result()
        good = Batch()
        good.pieces.append((0, ElementRun(
            [json.dumps({"id": 1, "type": "message", "date_unixtime": "1663754400",
                         "text": "ok", "from_id": "user1"}).encode()], [3],
            Chat("telegram", "1"), "f.json")))
        good.read = 1
        worker.submit(good)  # it goes on serving
        tables, counts = worker.result()
        assert counts == (1, 0, 0)
        assert isinstance(tables["messages"], pa.Table)
        assert tables["messages"].column("text").to_pylist() == ["ok"]
    finally:
        worker.close()
    assert not worker.alive


def test_an_unknown_worker_setting_is_refused(project: Project, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATLENS_INGEST_WORKER", "2")
    telegram_export(tmp_path / "e.json", ["a"])
    with pytest.raises(UsageError, match="use auto, on or off"):
        project.ingest([tmp_path / "e.json"])


def test_the_worker_loads_no_store() -> None:
    """The worker process holds what parsing needs, not DuckDB (its memory adds to ingest's)."""
    code = ("import sys, chatlens.ingest.worker, chatlens.ingest.rows, "
            "chatlens.ingest.telegram_json; print(sorted(m for m in ('duckdb', 'chatlens.store') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_module_in_the_current_folder_does_not_shadow_the_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "json.py").write_text('raise ImportError("the user\'s json.py")\n')
    export = telegram_export(tmp_path / "e.json", ["привет", "мир"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATLENS_INGEST_WORKER", "on")
    with Project.init(tmp_path / "p") as p:
        (rep,) = p.ingest([export]).sources
    assert rep.status == "complete" and rep.stored == 2, rep.error


def test_a_source_that_cannot_begin_fails_at_its_first_batch_and_the_next_one_reads(
        ) -> None:
    worker = TableWorker()
    try:
        run = ElementRun([json.dumps({"id": 1, "type": "message", "date_unixtime": "1663754400",
                                      "text": "ok", "from_id": "user1"}).encode()], [3],
                         Chat("telegram", "1"), "f.json")
        batch = Batch()
        batch.pieces.append((0, run))
        batch.read = 1
        worker.begin(b"k" * 32, "Not/AZone", "src", "run")  # no such time zone
        worker.submit(batch)
        with pytest.raises(UsageError):
            worker.result()
        worker.begin(b"k" * 32, "UTC", "src2", "run")
        worker.submit(batch)
        tables, counts = worker.result()  # its own reply, not one left over
        assert counts == (1, 0, 0)
        assert tables["messages"].column("source_id").to_pylist() == ["src2"]
    finally:
        worker.close()


def test_an_exception_that_does_not_unpickle_comes_back_as_a_runtime_error() -> None:
    from chatlens.errors import InputError
    from chatlens.ingest.worker import _portable

    exc = InputError("f.json", "broken", "line 3")
    back = _portable(exc)
    assert isinstance(back, RuntimeError) and "InputError" in str(back) and "broken" in str(back)
    plain = ValueError("x")
    assert _portable(plain) is plain
