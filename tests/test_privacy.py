"""One masking everywhere: linear-time PII masking, 1:1 chats pseudonymised in every output,
``--reveal`` only on local commands, and ``forget`` that erases text from the disk."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatlens import Project
from chatlens.privacy import Masker
from chatlens.textsafe import is_personal, mask_pii, mask_service_names

FIX = Path(__file__).parent / "fixtures"
ANNA = FIX / "whatsapp" / "WhatsApp Chat with Anna Smith.txt"
BOOK_CLUB = FIX / "whatsapp" / "WhatsApp Chat - Book Club.zip"
TG_PERSONAL = FIX / "telegram_json" / "old_no_unixtime.json"
PLANT = "zqxplantedword"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatlens.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


# -- masking -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "masked"), [
    ("call +7 999 123-45-67 now", "call [phone] now"),
    ("mail ivan.petrov@mail.ru.", "mail [email]."),
    ("https://www.linkedin.com/jobs/view/3712345678/ ok",
     "https://www.linkedin.com/jobs/view/3712345678/ ok"),
    ("see linkedin.com/jobs/view/3712345678", "see linkedin.com/jobs/view/3712345678"),
    ("write wa.me/79991234567 or t.me/+79991234567", "write wa.me/[phone] or t.me/[phone]"),
    ("on 2022-09-21, 21.09.2022 and in 2022-2023", "on 2022-09-21, 21.09.2022 and in 2022-2023"),
    ("id abc123456789x", "id abc123456789x"),
    ("Member 08 added +304 5690 8085", "Member 08 added [phone]"),
    ("on my whatsap+31867734807 now", "on my whatsap[phone] now"),
])
def test_mask_pii_masks_phones_and_emails_and_keeps_urls_and_dates(text: str,
                                                                   masked: str) -> None:
    assert mask_pii(text) == masked


ADVERSARIAL = ["a.", "+1", "1 ", "a", "1", "a@", "12-34 ", "a.b@", "-1", "http://a "]


@pytest.mark.parametrize("unit", ADVERSARIAL)
def test_masking_time_grows_linearly_not_quadratically(unit: str) -> None:
    def seconds(n: int) -> float:  # the best of two: the machine may be busy
        text = unit * (n // len(unit)) + "x"
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            mask_pii(text)
            mask_service_names(text, {"a": "b"})
            best = min(best, time.perf_counter() - t)
        return best

    # growth, not a time budget (a busy machine slows both sizes): 10x the text takes about
    # 10x as long when linear, 100x when quadratic (it was a minute at 100 KB)
    small, big = seconds(100_000), seconds(1_000_000)
    assert big < 40 * max(small, 1e-3), f"{small:.4f} s -> {big:.4f} s: not linear"


_host = st.from_regex(r"[a-z]{2,10}\.(com|ru|org|io)", fullmatch=True)
_path = st.lists(st.from_regex(r"[A-Za-z0-9_~%-]{1,12}", fullmatch=True), max_size=5)
_query = st.lists(st.from_regex(r"[a-z]{1,5}=[A-Za-z0-9]{1,12}", fullmatch=True), max_size=3)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["https://", "http://", "https://www.", ""]))
    url = scheme + draw(_host) + "/" + "/".join(draw(_path))
    query = draw(_query)
    return url + ("?" + "&".join(query) if query else "")


@settings(max_examples=300, deadline=None)
@given(url=urls(), before=st.sampled_from(["", "see ", "(", "ссылка: "]),
       after=st.sampled_from(["", " ok", ".", " и всё"]))
def test_masking_never_eats_urls(url: str, before: str, after: str) -> None:
    assert url in mask_pii(before + url + after)


_phone = st.builds(lambda cc, a, b, c, d: f"+{cc} {a} {b}-{c}-{d}",
                   st.integers(1, 99), st.integers(100, 999), st.integers(100, 999),
                   st.integers(10, 99), st.integers(10, 99))
_email = st.from_regex(r"[a-z][a-z0-9._]{0,10}[a-z0-9]@[a-z]{2,8}\.(com|ru|ua)", fullmatch=True)
_words = st.text(st.sampled_from("абв xyz ,.!?"), max_size=30)


@settings(max_examples=300, deadline=None)
@given(pii=st.one_of(_phone, _email), left=_words, right=_words)
def test_phones_and_emails_are_masked_wherever_they_stand(pii: str, left: str,
                                                          right: str) -> None:
    masked = mask_pii(f"{left} {pii} {right}")
    assert pii not in masked and ("[phone]" in masked or "[email]" in masked)


def test_service_texts_lose_names_known_or_not() -> None:
    names = {"member 08": "a1234"}
    assert mask_service_names("Member 08 added Member 252", names) == "a1234 added [name]"
    assert mask_service_names("You joined using this group's invite link") == (
        "You joined using this group's invite link")
    assert mask_service_names("Anna Smith left") == "[name] left"


def test_personal_chats_are_recognised_by_type_or_a_title_that_is_a_sender() -> None:
    assert is_personal("personal_chat", "Друг", [])
    assert is_personal("personal", "Bob", [])
    assert not is_personal("private_supergroup", "Ушёл", [])
    assert is_personal(None, "Anna Smith", ["Carl", "Anna Smith"])
    assert is_personal(None, "+7 999 123 45 67", [])
    assert not is_personal(None, "Book Club", ["Eve", "Frank"])


# -- every output --------------------------------------------------------------------------

@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A project with a WhatsApp 1:1 chat, a WhatsApp group and a Telegram personal chat; one
    service text carries a phone number and an e-mail address."""
    chat = tmp_path / "WhatsApp Chat with Anna Smith.txt"
    chat.write_text(ANNA.read_text(encoding="utf-8") + (
        "21/01/2019, 09:00 - Carl added +7 999 123-45-67 and anna@example.com\n"
        "21/01/2019, 09:01 - Anna Smith: job at https://linkedin.com/jobs/view/3712345678 "
        "ring me at +7 999 765-43-21 about границы\n"), encoding="utf-8")
    root = tmp_path / "proj"
    with Project.init(root) as p:
        report = p.ingest([chat, BOOK_CLUB, TG_PERSONAL])
        assert not report.failed
    return root


def _assert_masked(blob: str) -> None:
    for raw in ("Anna Smith", "anna smith", "Старый чат", "999 123-45-67", "999 765-43-21",
                "anna@example.com"):
        assert raw not in blob, raw


def test_export_masks_every_format_and_reveal_is_recorded(mixed: Path, tmp_path: Path) -> None:
    with Project.open(mixed) as p:
        masker = p.masker()
        assert set(masker.personal) == {"whatsapp:anna smith", "telegram:42"}
        for fmt in ("parquet", "csv", "jsonl"):
            out = tmp_path / f"m.{fmt}"
            p.export(out)
            if fmt == "parquet":
                blob = duckdb.sql(f"SELECT * FROM '{out}'").df().to_csv()
            else:
                blob = out.read_text(encoding="utf-8")
            _assert_masked(blob)
            assert "https://linkedin.com/jobs/view/3712345678" in blob
            assert "Book Club" in blob  # a group keeps its title
        p.export(tmp_path / "raw.jsonl", reveal=True)
        runs = p.runs(2)
    raw = (tmp_path / "raw.jsonl").read_text(encoding="utf-8")
    assert "anna smith" in raw and "anna@example.com" in raw
    assert json.loads(runs[0]["params"])["reveal"] is True
    assert json.loads(runs[1]["params"])["reveal"] is False


def test_search_and_evidence_cli_mask_unless_reveal(mixed: Path) -> None:
    assert run("code", "--project", str(mixed)).returncode == 0
    res = run("search", "границы", "--project", str(mixed))
    assert res.returncode == 0, res.stderr
    assert "1:1 chat c" in res.stdout and "[phone]" in res.stdout
    _assert_masked(res.stdout)
    res = run("search", "границы", "--reveal", "--json", "--project", str(mixed))
    assert "Anna Smith" in res.stdout and "765-43-21" in res.stdout
    with Project.open(mixed, read_only=True) as p:
        assert any(json.loads(r["params"]).get("reveal") for r in p.runs(5)
                   if r["command"] == "search")


def test_report_and_dashboard_data_never_show_1to1_partners(mixed: Path,
                                                            tmp_path: Path) -> None:
    from chatlens.present.messages import overview
    from chatlens.project import Project
    from chatlens.report.build import build_report

    assert run("code", "--project", str(mixed)).returncode == 0
    out = tmp_path / "report.html"
    build_report(mixed, out, n_evidence=50)
    _assert_masked(out.read_text(encoding="utf-8"))
    with Project(Project.open(mixed, read_only=True).store) as p:
        _assert_masked(json.dumps(overview(p), default=str, ensure_ascii=False))


def test_coding_sheets_and_label_studio_tasks_mask_phones_and_emails(mixed: Path,
                                                                      tmp_path: Path) -> None:
    with Project.open(mixed) as p:
        p.code()
        sample = p.sample("border_crossing", "audit", n=11, seed=1)
        uids = {i["uid"] for i in p.labels().sample_items(sample["sample_id"])}
        ring = p.store.con.execute("SELECT uid FROM messages WHERE text LIKE '%765-43-21%'"
                                   ).fetchall()[0][0]
        assert ring in uids  # the message with the phone number is in the sheet
        for name, fmt in (("sheet.csv", None), ("tasks.json", "labelstudio-tasks")):
            p.export_labels(tmp_path / name, fmt, sample_id=sample["sample_id"])
            blob = (tmp_path / name).read_text(encoding="utf-8-sig")
            assert "765-43-21" not in blob and "[phone]" in blob, name
            assert "https://linkedin.com/jobs/view/3712345678" in blob  # URLs are kept


def test_masker_reveal_changes_nothing() -> None:
    m = Masker(personal={"k": ("p:c1", "Anna")}, reveal=True)
    assert m.title("k", "Anna") == "Anna" and m.text("+7 999 123 45 67") == "+7 999 123 45 67"


# -- forget --------------------------------------------------------------------------------

def _bytes_found(root: Path, needle: str) -> dict[str, int]:
    return {str(f.relative_to(root)): n for f in root.rglob("*") if f.is_file()
            and (n := f.read_bytes().count(needle.encode()))}


def test_forget_author_erases_text_from_every_file_and_logs_no_content(tmp_path: Path) -> None:
    from chatlens.project.forget import forget
    from chatlens.store.labels import NewLabel

    src = tmp_path / "WhatsApp Chat with Carl.txt"
    src.write_text(f"20/01/2019, 11:23 - Zed Planter: hello {PLANT} one\n"
                   "20/01/2019, 11:24 - Carl: ok fine\n"
                   f"20/01/2019, 11:25 - Zed Planter: second {PLANT} message\n", encoding="utf-8")
    root = tmp_path / "proj"
    with Project.init(root) as p:
        p.ingest([src, ANNA])
        p.code()
        uid = p.store.con.execute("SELECT uid FROM messages WHERE text LIKE ?",
                                  [f"%{PLANT}%"]).fetchall()[0][0]
        p.labels().add_labels([NewLabel(uid, "exodus-2022", "m", "yes", "me",
                                        comment=f"quote {PLANT}")])
        assert _bytes_found(root, PLANT)
        key = p.store.con.execute("SELECT author_key FROM identities "
                                  "WHERE display_name = 'Zed Planter'").fetchall()[0][0]
        report = forget(p, author=key)
        assert report.messages == 2 and report.deleted["labels"] == 1
        assert p.store.con.execute("SELECT count(*) FROM messages").fetchall()[0][0] > 0
        last = p.store.runs(1)[0]
    assert _bytes_found(root, PLANT) == {}
    assert _bytes_found(root, "Zed Planter") == {}
    assert last["command"] == "forget" and last["status"] == "complete"
    assert key not in last["params"] + last["manifest"] and PLANT not in last["manifest"]


def _planted_chat(tmp_path: Path) -> Path:
    """A project of one WhatsApp chat where Zed Planter writes ``PLANT``."""
    src = tmp_path / "WhatsApp Chat with Carl.txt"
    src.write_text(f"20/01/2019, 11:23 - Zed Planter: hello {PLANT} one\n"
                   "20/01/2019, 11:24 - Carl: ok fine\n", encoding="utf-8")
    root = tmp_path / "proj"
    with Project.init(root) as p:
        p.ingest([src])
    return root


def test_forget_keeps_the_writer_lock_and_refreshes_the_readers_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rewrite swaps the database file: no other writer may get in between, and the
    snapshot readers open must not keep the erased rows until the command ends."""
    from chatlens.project.forget import forget
    from chatlens.store import snapshot

    root = _planted_chat(tmp_path)
    assert PLANT.encode() in (root / snapshot.SNAPSHOT_NAME).read_bytes()
    held: list[bool] = []
    real_replace = os.replace

    def replace(a: str | Path, b: str | Path) -> None:
        held.append(snapshot.writer(root) is not None)  # seen from another file description
        real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    with Project.open(root) as p:
        key = p.store.con.execute("SELECT author_key FROM identities "
                                  "WHERE display_name = 'Zed Planter'").fetchall()[0][0]
        report = forget(p, author=key)
        assert PLANT.encode() not in (root / snapshot.SNAPSHOT_NAME).read_bytes()
    assert report.other_files == []  # the store's own snapshot.json is no output to check
    assert held and all(held)
    assert _bytes_found(root, PLANT) == {}


_KILLED_FORGET = """
import os, sys
from chatlens import Project
from chatlens.project import forget as module
stage = sys.argv[2]
def die(*args, **kwargs):
    os._exit(137)
setattr(module.db, stage, die)
with Project.open(sys.argv[1]) as p:
    key = p.store.con.execute("SELECT author_key FROM identities "
                              "WHERE display_name = 'Zed Planter'").fetchall()[0][0]
    module.forget(p, author=key)
"""


@pytest.mark.parametrize("stage", ["erase", "rewrite"])
def test_forget_killed_midway_is_finished_by_running_it_again(tmp_path: Path,
                                                               stage: str) -> None:
    """Killed after the labels went (before ``erase``) or after the deletions were committed
    (before the file rewrite): running the same forget again leaves no trace of the text, no
    labels, and a runs log that says which run finished the interrupted one."""
    from chatlens.store.labels import NewLabel

    root = _planted_chat(tmp_path)
    with Project.open(root) as p:
        uid = p.store.con.execute("SELECT uid FROM messages WHERE text LIKE ?",
                                  [f"%{PLANT}%"]).fetchall()[0][0]
        p.labels().add_labels([NewLabel(uid, "exodus-2022", "m", "yes", "me",
                                        comment=f"quote {PLANT}")])
        key = p.store.con.execute("SELECT author_key FROM identities "
                                  "WHERE display_name = 'Zed Planter'").fetchall()[0][0]
    killed = subprocess.run([sys.executable, "-c", _KILLED_FORGET, str(root), stage],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 137, killed.stderr
    with Project.open(root, read_only=True) as p:
        assert p.labels().labels_arrow().num_rows == 0  # labels go first
    shown = run("status", "--project", str(root))
    assert "did not finish" in shown.stderr and "run the same `chatlens forget`" in shown.stderr
    res = run("forget", "--author", key, "--project", str(root))
    assert res.returncode == 0, res.stderr
    assert ("finished the interrupted erasure" in res.stdout) == (stage == "rewrite")
    assert _bytes_found(root, PLANT) == {}
    with Project.open(root, read_only=True) as p:
        runs = {r["run_id"]: r for r in p.store.runs()}
        assert p.labels().labels_arrow().num_rows == 0
        assert p.store.con.execute("SELECT count(*) FROM messages").fetchall()[0][0] == 1
    assert json.loads(run("status", "--json", "--project", str(root)).stdout)[
        "interrupted_erasures"] == []
    statuses = sorted(r["status"] for r in runs.values() if r["command"] == "forget")
    assert statuses == ["complete", "interrupted"]


def test_forget_source_then_reingest_with_another_encoding(tmp_path: Path) -> None:
    src = tmp_path / "chat.csv"
    src.write_bytes("text,ts,author\nпривет границы,2022-10-01T10:00:00Z,u1\n".encode("cp1251"))
    root = tmp_path / "proj"
    assert run("init", "--project", str(root)).returncode == 0
    assert run("ingest", str(src), "--encoding", "latin-1", "--project",
               str(root)).returncode == 0
    res = run("forget", "--source", str(src), "--json", "--project", str(root))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["messages"] == 1
    assert run("ingest", str(src), "--encoding", "cp1251", "--project",
               str(root)).returncode == 0
    with Project.open(root, read_only=True) as p:
        texts = [r[0] for r in p.store.con.execute("SELECT text FROM messages").fetchall()]
    assert texts == ["привет границы"]


def test_forget_needs_exactly_one_known_criterion(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    assert run("init", "--project", str(root)).returncode == 0
    assert run("forget", "--project", str(root)).returncode == 2
    res = run("forget", "--chat", "nope", "--project", str(root))
    assert res.returncode == 2 and "No chat" in res.stderr


# -- no network ----------------------------------------------------------------------------

def _can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _can_unshare(), reason="unshare -n (a network namespace) not available")
def test_demo_ingest_code_report_run_without_a_network(tmp_path: Path) -> None:
    guard = Path(__file__).parent / "nonet.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}

    def offline(*args: str) -> None:
        res = subprocess.run(["unshare", "-n", sys.executable, str(guard), *args],
                             capture_output=True, text=True, timeout=600, env=env)
        assert res.returncode == 0, res.stdout + res.stderr

    offline("demo", "--messages", "60", "--project", str(tmp_path / "demo"))
    proj = str(tmp_path / "p")
    offline("init", "--project", proj)
    offline("ingest", str(ANNA), str(TG_PERSONAL), "--project", proj)
    offline("code", "--project", proj)
    offline("report", "--project", proj, "-o", str(tmp_path / "r.html"))
    assert (tmp_path / "r.html").stat().st_size > 1000


def test_dashboard_pages_never_show_1to1_partners(mixed: Path) -> None:
    import socket
    import threading
    import urllib.parse
    import urllib.request

    import uvicorn

    from chatlens.web.app import Settings, create_app

    assert run("code", "--project", str(mixed)).returncode == 0
    with Project.open(mixed, read_only=True) as p:
        measures = [m.id for m in p.codebook()[0].measures]
        uids = [r[0] for r in p.store.con.execute(
            "SELECT uid FROM messages WHERE chat_key IN ('whatsapp:anna smith', 'telegram:42')"
        ).fetchall()]
        shown = p.masker().chat_key("whatsapp:anna smith")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(project=mixed)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    pages = ["/", "/measures", "/claims", "/topics", "/search?q=" + urllib.parse.quote("границы")]
    for m in measures:
        pages += [f"/measures/{m}", f"/evidence?measure={m}&value=yes",
                  f"/evidence.csv?measure={m}&value=yes"]
    pages += [f"/message/{u}" for u in uids] + [f"/context/{u}" for u in uids]
    pages.append(f"/evidence?measure={measures[0]}&value=yes&group=chat:{shown}")
    try:
        for page in pages:
            try:
                with urllib.request.urlopen(base + page, timeout=60) as r:
                    body = r.read().decode()
            except urllib.error.HTTPError as exc:  # a page that refuses still must not leak
                body = exc.read().decode()
            _assert_masked(urllib.parse.unquote(body))
            if page == "/":
                assert "1:1 chat c" in body and "Book Club" in body
    finally:
        server.should_exit = True
        thread.join(10)


#: Modules allowed to open network connections (collectors, the LLM endpoint client), by path.
NETWORK_ALLOWED = ("chatlens/collect", "chatlens/engines/spark", "chatlens/code/llm.py")
_NETWORK_IMPORT = re.compile(
    r"^\s*(?:import|from)\s+(socket|urllib\.request|http\.client|requests|httpx|aiohttp|"
    r"telethon|ftplib|smtplib|websockets)\b", re.MULTILINE)


def test_package_makes_no_network_calls_outside_collectors() -> None:
    root = Path(__file__).parents[1]
    offenders = [str(f.relative_to(root)) for f in sorted((root / "chatlens").rglob("*.py"))
                 if not str(f.relative_to(root)).startswith(NETWORK_ALLOWED)
                 and _NETWORK_IMPORT.search(f.read_text(encoding="utf-8"))]
    assert offenders == [], f"network clients imported outside collectors: {offenders}"


def test_forget_chat_by_its_shown_pseudonym(mixed: Path) -> None:
    with Project.open(mixed, read_only=True) as p:
        shown = p.masker().chat_key("whatsapp:anna smith")
    assert shown and shown.startswith("whatsapp:c")
    res = run("forget", "--chat", shown, "--project", str(mixed))
    assert res.returncode == 0, res.stderr
    assert "erased" in res.stdout and "Anna" not in res.stdout
    with Project.open(mixed, read_only=True) as p:
        keys = {r[0] for r in p.store.con.execute("SELECT chat_key FROM chats").fetchall()}
        names = {r[0] for r in p.store.con.execute(
            "SELECT display_name FROM identities").fetchall()}
    assert "whatsapp:anna smith" not in keys and "whatsapp:book club" in keys
    assert "Anna Smith" not in names
    assert _bytes_found(mixed, "Anna Smith") == {}
    res = run("forget", "--chat", "telegram:42", "--project", str(mixed))
    assert res.returncode == 0, res.stderr
    assert _bytes_found(mixed, "Старый чат") == {}
    assert _bytes_found(mixed, json.dumps("Старый чат")[1:-1]) == {}
