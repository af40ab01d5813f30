"""Which labels an estimate uses and what it says about them: two coders who disagree,
adjudication, tie policies, samples of several designs, labels under another codebook name,
messages not coded yet. A small real project (Telegram JSON export written by the test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatlens import Project, UsageError
from chatlens.store.labels import NewLabel
from tests.helpers import telegram_export

CB = "exodus-2022"
TEXTS = ([f"Стоим на границе в Ларсе {i} часов" for i in range(40)]
         + [f"Обычное сообщение про погоду {i}" for i in range(120)])


@pytest.fixture
def coded(tmp_path: Path) -> Project:
    p = Project.init(tmp_path / "p")
    p.ingest([telegram_export(tmp_path / "a.json", TEXTS[:80], chat_id=1),
              telegram_export(tmp_path / "b.json", TEXTS[80:], chat_id=2)])
    p.code(f"builtin:{CB}")
    return p


def _two_coders(p: Project, sample_id: str, disagree_every: int = 5) -> list[str]:
    items = [i["uid"] for i in p.labels().sample_items(sample_id)]
    text = dict(p.store.con.execute("SELECT uid, text FROM messages").fetchall())
    labels, disputed = [], []
    for k, uid in enumerate(items):
        truth = "yes" if "границе" in text[uid] else "no"
        other = truth if k % disagree_every else ("no" if truth == "yes" else "yes")
        if other != truth:
            disputed.append(uid)
        labels += [NewLabel(uid, CB, "border_crossing", truth, "anna", sample_id=sample_id,
                            sample_kind="audit"),
                   NewLabel(uid, CB, "border_crossing", other, "boris", sample_id=sample_id,
                            sample_kind="audit")]
    p.labels().add_labels(labels)
    return disputed


def test_disagreements_are_counted_bounded_and_settled_by_adjudication(coded: Project) -> None:
    s = coded.sample("border_crossing", "audit", 60, seed=1)["sample_id"]
    disputed = _two_coders(coded, s)
    (row,) = coded.estimate("border_crossing")
    assert row.unresolved == len(disputed) > 0 and row.status == "partial"
    (excl,) = coded.estimate("border_crossing", ties="exclude")
    assert excl.estimate.n_labelled == 60 - len(disputed)
    (anna,) = coded.estimate("border_crossing", ties="annotator:anna")
    assert anna.unresolved == 0 and anna.status == "valid"
    assert row.estimate.lower <= anna.estimate.point <= row.estimate.upper
    with pytest.raises(UsageError, match="nobody called 'nobody'"):
        coded.estimate("border_crossing", ties="annotator:nobody")
    before = coded.agreement("border_crossing")["report"]["border_crossing"]
    coded.adjudicate("border_crossing", {u: "yes" for u in disputed}, "chief")
    (after,) = coded.estimate("border_crossing")
    assert after.unresolved == 0 and after.status == "valid"
    # agreement is between the coders; the adjudicator's decisions do not count as coding
    assert coded.agreement("border_crossing")["report"]["border_crossing"] == before
    assert before["n_coders"] == 2


def test_samples_of_two_designs_use_one_and_name_the_other(coded: Project) -> None:
    strat = coded.sample("border_crossing", "audit", 40, strata="chat", seed=2)["sample_id"]
    _two_coders(coded, strat, disagree_every=10**6)
    simple = coded.sample("border_crossing", "audit", 20, seed=3)["sample_id"]
    _two_coders(coded, simple, disagree_every=10**6)
    (row,) = coded.estimate("border_crossing")
    assert row.samples == [strat] and any(simple in w for w in row.warnings)
    (only,) = coded.estimate("border_crossing", samples=[simple])
    assert only.samples == [simple] and only.estimate.n_labelled == 20
    coded.drop_sample(strat)
    assert coded.estimate("border_crossing")[0].samples == [simple]


def test_labels_under_another_codebook_name_are_pointed_out(coded: Project,
                                                             tmp_path: Path) -> None:
    s = coded.sample("border_crossing", "audit", 30, seed=4)["sample_id"]
    _two_coders(coded, s, disagree_every=10**6)
    from chatlens.codebook import load_codebook

    renamed = load_codebook(f"builtin:{CB}").model_dump(mode="json") | {"name": "mine"}
    import yaml

    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(renamed, allow_unicode=True), "utf-8")
    coded.code(tmp_path / "mine.yaml")
    (row,) = coded.estimate("border_crossing")
    assert row.status == "none"
    assert any("exist under the codebook(s) exodus-2022" in w for w in row.warnings)


def test_messages_not_coded_yet_are_named(coded: Project, tmp_path: Path) -> None:
    s = coded.sample("border_crossing", "audit", 30, seed=5)["sample_id"]
    _two_coders(coded, s, disagree_every=10**6)
    coded.ingest([telegram_export(tmp_path / "c.json", ["Ещё про границу"] * 7, chat_id=3)])
    (row,) = coded.estimate("border_crossing")
    assert any(w.startswith("7 messages of the project are not coded") for w in row.warnings)


def test_a_group_with_too_few_labels_is_not_shown_as_valid(coded: Project) -> None:
    s = coded.sample("border_crossing", "audit", 30, seed=6)["sample_id"]
    _two_coders(coded, s, disagree_every=10**6)
    rows = coded.estimate("border_crossing", by="chat")
    for r in rows:
        d = r.as_dict()
        assert (r.status == "too-few") == (r.estimate.n_labelled < 2)
        assert d["valid"] == (r.status in ("valid", "partial"))
        assert all(not isinstance(d[k], float) or d[k] == 0.0 or abs(d[k]) >= 1e-12
                   for k in ("point", "lower", "upper"))


def test_valid_and_too_small_never_both_hold(coded: Project) -> None:
    """A chat-stratified audit of 40 reaches each chat and month with 2-29 labels: the
    small-group rule makes those rows ``too-small`` and not valid (the normal approximation
    behind their interval is not met), in the API, ``--json`` and the CLI table alike."""
    from click.testing import CliRunner

    from chatlens.cli import cli

    s = coded.sample("border_crossing", "audit", 40, strata="chat", seed=7)["sample_id"]
    _two_coders(coded, s, disagree_every=10**6)
    (overall,) = coded.estimate("border_crossing")
    assert overall.estimate.n_labelled == 40 and overall.valid
    small = []
    for by in ("chat", "month", "week"):
        for r in coded.estimate("border_crossing", by=by):
            d = r.as_dict()
            assert not (d["valid"] and d["too_small"]), (by, r.group, d["status"])
            assert d["too_small"] == (not d["valid"]), (by, r.group, d["status"])
            if 2 <= r.estimate.n_labelled < 30:
                assert r.status == "too-small" and "not a valid interval" in d["status_note"]
                small.append(r)
    assert small  # the chats, at least, hold 2-29 labels each
    root = str(coded.root)
    coded.close()
    res = CliRunner().invoke(cli, ["estimate", "--measure", "border_crossing", "--by", "chat",
                                   "--json", "--project", root])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(res.output)
    assert rows and all(not (r["valid"] and r["too_small"]) for r in rows)
    table = CliRunner(env={"COLUMNS": "250"}).invoke(
        cli, ["estimate", "--measure", "border_crossing", "--by", "chat", "--project", root])
    assert "not a valid interval" in table.output


def test_ties_bounds_show_both_settlements_not_their_midpoint(coded: Project,
                                                              tmp_path: Path) -> None:
    """Under ``--ties bounds`` the point is the range of the two settlements' points (the
    estimates once every disputed message is settled "no", and once "yes"), shown as such in
    the API, JSON, CLI, dashboard and report; the interval covers both settlements'."""
    from click.testing import CliRunner

    from chatlens.cli import cli
    from chatlens.present.estimates import estimates
    from chatlens.report import build_report

    s = coded.sample("border_crossing", "audit", 60, seed=1)["sample_id"]
    disputed = _two_coders(coded, s)
    (row,) = coded.estimate("border_crossing")
    est = row.estimate
    assert est.point_range is not None and row.status == "partial"
    lo, hi = est.point_range
    d = row.as_dict()
    assert d["point_range"] == [lo, hi] and f"{lo:.1%} settled one way" in d["notes"]
    (web,) = estimates(coded, "border_crossing")
    assert web.point_range == (lo, hi)
    root = coded.root
    coded.close()
    res = CliRunner(env={"COLUMNS": "250"}).invoke(
        cli, ["estimate", "--measure", "border_crossing", "--project", str(root)])
    assert f"{100 * lo:.1f}–{100 * hi:.1f}%" in res.output, res.output
    assert f"{100 * est.point:.1f}% [" not in res.output  # the midpoint is not shown as one
    build_report(root, tmp_path / "r.html")
    assert f"{100 * lo:.1f}%–{100 * hi:.1f}%" in (tmp_path / "r.html").read_text("utf-8")
    pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    from tests.test_web import request, start

    server = start(root)
    try:
        status, _, page = request(server.url + "/measures/border_crossing")
    finally:
        server.stop()
    assert status == 200 and f"{100 * lo:.1f}%–{100 * hi:.1f}%" in page
    settled = []
    with Project.open(root) as p:
        for value in ("no", "yes"):
            p.adjudicate("border_crossing", {u: value for u in disputed}, "chief")
            (one,) = p.estimate("border_crossing")
            assert one.estimate.point_range is None and one.unresolved == 0
            settled.append(one.estimate)
    assert (lo, hi) == pytest.approx((settled[0].point, settled[1].point))
    assert est.lower <= min(e.lower for e in settled) and est.upper >= max(e.upper for e in settled)
