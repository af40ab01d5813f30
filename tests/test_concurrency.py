"""Readers and writers at the same time, with real processes: readers keep working while a
command writes, browsing cannot keep a writer out, labels never wait for the main database, and a
writer killed mid-way leaves the project consistent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install uvicorn)")

from chatlens.store import snapshot
from tests.test_web import Server, csrf_session, request, start

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "CHATLENS_LOCK_WAIT": "20"}

#: A writer process: ingests a file with the real pipeline (committed), says so, then keeps the
#: project open for writing (a long command between batches) until its stdin closes.
HOLDER = """
import sys
from chatlens import Project
p = Project.open(sys.argv[1])
p.ingest([sys.argv[2]], format="jsonl")
print("written", flush=True)
sys.stdin.read()
p.close()
"""


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatlens.cli", *args], capture_output=True,
                          text=True, env=env or ENV, timeout=timeout, cwd=REPO)


def jsonl(path: Path, n: int, chat: str = "new-chat") -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"text": f"сообщение {i} о границе", "chat": chat,
                                 "ts": f"2022-10-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
                                 "author": f"a{i % 37}", "message_id": str(i)}) + "\n")
    return path


def messages(root: Path) -> int:
    out = cli("status", "--json", "--project", str(root))
    assert out.returncode == 0, out.stderr
    return int(json.loads(out.stdout)["messages"])


class Holder:
    """A running writer process (see :data:`HOLDER`)."""

    def __init__(self, root: Path, src: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), str(src)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=ENV, cwd=REPO)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "written"

    def finish(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(60) == 0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.test_report import make_project

    return make_project(tmp_path_factory.mktemp("concur") / "proj")


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[Server]:
    s = start(root)
    yield s
    s.stop()


@pytest.fixture
def holder(root: Path, tmp_path: Path) -> Iterator[Holder]:
    h = Holder(root, jsonl(tmp_path / "more.jsonl", 50, chat=f"chat-{tmp_path.name}"))
    yield h
    if h.proc.poll() is None:
        h.finish()


def test_status_and_report_work_while_a_command_writes(root: Path, tmp_path: Path) -> None:
    before = messages(root)
    h = Holder(root, jsonl(tmp_path / "more.jsonl", 40, chat="during-status"))
    try:
        assert messages(root) == before  # the state the writer started from, not an error
        out = cli("status", "--project", str(root))
        assert out.returncode == 0 and f"process {h.proc.pid}) is writing" in out.stderr
        out = cli("report", "-o", str(tmp_path / "r.html"), "--project", str(root))
        assert out.returncode == 0, out.stderr
        assert "<html" in (tmp_path / "r.html").read_text(encoding="utf-8").lower()
    finally:
        h.finish()
    assert messages(root) == before + 40  # the writer published its work when it closed


def test_dashboard_shows_being_updated_notice_not_503(server: Server, holder: Holder) -> None:
    for page in ("/", "/measures", "/annotate"):
        status, _, body = request(server.url + page)
        assert status == 200, (page, status)
        assert 'id="being-updated"' in body and "being updated" in body
    q = "/evidence?measure=border_crossing&value=yes"
    status, _, body = request(server.url + q)
    assert status == 200 and "being updated" in body


def test_dashboard_waits_with_a_notice_when_nothing_is_readable_yet(
        root: Path, server: Server, holder: Holder) -> None:
    snap = root / snapshot.SNAPSHOT_NAME
    kept = snap.read_bytes()
    try:
        snapshot.drop(root)  # as while a writer publishes the first copy of an older project
        server_app = server.server.config.app
        server_app.state.web.access.close()
        status, headers, body = request(server.url + "/measures")
        assert status == 200 and headers.get("retry-after") == "3"
        assert "Being updated" in body and 'http-equiv="refresh"' in body
    finally:
        snap.write_bytes(kept)


def test_labels_saved_in_the_dashboard_during_a_write_are_kept(
        root: Path, server: Server, holder: Holder) -> None:
    from chatlens import Project
    from chatlens.store.labels import LabelStore

    with Project.open(root, read_only=True) as p:
        sample = p.labels().samples()[0]
        uid = p.labels().sample_items(sample["sample_id"])[0]["uid"]
        before = p.labels().labels_arrow().num_rows
    _, headers = csrf_session(server.url)
    status, _, body = request(server.url + "/api/label", "POST",
                              {"sample_id": sample["sample_id"], "uid": uid, "value": "yes"},
                              headers)
    assert status == 200, body
    holder.finish()
    ls = LabelStore(root)
    try:
        assert ls.labels_arrow().num_rows >= before  # same uid relabelled counts once
        rows = ls.con.execute("SELECT count(*) FROM labels WHERE uid = ? AND annotator = "
                              "'tester'", [uid]).fetchone()
        assert rows[0] >= 1
    finally:
        ls.close()


def test_label_import_does_not_take_the_main_write_lock(root: Path, holder: Holder,
                                                         tmp_path: Path) -> None:
    from chatlens import Project

    with Project.open(root, read_only=True) as p:
        uid = p.messages().column("uid")[0].as_py()
    src = tmp_path / "labels.csv"
    src.write_text(f"uid,measure,value\n{uid},border_crossing,no\n", encoding="utf-8")
    out = cli("label", "import", str(src), "--annotator", "imp", "--json", "--project",
              str(root), env={**ENV, "CHATLENS_LOCK_WAIT": "1"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["stored"] == 1
    assert holder.proc.poll() is None  # the writer still held the project throughout
    with Project.open(root, read_only=True) as p:
        assert any(r["command"] == "label import" for r in p.runs(50))


def test_reading_commands_work_during_a_write_and_leave_the_main_file_alone(
        root: Path, holder: Holder, tmp_path: Path) -> None:
    """estimate, claims check and export only read: they run while another command writes,
    log their runs in the label store, and publish no new copy of the main file."""
    from chatlens import Project

    main = root / snapshot.DB_NAME
    before = main.stat().st_mtime_ns
    fast = {**ENV, "CHATLENS_LOCK_WAIT": "1"}
    out = cli("estimate", "--measure", "border_crossing", "--value", "yes", "--json",
              "--project", str(root), env=fast)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    out = cli("claims", "check", "builtin:exodus-2022", "--json", "--project", str(root),
              env=fast)
    assert out.returncode == 0, out.stderr
    out = cli("export", "-o", str(tmp_path / "m.jsonl"), "--project", str(root), env=fast)
    assert out.returncode == 0, out.stderr
    assert holder.proc.poll() is None  # the writer held the project throughout
    assert main.stat().st_mtime_ns == before
    holder.finish()
    with Project.open(root, read_only=True) as p:
        runs = {r["run_id"]: r["command"] for r in p.runs(50)}
    assert runs[row["run_id"]] == "estimate" and "export" in runs.values()


def test_browsing_at_5_requests_a_second_does_not_keep_a_writer_out(
        root: Path, server: Server, tmp_path: Path) -> None:
    stop = threading.Event()
    answers: list[int] = []

    def browse() -> None:
        pages = ["/", "/measures", "/evidence?measure=border_crossing&value=yes", "/annotate"]
        i = 0
        while not stop.is_set():
            answers.append(request(server.url + pages[i % len(pages)])[0])
            i += 1
            stop.wait(0.2)

    threads = [threading.Thread(target=browse) for _ in range(2)]  # ~10 requests/s
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        began = time.monotonic()
        out = cli("ingest", str(jsonl(tmp_path / "w.jsonl", 30, chat="starve")), "--format",
                  "jsonl", "--json", "--project", str(root),
                  env={**ENV, "CHATLENS_LOCK_WAIT": "5"})
        took = time.monotonic() - began
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert out.returncode == 0, out.stderr
    assert took < 60
    assert answers and set(answers) == {200}, sorted(set(answers))


def test_a_writer_killed_mid_way_leaves_the_project_consistent(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    assert cli("init", "--project", str(root)).returncode == 0
    src = jsonl(tmp_path / "big.jsonl", 120_000, chat="big")
    proc = subprocess.Popen([sys.executable, "-m", "chatlens.cli", "ingest", str(src),
                             "--format", "jsonl", "--project", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                            cwd=REPO)
    wal = root / "chatlens.duckdb.wal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > 20_000_000:  # two batches of 20,000 logged
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the ingest finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # readable at once (the main file with its log, read-only), and counts reconcile
    status = cli("status", "--json", "--project", str(root))
    assert status.returncode == 0, status.stderr
    first: dict[str, Any] = json.loads(status.stdout)
    assert 0 < first["messages"] < 120_000
    src_row = first["sources_detail"][0]
    assert src_row["n_stored"] == first["messages"] and src_row["status"] == "partial"
    # a rerun continues and completes; nothing twice, nothing lost
    out = cli("ingest", str(src), "--format", "jsonl", "--json", "--project", str(root))
    assert out.returncode == 0, out.stderr
    final = json.loads(cli("status", "--json", "--project", str(root)).stdout)
    assert final["messages"] == 120_000
    assert snapshot.is_fresh(root)  # and readers are back on a published copy


def test_keyboard_labelling_in_a_real_browser_during_a_write(
        root: Path, server: Server, holder: Holder) -> None:
    from tests.test_web import CHROMIUM, CHROMIUM_ARGS

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent")
    from chatlens import Project

    with Project.open(root, read_only=True) as p:
        sample = p.labels().samples()[0]["sample_id"]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(base_url=server.url)
            assert page.goto(f"/annotate/{sample}").status == 200
            assert page.locator("#being-updated").is_visible()
            uid = page.locator("#annotate").get_attribute("data-uid")
            with page.expect_navigation():
                page.keyboard.press("1")
            assert page.locator("#being-updated").is_visible()
        finally:
            browser.close()
    holder.finish()
    with Project.open(root, read_only=True) as p:
        got = [r for r in p.labels().labels_arrow().to_pylist()
               if r["uid"] == uid and r["annotator"] == "tester" and r["sample_id"] == sample]
    assert got, "the label saved during the write is kept"
