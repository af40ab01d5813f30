"""The ``chatlens`` command as a user runs it: a real process, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TG = Path(__file__).parent / "fixtures" / "telegram_json"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatlens.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_init_ingest_status_export_round(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    assert run("init", "--project", str(proj)).returncode == 0
    res = run("ingest", str(TG / "single_chat.json"), "--project", str(proj), "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["totals"] == {"read": 12, "stored": 12, "duplicate": 0, "quarantined": 0,
                                "service": 3}
    st = json.loads(run("status", "--json", env={"CHATLENS_PROJECT": str(proj)}).stdout)
    assert st["messages"] == 12 and st["by_platform"][0]["platform"] == "telegram"
    res = run("export", "--format", "csv", "-o", str(tmp_path / "m.csv"), "--project", str(proj))
    assert res.returncode == 0 and (tmp_path / "m.csv").exists()


def test_project_from_current_directory(tmp_path: Path) -> None:
    assert run("init", cwd=tmp_path).returncode == 0
    assert run("ingest", str(TG / "full_account.json"), cwd=tmp_path).returncode == 0
    assert "4 messages" in run("status", cwd=tmp_path).stdout


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    res = run("status", "--project", str(tmp_path / "none"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "not a chatlens project" in res.stderr
    run("init", "--project", str(tmp_path / "p"))
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01garbage" * 100)
    res = run("ingest", str(tmp_path / "junk.bin"), "--project", str(tmp_path / "p"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "junk.bin" in res.stderr and "not a format chatlens recognises" in res.stderr
    res = run("ingest", str(TG / "single_chat.json"), "--map", "nonsense",
              "--project", str(tmp_path / "p"))
    assert res.returncode == 2 and "COLUMN=FIELD" in res.stderr


def test_partial_success_exits_zero_and_names_the_failure(tmp_path: Path) -> None:
    run("init", "--project", str(tmp_path / "p"))
    (tmp_path / "empty.json").write_text("")
    res = run("ingest", str(tmp_path / "empty.json"), str(TG / "single_chat.json"),
              "--project", str(tmp_path / "p"))
    assert res.returncode == 0
    assert "empty.json" in res.stderr and "1 of 2 sources ingested" in res.stdout


def test_folder_summary_counts_only_ingested_sources(tmp_path: Path) -> None:
    run("init", "--project", str(tmp_path / "p"))
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "SOURCE.txt").write_text("Downloaded from somewhere, CC BY 4.0\n")
    (folder / "chat.json").write_bytes((TG / "single_chat.json").read_bytes())
    res = run("ingest", str(folder), "--project", str(tmp_path / "p"))
    assert res.returncode == 0
    assert "1 of 2 sources ingested" in res.stdout and "(1 skipped)" in res.stdout
    assert "chat.json [telegram-json]: read" in res.stdout  # the format tag is not eaten
    again = run("ingest", str(folder), "--project", str(tmp_path / "p"))
    assert "0 of 2 sources ingested, 0 new messages (1 unchanged, 1 skipped)" in again.stdout


def test_whatsapp_without_tz_gets_a_note_that_its_times_were_read_as_utc(
        tmp_path: Path) -> None:
    wa = Path(__file__).parent / "fixtures" / "whatsapp"
    chat = sorted(wa.glob("*.txt"))[0]
    for tz, noted in ((None, True), ("Europe/Moscow", False)):
        proj = tmp_path / f"p{noted}"
        run("init", "--project", str(proj))
        res = run("ingest", str(chat), "--project", str(proj), *(["--tz", tz] if tz else []))
        assert res.returncode == 0, res.stderr
        assert ("were read as UTC" in res.stderr) is noted
        assert ("--tz ZONE" in res.stderr) is noted


def test_terminal_output_escapes_control_characters(tmp_path: Path) -> None:
    doc = {"name": "evil\x1b[2J\x1b]0;pwned\x07title", "type": "private_group", "id": 1,
           "messages": [{"id": 1, "type": "message", "date_unixtime": "1", "from_id": "user1",
                         "text": "x", "text_entities": []}]}
    (tmp_path / "e.json").write_text(json.dumps(doc, indent=1))
    run("init", "--project", str(tmp_path / "p"))
    run("ingest", str(tmp_path / "e.json"), "--project", str(tmp_path / "p"))
    res = run("ingest", str(tmp_path / "e.json"), "--project", str(tmp_path / "p"))
    assert "\x1b" not in res.stdout + res.stderr


@pytest.mark.slow
def test_demo_runs_the_real_pipeline(tmp_path: Path) -> None:
    res = run("demo", "--project", str(tmp_path / "demo"), "--messages", "120", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["synthetic"] is True
    totals = out["ingest"]["totals"]
    assert out["ingest"]["failed"] == 0
    assert totals["read"] == totals["stored"] + totals["duplicate"] + totals["quarantined"]
    assert out["status"]["chats"] == 2 and out["status"]["messages"] == 121 + 123
    human = run("demo", "--project", str(tmp_path / "demo2"), "--messages", "50")
    assert "SYNTHETIC" in human.stdout and human.returncode == 0
