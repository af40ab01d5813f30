"""Claims: verdicts at the boundaries; estimates on a project with planted truth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatlens import Project
from chatlens.codebook import load_codebook
from chatlens.codebook.claims import parse_claims, verdict_sign, verdict_threshold
from chatlens.demo import run_demo
from chatlens.errors import ClaimsError
from chatlens.project.claims import bucket_index
from chatlens.store.labels import NewLabel
from tests.helpers import telegram_export


@pytest.mark.parametrize(("lower", "upper", "op", "t", "expected"), [
    (0.21, 0.30, ">", 0.2, "supported"),
    (0.20, 0.30, ">", 0.2, "inconclusive"),   # touching the threshold decides nothing
    (0.20, 0.30, ">=", 0.2, "supported"),
    (0.10, 0.19, ">", 0.2, "contradicted"),
    (0.10, 0.20, ">", 0.2, "inconclusive"),
    (0.15, 0.25, ">", 0.2, "inconclusive"),
    (0.10, 0.19, "<", 0.2, "supported"),
    (0.10, 0.20, "<", 0.2, "inconclusive"),
    (0.10, 0.20, "<=", 0.2, "supported"),
    (0.21, 0.40, "<", 0.2, "contradicted"),
])
def test_threshold_verdicts_follow_the_interval(lower: float, upper: float, op: str, t: float,
                                                expected: str) -> None:
    assert verdict_threshold(lower, upper, op, t) == expected


@pytest.mark.parametrize(("lower", "upper", "positive", "expected"), [
    (0.01, 0.2, True, "supported"), (0.0, 0.2, True, "inconclusive"),
    (-0.2, -0.01, True, "contradicted"), (-0.2, -0.01, False, "supported"),
    (-0.1, 0.1, False, "inconclusive"), (0.01, 0.1, False, "contradicted"),
])
def test_sign_verdicts(lower: float, upper: float, positive: bool, expected: str) -> None:
    assert verdict_sign(lower, upper, positive) == expected


def test_claims_file_problems_are_located() -> None:
    cb = load_codebook("builtin:exodus-2022")
    text = """
codebook: builtin:exodus-2022
claims:
  - id: a
    statement: Something is common.
    measure: border_crossing
    value: maybe
    compare: share > 0.2
  - id: b
    statement: Something changed.
    measure: war_stance
    value: opposes
    compare: share(after) < share(before)
    groups: {after: {since: 2022-09-21}}
  - id: c
    statement: Something else.
    measure: nope
    value: "yes"
    compare: share is big
"""
    with pytest.raises(ClaimsError) as info:
        parse_claims(text, "c.yaml", cb)
    found = {p: m for p, _, m in info.value.problems}
    assert "does not define" in found["claims[1]"] and "cannot read compare" in found["claims[2]"]
    ok = text.split("  - id: b")[0]
    with pytest.raises(ClaimsError) as info:
        parse_claims(ok, "c.yaml", cb)
    ((path, line, msg),) = info.value.problems
    assert path == "claims[0].value" and line == 7 and "'maybe' is not one of" in msg


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_demo(tmp_path_factory.mktemp("demo") / "p", n_messages=500, seed=11)


def test_demo_intervals_contain_the_planted_prevalences(demo: dict) -> None:
    for e in demo["estimates"]:
        assert e["method"] == "ppi" and e["n_labelled"] == 150
        assert e["lower"] <= e["true_share"] <= e["upper"], e
    border = next(e for e in demo["estimates"] if e["measure"] == "border_crossing")
    assert abs(border["naive"] - border["true_share"]) > 0.05  # the rule codes are biased
    assert abs(border["point"] - border["true_share"]) < abs(border["naive"] - border["true_share"])


def test_cli_estimate_and_claims_on_the_demo(demo: dict) -> None:
    proj = demo["project"]
    res = subprocess.run([sys.executable, "-m", "chatlens.cli", "estimate", "--measure",
                          "border_crossing", "--by", "chat", "--json", "--project", proj],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 2 and all(r["method"] == "ppi" for r in rows)
    assert all(r["naive"]["label"].startswith("naive") for r in rows)
    res = subprocess.run([sys.executable, "-m", "chatlens.cli", "claims", "check",
                          "builtin:exodus-2022", "--json", "--project", proj],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    results = {c["id"]: c for c in json.loads(res.stdout)["results"]}
    assert set(results) == {"hatred_toward_georgians", "remove_z_before_border",
                            "most_not_against_war", "anti_war_less_after_mobilization",
                            "border_talk_rising"}
    # no labels for host_hostility: the naive count never decides a claim
    assert results["hatred_toward_georgians"]["verdict"] == "inconclusive"
    assert "no valid estimate" in results["hatred_toward_georgians"]["reason"]
    assert all(c["evidence"].startswith("chatlens evidence") for c in results.values())


def test_estimate_without_audit_labels_fails_clearly_for_ppi(tmp_path: Path) -> None:
    d = run_demo(tmp_path / "p", n_messages=60, seed=3)
    res = subprocess.run([sys.executable, "-m", "chatlens.cli", "estimate", "--measure",
                          "host_hostility", "--method", "ppi", "--project", d["project"]],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "No audit labels" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_group_the_audit_missed_is_flagged_not_fatal(tmp_path: Path) -> None:

    d = run_demo(tmp_path / "p", n_messages=60, seed=3)
    with Project.open(d["project"]) as proj:
        proj.ingest([telegram_export(tmp_path / "late.json", ["Очередь на границе"] * 5,
                                     chat_id=777, name="late chat")])
        proj.code()

        def late() -> tuple[Any, Any]:
            rows = proj.estimate("border_crossing", by="chat", method="ppi")
            assert len(rows) == 3
            ours = next(r for r in rows if r.group and r.group.endswith("777"))
            assert all(r.estimate.n_labelled > 1 and r.estimate.width < 1 for r in rows
                       if r is not ours)
            return ours.estimate, ours.naive

        e, naive = late()
        assert e.n_labelled == 0 and (e.lower, e.upper) == (0.0, 1.0) and e.too_small
        assert e.point == naive.point and "too few" in e.notes
        # one audit label in the group: still the whole range, the point corrected by it
        (sample,) = proj.labels().samples("exodus-2022", "border_crossing", "audit")
        uid = proj.store.con.execute(
            "SELECT uid FROM messages WHERE chat_key LIKE '%777' LIMIT 1").fetchall()[0][0]
        proj.labels().add_labels([NewLabel(
            uid=uid, codebook="exodus-2022", measure="border_crossing", value="no",
            annotator="t", sample_id=sample["sample_id"], sample_kind="audit")])
        e, naive = late()
        assert e.n_labelled == 1 and (e.lower, e.upper) == (0.0, 1.0) and e.too_small
        assert e.point < naive.point


def test_trend_positions_follow_the_calendar() -> None:
    assert bucket_index("2023-06", "month") - bucket_index("2023-01", "month") == 5
    assert bucket_index("2022-10-03", "week") - bucket_index("2022-09-19", "week") == 2


def test_claims_never_rest_on_groups_under_the_small_group_rule(tmp_path: Path) -> None:
    """60 audit labels spread over 8 months (under 30 a month): no month has a valid interval, so
    a trend claim by month is inconclusive instead of fitting a slope to them, and a threshold
    claim on one month says it has too few labels; the whole period (60 labels) decides."""
    texts = [("Стоим на границе в Ларсе " if i % 3 == 0 else "Обычный разговор про погоду ")
             + str(i) for i in range(160)]
    p = Project.init(tmp_path / "p")
    p.ingest([telegram_export(tmp_path / "a.json", texts, step=129600)])
    p.code("builtin:exodus-2022")
    s = p.sample("border_crossing", "audit", 60, seed=2)["sample_id"]
    text = dict(p.store.con.execute("SELECT uid, text FROM messages").fetchall())
    p.labels().add_labels(
        NewLabel(i["uid"], "exodus-2022", "border_crossing",
                 "yes" if "границе" in text[i["uid"]] else "no", "coder", sample_id=s,
                 sample_kind="audit") for i in p.labels().sample_items(s))
    months = p.estimate("border_crossing", by="month")
    assert len(months) >= 6 and all(r.estimate.n_labelled < 30 for r in months)
    assert sum(r.estimate.n_labelled >= 2 for r in months) >= 3
    assert not any(r.valid for r in months)
    (claims := tmp_path / "claims.yaml").write_text("""\
codebook: builtin:exodus-2022
claims:
  - id: rising
    statement: Border talk rose.
    measure: border_crossing
    value: "yes"
    compare: trend up
    by: month
  - id: october
    statement: Border talk was common in October 2022.
    measure: border_crossing
    value: "yes"
    population: {since: 2022-10-01, until: 2022-10-31}
    compare: share > 0.05
  - id: overall
    statement: Border talk was common.
    measure: border_crossing
    value: "yes"
    compare: share > 0.05
""", encoding="utf-8")
    from chatlens.project.claims import check_claims

    res = {c["id"]: c for c in check_claims(p, str(claims))["results"]}
    assert res["rising"]["verdict"] == "inconclusive" and res["rising"]["estimates"] == []
    assert "fewer than three months with a valid interval" in res["rising"]["reason"]
    # the months it could not use are named, never dropped silently
    assert f"{len(months)} of {len(months)} months left out" in res["rising"]["reason"]
    assert len(res["rising"]["left_out"]) == len(months)
    assert res["october"]["verdict"] == "inconclusive"
    assert "too few audit labels" in res["october"]["reason"]
    assert res["overall"]["verdict"] == "supported"
    p.close()
