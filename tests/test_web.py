"""The dashboard: security over plain HTTP, and end-to-end in a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install uvicorn)")
pytest.importorskip("starlette", reason="starlette is not installed (pip install starlette)")

from click.testing import CliRunner  # noqa: E402

from chatlens import Project  # noqa: E402
from chatlens.cli.web import serve  # noqa: E402
from chatlens.errors import UsageError  # noqa: E402
from chatlens.report import SECTIONS, build_report  # noqa: E402
from chatlens.textsafe import csv_safe  # noqa: E402
from chatlens.web.app import Settings, create_app  # noqa: E402
from chatlens.web.security import resolve_token  # noqa: E402
from tests.test_report import make_project  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
TOKEN = "t0ken-for-tests-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    root: Path
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start(root: Path, **kw: Any) -> Server:
    port = free_port()
    app = create_app(Settings(project=root, annotator="tester", **kw))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    return Server(f"http://127.0.0.1:{port}", root, server, thread)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("web") / "proj")


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[Server]:
    s = start(root)
    yield s
    s.stop()


def request(url: str, method: str = "GET", body: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a: Any, **k: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def csrf_session(url: str) -> tuple[str, dict[str, str]]:
    """Fetch a page; return the CSRF value and the headers a same-origin POST would send."""
    status, headers, body = request(url + "/annotate")
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    value = cookie.split("=", 1)[1]
    assert f'content="{value}"' in body
    return value, {"Cookie": cookie, "X-CSRF-Token": value, "Origin": url}


def hostile_uid(root: Path) -> str:
    import duckdb

    con = duckdb.connect(str(root / "chatlens.duckdb"), read_only=True)
    try:
        return str(con.execute("SELECT uid FROM messages WHERE text LIKE '%<script>%'")
                   .fetchall()[0][0])
    finally:
        con.close()


# -- security over plain HTTP -----------------------------------------------------------------

def test_token_required_for_non_loopback() -> None:
    with pytest.raises(UsageError, match="token"):
        resolve_token("0.0.0.0", None)
    assert resolve_token("127.0.0.1", None) == (None, False)
    assert resolve_token("0.0.0.0", TOKEN) == (TOKEN, False)
    token, generated = resolve_token("0.0.0.0", "auto")
    assert generated and token and len(token) >= 16


def test_serve_refuses_non_loopback_without_token(root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CHATLENS_TOKEN"}
    result = CliRunner(env={"CHATLENS_TOKEN": None}).invoke(
        serve, ["--host", "0.0.0.0", "--project", str(root)], env=env)
    assert result.exit_code != 0
    assert "token" in str(result.exception or result.output).lower()


def test_token_login_header_and_401(root: Path) -> None:
    s = start(root, token=TOKEN)
    try:
        assert request(s.url + "/")[0] == 401
        assert request(s.url + "/", headers={"Authorization": "Bearer wrong-token"})[0] == 401
        assert request(s.url + "/", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert request(s.url + "/", headers={"X-Chatlens-Token": TOKEN})[0] == 200
        status, headers, _ = request(s.url + f"/measures?token={TOKEN}")
        assert status == 303 and headers["location"] == "/measures"
        cookie = headers["set-cookie"].split(";")[0]
        assert "httponly" in headers["set-cookie"].lower()
        assert request(s.url + "/measures", headers={"Cookie": cookie})[0] == 200
        assert request(s.url + "/api/undo", "POST", {"sample_id": "x"})[0] == 401
    finally:
        s.stop()


def test_csrf_and_origin_checks(server: Server) -> None:
    uid = hostile_uid(server.root)
    body = {"uid": uid, "measure": "border_crossing", "value": "no", "comment": "csrf"}
    assert request(server.url + "/api/correction", "POST", body)[0] == 403
    _, ok_headers = csrf_session(server.url)
    no_token = {k: v for k, v in ok_headers.items() if k != "X-CSRF-Token"}
    assert request(server.url + "/api/correction", "POST", body, no_token)[0] == 403
    wrong = {**ok_headers, "X-CSRF-Token": "nope"}
    assert request(server.url + "/api/correction", "POST", body, wrong)[0] == 403
    cross = {**ok_headers, "Origin": "http://evil.example"}
    assert request(server.url + "/api/correction", "POST", body, cross)[0] == 403
    assert request(server.url + "/api/correction", "POST", body, ok_headers)[0] == 200


def test_security_headers_and_host_check(server: Server) -> None:
    status, headers, _ = request(server.url + "/")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert request(server.url + "/", headers={"Host": "evil.example"})[0] == 400


def test_read_only_refuses_writes(root: Path) -> None:
    s = start(root, read_only=True)
    try:
        _, headers = csrf_session(s.url)
        status, _, body = request(s.url + "/api/correction", "POST",
                                  {"uid": "x", "measure": "border_crossing", "value": "no"},
                                  headers)
        assert status == 403 and "read-only" in body
        assert "label-btn" not in request(s.url + "/annotate/" + first_sample(root))[2]
    finally:
        s.stop()


def test_hostile_text_escaped_in_html(server: Server) -> None:
    uid = hostile_uid(server.root)
    _, _, html = request(server.url + "/message/" + uid)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and 'href="javascript:' not in html
    assert "+7 999 123-45-67" not in html and "[phone]" in html and "[email]" in html


def test_csv_export_neutralises_formulas(server: Server) -> None:
    assert csv_safe("=1+1") == "'=1+1" and csv_safe("@x") == "'@x"
    assert csv_safe("\tx") == "'\tx" and csv_safe("-2") == "'-2" and csv_safe("ok") == "ok"
    q = urllib.parse.urlencode({"measure": "border_crossing", "value": "yes"})
    status, headers, body = request(server.url + "/evidence.csv?" + q)
    assert status == 200 and headers["content-type"].startswith("text/csv")
    lines = body.splitlines()
    assert lines[0].startswith("uid,") and len(lines) > 5
    assert not any(cell.startswith(("=", "+", "@")) for line in lines for cell in line.split(","))


def test_a_page_during_a_write_shows_the_being_updated_notice_not_503(server: Server) -> None:
    # the page reads the snapshot the last writer published (tests/test_concurrency.py has more)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from chatlens.store import Store; "
         "s = Store.open(sys.argv[1]); print('locked', flush=True); time.sleep(60)",
         str(server.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        q = urllib.parse.urlencode({"measure": "border_crossing", "value": "yes"})
        status, _, body = request(server.url + "/evidence?" + q)
        assert status == 200 and 'id="being-updated"' in body
    finally:
        holder.kill()
        holder.wait()


def follow_pages(server: Server, url: str, max_pages: int = 50) -> list[tuple[str, list[str]]]:
    """Each page's HTML and message uids, following its "next page" link from ``url``."""
    pages = []
    for _ in range(max_pages):
        status, _, html = request(server.url + url)
        assert status == 200
        pages.append((html, re.findall(r'class="msg" data-uid="([0-9a-f]+)"', html)))
        nxt = re.search(r'id="next-page" href="([^"]+)"', html)
        if not nxt:
            break
        url = nxt.group(1).replace("&amp;", "&")
    return pages


def test_evidence_keyset_paging(server: Server) -> None:
    q = {"measure": "destination", "value": "none"}
    seen = [u for _, uids in follow_pages(server, "/evidence?" + urllib.parse.urlencode(q))
            for u in uids]
    assert len(seen) == len(set(seen)) > 50
    assert seen == sorted(seen)


def test_search_pages_follow_each_other(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import chatlens.web.pages as pages

    with Project.open(server.root, read_only=True) as p:
        everything = [r["uid"] for r in p.search("граница", limit=1000)]
    assert len(everything) > 3
    monkeypatch.setattr(pages, "SEARCH_PAGE", 3)
    got = follow_pages(server, "/search?q=" + urllib.parse.quote("граница"), len(everything))
    assert [u for _, uids in got for u in uids] == everything
    assert ['id="prev-page"' in html for html, _ in got] == [False] + [True] * (len(got) - 1)


def first_sample(root: Path) -> str:
    con = sqlite3.connect(root / "labels.sqlite")
    try:
        return str(con.execute("SELECT sample_id FROM samples WHERE measure = 'mobilization'")
                   .fetchone()[0])
    finally:
        con.close()


# -- end to end in headless Chromium ------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.problems = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("dialog", lambda d: (pg.problems.append("dialog:" + d.message), d.dismiss()))
    pg.on("request", lambda r: None if r.url.startswith(server.url) else
          pg.problems.append("external:" + r.url))
    yield pg
    ctx.close()


def shot(pg: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_every_page_loads(page: Any, server: Server) -> None:
    uid = hostile_uid(server.root)
    paths = {"overview": "/", "measures": "/measures", "measure": "/measures/border_crossing",
             "claims": "/claims", "evidence": "/evidence?measure=z_symbol&value=yes",
             "annotate-index": "/annotate", "topics": "/topics", "message": f"/message/{uid}",
             "search": "/search?q=" + urllib.parse.quote("граница")}
    for name, path in paths.items():
        resp = page.goto(path)
        assert resp.status == 200, name
        assert page.locator("main h1").count() == 1, name
        shot(page, f"page-{name}")
    for bad in ("abc", "0", "-3", "99999999", "²", "9" * 5000):  # junk renders as page 1
        assert page.goto("/search?q=x&page=" + bad).status == 200
    page.goto("/measures/border_crossing")
    assert page.locator("svg.chart polygon.band").count() == 1
    assert page.locator("svg.chart polyline.naive").count() == 1
    page.goto("/evidence?measure=z_symbol&value=yes")
    page.locator(".ctx-btn").first.click()
    page.locator(".ctx:not([hidden]) .ctx-row").first.wait_for()
    assert page.problems == []


def test_keyboard_labelling(page: Any, server: Server) -> None:
    sample = first_sample(server.root)
    page.goto(f"/annotate/{sample}")
    before = int(page.locator("#progress").get_attribute("data-done"))
    stored: list[str] = []
    for key in ("1", "2", "1"):
        uid = page.locator("#annotate").get_attribute("data-uid")
        stored.append(uid)
        with page.expect_navigation():
            page.keyboard.press(key)
    shot(page, "annotate-after-three")
    assert int(page.locator("#progress").get_attribute("data-done")) == before + 3
    con = sqlite3.connect(server.root / "labels.sqlite")
    rows = con.execute("SELECT uid, value, sample_kind, origin FROM labels WHERE annotator = "
                       "'tester' AND sample_id = ? AND status = 'active' ORDER BY label_id",
                       [sample]).fetchall()
    con.close()
    assert [r[0] for r in rows[-3:]] == stored
    assert [r[1] for r in rows[-3:]] == ["yes", "no", "yes"]
    assert {r[2] for r in rows} == {"audit"} and {r[3] for r in rows} == {"annotate"}
    with page.expect_navigation():
        page.keyboard.press("u")
    assert int(page.locator("#progress").get_attribute("data-done")) == before + 2
    assert page.problems == []


def test_ctrl_enter_correction(page: Any, server: Server) -> None:
    page.goto("/evidence?measure=border_crossing&value=yes")
    first = page.locator(".msg").first
    uid = first.get_attribute("data-uid")
    span = page.evaluate("""() => {
        const el = document.querySelector('.msg .msg-text');
        const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        let node = walk.nextNode(), start = 0;
        while (node.data.length < 5) { start += node.data.length; node = walk.nextNode(); }
        const r = document.createRange();
        r.setStart(node, 0); r.setEnd(node, 5);
        const s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
        return [start, start + 5];
    }""")
    page.keyboard.press("Control+Enter")
    page.locator("#correction").wait_for(state="visible")
    assert page.locator("#corr-measure").input_value() == "border_crossing"
    page.select_option("#corr-value", "no")
    page.fill("#corr-comment", "not about a border <b>x</b>")
    shot(page, "correction-dialog")
    page.click("#corr-save")
    page.locator("#correction").wait_for(state="hidden")
    con = sqlite3.connect(server.root / "labels.sqlite")
    row = con.execute("SELECT value, origin, sample_kind, sample_id, span_start, span_end, "
                      "comment FROM labels WHERE uid = ? AND origin = 'correction' ORDER BY "
                      "label_id DESC LIMIT 1", [uid]).fetchone()
    con.close()
    assert row == ("no", "correction", "none", None, span[0], span[1],
                   "not about a border <b>x</b>")
    assert page.problems == []


def test_hostile_message_renders_inert(page: Any, server: Server) -> None:
    uid = hostile_uid(server.root)
    for path in (f"/message/{uid}", "/search?q=" + urllib.parse.quote("очередь ссылка"),
                 f"/evidence?measure=border_crossing&value=yes&group=chat:{urllib.parse.quote('jsonl:xss-test')}"):
        page.goto(path)
        page.wait_for_timeout(300)
        assert page.locator("main img").count() == 0
        assert page.locator("main script").count() == 0
        assert page.locator('a[href^="javascript:"]').count() == 0
        assert page.locator("[onerror]").count() == 0
    page.goto(f"/message/{uid}")
    text = page.locator(".msg-text").first.inner_text()
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>" in text
    assert "[phone]" in text and "[email]" in text
    shot(page, "hostile-message")
    assert page.problems == []


def test_report_offline_makes_no_requests(browser: Any, server: Server,
                                          tmp_path: Path) -> None:
    out = build_report(server.root, tmp_path / "report.html", claims="builtin:exodus-2022")
    ctx = browser.new_context()
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
              else route.abort())
    ctx.set_offline(True)
    pg = ctx.new_page()
    pg.goto(out.as_uri())
    pg.wait_for_load_state("load")
    assert pg.locator("section.part").count() == len(SECTIONS)
    assert pg.locator("svg.chart").count() > 0
    shot(pg, "report")
    ctx.close()
    assert [u for u in requests if not u.startswith("file:")] == []
    assert requests == [out.as_uri()]

