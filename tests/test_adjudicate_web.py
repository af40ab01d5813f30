"""Adjudicating coder disagreements on the dashboard, in a real headless Chromium and over HTTP."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatlens.project import Project
from chatlens.project.labels import disputes
from chatlens.store import Store
from chatlens.store.labels import LabelStore, NewLabel
from chatlens.store.stages import population_frame
from tests.test_report import make_project
from tests.test_web import (  # noqa: F401  (browser is a fixture)
    Server,
    browser,
    csrf_session,
    hostile_uid,
    request,
    shot,
    start,
)

MEASURE = "z_symbol"
CLAIMS = """codebook: builtin:exodus-2022
claims:
  - id: z_any
    statement: Some messages show the Z sign.
    measure: z_symbol
    value: "yes"
    compare: share > 0.01
    level: 0.95
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small project whose z_symbol audit sample (a census, so the hostile message is in it)
    is labelled by two coders who disagree on four messages, the hostile one among them."""
    root = make_project(tmp_path_factory.mktemp("adjudicate") / "proj", n_messages=30)
    from chatlens import Project

    with Project.open(root) as p:
        for s in p.labels().samples(measure=MEASURE):
            p.drop_sample(s["sample_id"])
        n = population_frame(p.store, "exodus-2022", MEASURE).num_rows
        sample = p.sample(MEASURE, "audit", n=n, seed=1)["sample_id"]
        uids = [i["uid"] for i in p.labels().sample_items(sample)]
        hostile = hostile_uid_of(p.store)
        assert hostile in uids
        a = {u: "yes" if k % 4 == 0 else "no" for k, u in enumerate(uids)}
        b = dict(a)
        for u in [hostile, *[x for x in uids if x != hostile][:3]]:
            b[u] = "no" if a[u] == "yes" else "yes"
        for coder, values in (("coder_a", a), ("coder_b", b)):
            p.labels().add_labels(NewLabel(
                uid=u, codebook="exodus-2022", measure=MEASURE, value=v, annotator=coder,
                sample_id=sample, sample_kind="audit") for u, v in values.items())
    (root / "claims.yaml").write_text(CLAIMS, encoding="utf-8")
    return root


def hostile_uid_of(store: Store) -> str:
    return str(store.con.execute("SELECT uid FROM messages WHERE text LIKE '%<script>%'")
               .fetchall()[0][0])


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[Server]:
    s = start(root, claims=str(root / "claims.yaml"))
    yield s
    s.stop()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:  # noqa: F811
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.problems = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("request", lambda r: None if r.url.startswith(server.url) else
          pg.problems.append("external:" + r.url))
    yield pg
    ctx.close()


def open_uids(root: Path) -> list[str]:
    ls = LabelStore(root)
    try:
        return [d["uid"] for d in disputes(ls, "exodus-2022", MEASURE)]
    finally:
        ls.close()


def unresolved_in_estimate(root: Path) -> int:
    with Project(Store.open(root, read_only=True)) as p:
        return int(p.estimate(MEASURE)[0].unresolved)


def goto_item(page: Any, root: Path, uid: str) -> None:
    """Open the adjudication page on ``uid`` (the page shows the first open one after ``after``)."""
    uids = open_uids(root)
    after = uids[uids.index(uid) - 1] if uids.index(uid) else ""
    page.goto(f"/adjudicate/{MEASURE}?after={urllib.parse.quote(after)}")
    assert page.locator("#adjudicate").get_attribute("data-uid") == uid


def test_index_counts_open_disagreements_per_measure(page: Any, server: Server) -> None:
    page.goto("/adjudicate")
    assert page.locator("nav a.active").inner_text() == "Adjudicate"
    row = page.locator(f'#adjudicate-counts tr[data-measure="{MEASURE}"]')
    assert int(row.locator(".n").inner_text()) == len(open_uids(server.root)) > 0
    assert page.locator('#adjudicate-counts tr[data-measure="mobilization"] .n').inner_text() \
        == "0"
    with page.expect_navigation():
        row.locator("a").click()
    assert page.url.endswith(f"/adjudicate/{MEASURE}")
    shot(page, "adjudicate-index-then-page")
    assert page.problems == []


def test_estimate_and_claim_link_to_adjudication(page: Any, server: Server) -> None:
    n = unresolved_in_estimate(server.root)
    assert n > 0
    for path in (f"/measures/{MEASURE}", "/claims"):
        page.goto(path)
        note = page.locator(".unresolved").first
        assert f"{n} coder disagreement" in note.inner_text() and "adjudicate" in \
            note.inner_text()
        assert note.locator("a").get_attribute("href") == f"/adjudicate/{MEASURE}"
    assert page.problems == []


def test_hostile_text_renders_inert(page: Any, server: Server) -> None:
    uid = hostile_uid(server.root)
    goto_item(page, server.root, uid)
    page.wait_for_timeout(300)
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert page.locator("[onerror]").count() == 0
    text = page.locator(".msg-text").first.inner_text()
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>" in text
    assert "[phone]" in text and "[email]" in text and "+7 999" not in page.content()
    assert page.problems == []


def test_page_shows_text_context_and_every_coders_label(page: Any, server: Server) -> None:
    uid = open_uids(server.root)[0]
    goto_item(page, server.root, uid)
    coders = page.locator(".coder-labels .coder").all_inner_texts()
    values = page.locator(".coder-labels .value").all_inner_texts()
    assert coders == ["coder_a", "coder_b"] and sorted(values) == ["no", "yes"]
    assert page.locator(".msg-text").inner_text().strip()
    assert page.locator(".ctx-before .ctx-row, .ctx-after .ctx-row").count() > 0
    assert page.locator(".adj-btn").all_inner_texts() == ["1 yes", "2 no"]
    assert page.problems == []


def settled(root: Path, uid: str) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(root / "labels.sqlite")
    try:
        return con.execute("SELECT value, annotator, sample_kind FROM labels WHERE uid = ? AND "
                           "origin = 'adjudication'", [uid]).fetchall()
    finally:
        con.close()


def test_key_and_click_settle_and_the_next_comes_up(page: Any, server: Server) -> None:
    uids = [u for u in open_uids(server.root) if u != hostile_uid(server.root)]
    assert len(uids) >= 2
    before, est_before = len(open_uids(server.root)), unresolved_in_estimate(server.root)
    goto_item(page, server.root, uids[0])
    with page.expect_navigation():
        page.keyboard.press("2")
    assert settled(server.root, uids[0]) == [("no", "tester", "audit")]
    assert page.locator("#adjudicate").get_attribute("data-uid") == uids[1]
    assert int(page.locator("#adjudicate-left").get_attribute("data-left")) == before - 1
    assert unresolved_in_estimate(server.root) == est_before - 1
    with page.expect_navigation():
        page.locator('.adj-btn[data-value="yes"]').click()
    assert settled(server.root, uids[1]) == [("yes", "tester", "audit")]
    assert int(page.locator("#adjudicate-left").get_attribute("data-left")) == before - 2
    assert unresolved_in_estimate(server.root) == est_before - 2
    page.goto("/adjudicate")
    row = page.locator(f'#adjudicate-counts tr[data-measure="{MEASURE}"]')
    assert int(row.locator(".n").inner_text()) == before - 2
    shot(page, "adjudicate-after-two")
    assert page.problems == []


def test_s_moves_on_without_deciding(page: Any, server: Server) -> None:
    uids = open_uids(server.root)
    assert len(uids) >= 2
    goto_item(page, server.root, uids[0])
    with page.expect_navigation():
        page.keyboard.press("s")
    assert page.locator("#adjudicate").get_attribute("data-uid") == uids[1]
    assert open_uids(server.root) == uids
    assert page.problems == []


def test_post_needs_csrf_and_a_writable_dashboard(root: Path, server: Server) -> None:
    uid = open_uids(root)[0]
    body = {"measure": MEASURE, "uid": uid, "value": "yes"}
    url = server.url + "/api/adjudicate"
    assert request(url, "POST", body)[0] == 403
    _, headers = csrf_session(server.url)
    assert request(url, "POST", body, {**headers, "X-CSRF-Token": "wrong"})[0] == 403
    assert request(url, "POST", body, {**headers, "Origin": "http://evil.example"})[0] == 403
    status, _, text = request(url, "POST", body | {"value": "maybe"}, headers)
    assert status == 400 and "not a label" in text
    status, _, text = request(url, "POST", body | {"uid": "no-such-uid"}, headers)
    assert status == 400 and "no audit label" in text
    ro = start(root, read_only=True)
    try:
        _, ro_headers = csrf_session(ro.url)
        status, _, text = request(ro.url + "/api/adjudicate", "POST", body, ro_headers)
        assert status == 403 and "read-only" in text
        assert "adj-btn" not in request(ro.url + f"/adjudicate/{MEASURE}")[2]
    finally:
        ro.stop()
    assert uid in open_uids(root)


def test_saving_works_while_another_process_writes_the_store(root: Path,
                                                             server: Server) -> None:
    _, headers = csrf_session(server.url)
    assert request(server.url + f"/adjudicate/{MEASURE}")[0] == 200  # codebook cached
    uid = open_uids(root)[0]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from chatlens.store import Store; "
         "s = Store.open(sys.argv[1]); print('locked', flush=True); time.sleep(60)",
         str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = len(open_uids(root))
        status, _, _ = request(server.url + "/api/adjudicate", "POST",
                               {"measure": MEASURE, "uid": uid, "value": "no"}, headers)
        assert status == 200 and len(open_uids(root)) == before - 1
        assert request(server.url + "/adjudicate")[0] == 200  # counts need no DuckDB either
    finally:
        holder.kill()
        holder.wait()
