"""A real, messy project built from every export in ../shared/data, as a new user would build
one: several Telegram and WhatsApp exports, a table without timestamps, a labelled table
declared as a reference set, two coders who disagree, a chat-stratified audit with census and
singleton strata beside a simple audit, a measure without labels, and claims with and without
estimates. Every command must finish or fail with one clear line; every dashboard page must
load in Chromium; the report must hold no error text; and no interval may be shown as valid
when it is not.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from chatlens import Project
from chatlens.store.labels import NewLabel
from tests.conftest import shared_data_dir
from tests.helpers import telegram_export

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

CB = "exodus-2022"
BORDER = [f"Стоим на границе в Верхнем Ларсе уже {i} часов, очередь огромная" for i in range(30)]


def cli(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatlens.cli", *args, "--project", str(root)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def _label(p: Project, sample_id: str, coder: str, flip_every: int = 0) -> None:
    """``coder`` labels every item of the sample as the rule coded it; with ``flip_every`` the
    coder disagrees on every n-th item."""
    items = p.labels().sample_items(sample_id)
    sample = next(s for s in p.labels().samples() if s["sample_id"] == sample_id)
    measure = sample["measure"]
    m = p.codebook()[0].measure(measure)
    coded = dict(p.store.con.execute(
        "SELECT uid, value FROM codes WHERE codebook = ? AND measure = ? AND in_population",
        [CB, measure]).fetchall())
    labels = []
    for i, item in enumerate(items):
        value = coded[item["uid"]]
        if flip_every and i % flip_every == 0:
            value = next(v for v in m.labels if v != value)
        labels.append(NewLabel(item["uid"], CB, measure, value, coder, sample_id=sample_id,
                               sample_kind=sample["kind"]))
    p.labels().add_labels(labels)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = shared_data_dir()
    if data is None:
        pytest.skip("real data not present: ../shared/data is absent (set CHATLENS_SHARED_DATA)")
    tmp = tmp_path_factory.mktemp("messy")
    root = tmp / "project"
    # a table without timestamps, with a chat of one message (a census stratum of one)
    tweets = list(csv.DictReader((data / "labeled/ru_rusentitweet/rusentitweet_test.csv")
                                 .open(encoding="utf-8")))[:400]
    undated = tmp / "undated.csv"
    with undated.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "chat"])
        for i, r in enumerate(tweets):
            w.writerow([f"t{i}", r["text"], "tweets" if i else "lonely"])
    # the labelled table: another corpus, declared a reference set for border_crossing
    reference = tmp / "reference.csv"
    with reference.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "chat"])
        for i, t in enumerate(BORDER[:20] + [r["text"] for r in tweets[:80]]):
            w.writerow([f"r{i}", t, "reference-corpus"])
    border = telegram_export(tmp / "border.json", BORDER + ["Привет всем"] * 10, chat_id=77,
                             name="Граница")
    with Project.init(root) as p:
        report = p.ingest([data / "telegram", data / "whatsapp", border])
        assert all(s.read == s.stored + s.duplicate + s.quarantined for s in report.sources)
        p.ingest([undated], format="csv")
        p.ingest([reference], format="csv")
        p.code(f"builtin:{CB}")
        strat = p.sample("border_crossing", "audit", 60, strata="chat", seed=3)
        _label(p, strat["sample_id"], "coder_a")
        _label(p, strat["sample_id"], "coder_b", flip_every=6)
        simple = p.sample("border_crossing", "audit", 40, seed=4)
        _label(p, simple["sample_id"], "coder_a")
        train = p.sample("mobilization", "train", 50, seed=5)
        _label(p, train["sample_id"], "coder_a")
        ref = p.store.con.execute(
            "SELECT uid, text FROM messages WHERE chat_key LIKE '%reference-corpus%'").fetchall()
    ref_labels = tmp / "reference-labels.csv"
    with ref_labels.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["uid", "measure", "value", "annotator"])
        for uid, text in ref:
            w.writerow([uid, "border_crossing", "yes" if "границе" in text else "no", "ref"])
    assert len(ref) == 100
    return {"root": root, "tmp": tmp, "strat": strat["sample_id"],
            "simple": simple["sample_id"], "ref_labels": ref_labels}


def clean(res: subprocess.CompletedProcess[str]) -> None:
    """Exit 0, or 1/2 with a one-line message and no traceback."""
    assert "Traceback" not in res.stderr, res.stderr
    if res.returncode:
        assert res.returncode in (1, 2), res.stderr
        lines = [x for x in res.stderr.strip().splitlines() if x.strip()]
        assert len(lines) == 1, res.stderr


def test_every_command_finishes_or_fails_clearly(messy: dict[str, Any]) -> None:
    root, tmp = messy["root"], messy["tmp"]
    res = cli(root, "label", "import", str(messy["ref_labels"]), "--reference", "tweets-2020")
    assert res.returncode == 0, res.stderr
    commands = [
        ["status"], ["status", "--quarantine"], ["export", "-o", str(tmp / "all.parquet")],
        ["search", "граница"], ["codebook", "show"], ["codebook", "show", "--yaml"],
        ["samples"], ["samples", "--all"], ["agreement"], ["models"],
        ["label", "adjudicate", "--measure", "border_crossing"],
        ["label", "adjudicate", "--measure", "border_crossing", "-o", str(tmp / "adj.csv")],
        ["label", "export", "-o", str(tmp / "labels.csv")],
        ["estimate", "--measure", "border_crossing", "--method", "quantify"],
        ["estimate", "--measure", "border_crossing", "--split", "2022-09-21"],
        ["estimate", "--measure", "border_crossing", "--ties", "exclude"],
        ["estimate", "--measure", "border_crossing", "--ties", "annotator:coder_a"],
        ["estimate", "--measure", "border_crossing", "--sample", messy["simple"]],
        ["evidence", "--measure", "border_crossing", "--value", "yes", "--lang", "en"],
        ["claims", "check", f"builtin:{CB}"],
        ["train", "--measure", "mobilization"],
        ["report", "-o", str(tmp / "report.html")],
    ]
    for by in (None, "chat", "month", "week", "lang"):
        for measure in ("border_crossing", "host_hostility", "war_stance"):
            commands.append(["estimate", "--measure", measure, *(["--by", by] if by else [])])
    for args in commands:
        clean(cli(root, *args))
    report = (tmp / "report.html").read_text(encoding="utf-8")
    for bad in ("Traceback", "Error:", "undefined", "'dict object'"):
        assert bad not in report
    # a relative codebook path keeps working from another directory: the project stores it
    yaml_text = cli(root, "codebook", "show", "--yaml").stdout
    (tmp / "mine.yaml").write_text(yaml_text, encoding="utf-8")
    assert cli(root, "code", "--codebook", "mine.yaml", cwd=tmp).returncode == 0
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    for args in (["estimate", "--measure", "border_crossing"], ["claims", "check",
                                                                f"builtin:{CB}"]):
        res = cli(root, *args, cwd=elsewhere)
        assert res.returncode == 0, res.stderr


def test_numbers_shown_as_valid_are_valid(messy: dict[str, Any]) -> None:
    root = messy["root"]
    with Project.open(root) as p:
        # no audit and training labels only: no valid estimate, never quantify
        (row,) = p.estimate("mobilization")
        assert row.status == "none" and not row.valid and row.estimate.method == "naive"
        # two designs: the one with more labels is used, the other named
        (row,) = p.estimate("border_crossing")
        assert row.samples == [messy["strat"]]
        assert any(messy["simple"] in w for w in row.warnings)
        # the coders' ties are counted, reported and bounded, never silently dropped
        assert row.unresolved > 0 and row.status == "partial"
        assert any("disagree" in w for w in row.warnings)
        for by in ("chat", "month", "week", "lang"):
            rows = p.estimate("border_crossing", by=by)
            for r in rows:
                e = r.estimate
                census = e.n_labelled >= (e.N_population or 0)
                assert e.width > 0 or census, (by, r.group, e)
                assert r.status in ("valid", "partial", "too-small", "too-few"), (by, r.group,
                                                                                   r.status)
                # the small-group rule and validity agree: a month of 2-29 labels is not valid
                assert r.valid != e.too_small, (by, r.group, r.status, e.n_labelled)
                if by in ("month", "week"):
                    assert r.group != "(none)"
            if by in ("month", "week"):
                assert rows[0].undated and rows[0].undated >= 400
        # the reference set is declared: quantify runs and says what it assumes
        (q,) = p.estimate("border_crossing", method="quantify")
        assert q.status in ("assumption", "at-bound") and not q.valid
        # adjudication settles a disagreement, and the estimate follows it
        items = p.unresolved("border_crossing")
        assert items and all(len(set(i["labels"].values())) > 1 for i in items)
        before = p.estimate("border_crossing")[0].unresolved
        p.adjudicate("border_crossing", {items[0]["uid"]: items[0]["tied"][0]}, "boss")
        assert p.estimate("border_crossing")[0].unresolved == before - 1
        # dropping a sample frees the estimate from it; restoring brings it back
        p.drop_sample(messy["strat"])
        (row,) = p.estimate("border_crossing")
        assert row.samples == [messy["simple"]] and row.unresolved == 0
        p.drop_sample(messy["strat"], restore=True)
        # evidence follows the same population filter as the estimate
        from chatlens.project.estimate import Population

        en = Population(languages=["en"])
        n_en = p.estimate("border_crossing", population=en, method="naive")[0].naive
        ev = p.evidence("border_crossing", "yes", en, limit=1000)
        assert len(ev) <= round(n_en.point * (n_en.N_population or 0))


def test_every_dashboard_page_loads(messy: dict[str, Any]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from tests.test_web import CHROMIUM, CHROMIUM_ARGS, start

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    root = messy["root"]
    with Project.open(root, read_only=True) as p:
        cb = p.codebook()[0]
        uid = p.store.con.execute("SELECT uid FROM messages LIMIT 1").fetchall()[0][0]
        samples = [s["sample_id"] for s in p.labels().samples()]
    paths = ["/", "/measures", "/claims", "/topics", "/annotate", "/network", f"/message/{uid}",
             "/search?q=" + urllib.parse.quote("граница"),
             *(f"/measures/{m.id}" for m in cb.measures),
             *(f"/annotate/{s}" for s in samples),
             "/evidence?measure=border_crossing&value=yes",
             "/evidence?measure=border_crossing&value=yes&group=chat:whatever"]
    server = start(root)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(base_url=server.url)
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            for path in paths:
                resp = page.goto(path)
                assert resp is not None and resp.status == 200, (path, resp and resp.status)
                body = page.content()
                assert "Traceback" not in body and "'dict object'" not in body, path
            # a bad date is the user's mistake: a clear 400 page, not a server error
            resp = page.goto("/evidence?measure=border_crossing&value=yes&since=not-a-date")
            assert resp is not None and resp.status == 400 and "2022-09-21" in page.content()
            problems = [x for x in problems if "400" not in x]
            assert problems == [], problems
            browser.close()
    finally:
        server.stop()
    json.dumps(paths)  # the list itself is part of the test's record
