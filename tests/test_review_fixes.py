"""Regression tests for problems found in review: stratified audits, damaged archives,
audit messages kept out of training, interrupted runs, calendar-based trends."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from chatlens import Project, UsageError
from chatlens.estimate import ppi_finite_stratified
from chatlens.project.claims import bucket_index
from chatlens.store.labels import NewLabel
from tests.helpers import telegram_export


def test_stratified_ppi_weights_strata_by_population_share() -> None:
    # a big all-negative stratum and ten small all-positive ones; allocation over-samples the
    # small ones, so an unweighted audit would say ~0.2 where the truth is 0.01
    rng = np.random.default_rng(0)
    strata_all = np.array(["big"] * 9900 + [f"s{i}" for i in range(10) for _ in range(10)])
    y_all = (strata_all != "big").astype(float)
    f_all = np.clip(y_all * 0.8 + rng.random(y_all.size) * 0.2, 0, 1)
    idx = np.concatenate([rng.choice(9900, 40, replace=False),
                          *[9900 + 10 * i + rng.choice(10, 2, replace=False) for i in range(10)]])
    e = ppi_finite_stratified(y_all[idx], f_all[idx], strata_all[idx], f_all, strata_all)
    assert e.lower <= y_all.mean() <= e.upper and abs(e.point - 0.01) < 0.01
    # strata no audited message reached (1% of the population): any share there is allowed
    e = ppi_finite_stratified(y_all[idx[:40]], f_all[idx[:40]], strata_all[idx[:40]], f_all,
                              strata_all)
    assert e.unreached == pytest.approx(0.01) and e.upper >= 0.01 and "no audited" in e.notes


def test_stratified_audit_sample_is_estimated_as_stratified(project: Project,
                                                            tmp_path: Path) -> None:
    texts = [f"Стоим на границе {i} часов" for i in range(40)] + \
            [f"Обычное сообщение {i}" for i in range(160)]
    project.ingest([telegram_export(tmp_path / "a.json", texts[:40], chat_id=1),
                    telegram_export(tmp_path / "b.json", texts[40:], chat_id=2)])
    project.code("builtin:exodus-2022")
    s = project.sample("border_crossing", "audit", 30, strata="chat", seed=1)
    items = project.labels().sample_items(s["sample_id"])
    frame = dict(project.store.con.execute("SELECT uid, text FROM messages").fetchall())
    project.labels().add_labels(
        NewLabel(i["uid"], "exodus-2022", "border_crossing",
                 "yes" if "границе" in frame[i["uid"]] else "no", "c",
                 sample_id=s["sample_id"], sample_kind="audit") for i in items)
    (row,) = project.estimate("border_crossing", method="audit")
    assert "stratified" in row.estimate.notes
    assert row.estimate.lower <= 40 / 200 <= row.estimate.upper
    (ppi,) = project.estimate("border_crossing")
    assert "stratified audit" in ppi.estimate.notes


def test_a_damaged_archive_member_fails_alone(project: Project, tmp_path: Path) -> None:
    good = telegram_export(tmp_path / "good.json", ["привет", "пока"])
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("WhatsApp Chat with X.txt", "01/02/2022, 10:00 - A: hello\n" * 50)
    data = bytearray(bad.read_bytes())
    data[200] ^= 0xFF  # corrupt the stored member's bytes: CRC check fails on read
    bad.write_bytes(bytes(data))
    report = project.ingest([bad, good])
    by = {Path(s.path).name: s for s in report.sources}
    assert by["good.json"].status == "complete"
    failed = [s for s in report.sources if s.status == "failed"]
    assert failed and "damaged" in (failed[0].error or "")


def test_corrections_of_audit_messages_never_train(project: Project, tmp_path: Path) -> None:
    texts = [f"Стоим на границе {i}" if i % 2 else f"Погода {i}" for i in range(80)]
    project.ingest([telegram_export(tmp_path / "a.json", texts)])
    project.code("builtin:exodus-2022")
    audit = project.sample("border_crossing", "audit", 40, seed=2)
    uids = [i["uid"] for i in project.labels().sample_items(audit["sample_id"])]
    project.labels().add_labels(  # corrections made on audit messages (sample_kind none)
        NewLabel(u, "exodus-2022", "border_crossing", "yes" if k % 2 else "no", "c",
                 origin="correction") for k, u in enumerate(uids))
    with pytest.raises(UsageError, match="Too few training labels"):
        project.train("border_crossing")


def test_a_killed_run_is_marked_interrupted(tmp_path: Path) -> None:
    with Project.init(tmp_path / "p") as p:
        p.store.start_run("r1", "ingest", "0", {})
    with Project.open(tmp_path / "p") as p:
        (status,), = p.store.con.execute("SELECT status FROM runs WHERE run_id = 'r1'").fetchall()
    assert status == "interrupted"


def test_trend_positions_follow_the_calendar() -> None:
    assert bucket_index("2023-06", "month") - bucket_index("2023-01", "month") == 5
    assert bucket_index("2022-10-03", "week") - bucket_index("2022-09-19", "week") == 2
