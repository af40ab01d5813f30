"""Samples and labels on a real coded project: audit and training kept apart, imports checked."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatlens import Project
from chatlens.store.labels import LabelStore, NewLabel
from tests.helpers import telegram_export

TEXTS = [f"Стоим на границе {i} часов" if i % 3 == 0 else f"Обычное сообщение номер {i}"
         for i in range(120)]


@pytest.fixture
def coded(project: Project, tmp_path: Path) -> Project:
    project.ingest([telegram_export(tmp_path / "a.json", TEXTS[:60], chat_id=1),
                    telegram_export(tmp_path / "b.json", TEXTS[60:], chat_id=2)])
    project.code("builtin:exodus-2022")
    return project


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_audit_sample_is_recorded_reproducible_and_stratified(coded: Project) -> None:
    a = coded.sample("border_crossing", "audit", 20, strata="chat", seed=7)
    b = coded.sample("border_crossing", "audit", 20, strata="chat", seed=7)
    items_a = [i["uid"] for i in coded.labels().sample_items(a["sample_id"])]
    items_b = [i["uid"] for i in coded.labels().sample_items(b["sample_id"])]
    assert items_a == items_b and len(set(items_a)) == 20
    assert a["frame_size"] == 120 and sorted(a["design"]["sample_sizes"].values()) == [10, 10]
    assert a["design"]["method"] == "stratified-srswor"


def test_training_sample_never_takes_audit_items(coded: Project) -> None:
    audit = coded.sample("border_crossing", "audit", 30, seed=1)
    train = coded.sample("border_crossing", "train", 40, seed=2)
    a = {i["uid"] for i in coded.labels().sample_items(audit["sample_id"])}
    t = {i["uid"] for i in coded.labels().sample_items(train["sample_id"])}
    assert len(t) == 40 and not a & t and train["design"]["excluded"] == 30


def test_only_the_sample_decides_what_counts_as_audit(coded: Project, tmp_path: Path) -> None:
    audit = coded.sample("border_crossing", "audit", 10, seed=3)
    uids = [i["uid"] for i in coded.labels().sample_items(audit["sample_id"])]
    rows = [{"uid": u, "measure": "border_crossing", "value": "yes", "annotator": "ann",
             "sample_kind": "audit"} for u in uids]
    f = write_csv(tmp_path / "l.csv", rows)
    loose = coded.import_labels(f, "x")  # no --sample: the file's "audit" is ignored
    assert loose.stored == 10
    assert coded.labels().labels_arrow(sample_kind="audit").num_rows == 0
    bound = coded.import_labels(f, "x", sample_id=audit["sample_id"])
    assert bound.stored == 10
    assert coded.labels().labels_arrow(sample_kind="audit").num_rows == 10


def test_bad_rows_are_reported_not_stored(coded: Project, tmp_path: Path) -> None:
    audit = coded.sample("border_crossing", "audit", 5, seed=4)
    uid = coded.labels().sample_items(audit["sample_id"])[0]["uid"]
    other = coded.store.con.execute("SELECT uid FROM messages WHERE uid <> ? LIMIT 1",
                                    [uid]).fetchall()[0][0]
    f = write_csv(tmp_path / "bad.csv", [
        {"uid": uid, "measure": "border_crossing", "value": "maybe", "annotator": "a"},
        {"uid": "missing", "measure": "border_crossing", "value": "yes", "annotator": "a"},
        {"uid": uid, "measure": "no_such_measure", "value": "yes", "annotator": "a"},
        {"uid": other, "measure": "border_crossing", "value": "yes", "annotator": "a"},
        {"uid": uid, "measure": "border_crossing", "value": "no", "annotator": "a"},
    ])
    report = coded.import_labels(f, "x", sample_id=audit["sample_id"])
    assert report.read == 5 and report.stored == 1 and len(report.problems) == 4
    joined = "\n".join(report.problems)
    for fragment in ("'maybe' is not one of", "no message with this uid", "no measure",
                     f"not an item of sample {audit['sample_id']}"):
        assert fragment in joined


def test_agreement_and_exports(coded: Project, tmp_path: Path) -> None:
    audit = coded.sample("border_crossing", "audit", 6, seed=5)
    uids = [i["uid"] for i in coded.labels().sample_items(audit["sample_id"])]
    a = ["yes", "yes", "no", "no", "yes", "no"]
    b = ["yes", "no", "no", "no", "yes", "no"]
    rows = [{"uid": u, "measure": "border_crossing", "value": v, "annotator": who}
            for who, vals in (("ann_a", a), ("ann_b", b)) for u, v in zip(uids, vals, strict=True)]
    coded.import_labels(write_csv(tmp_path / "two.csv", rows), "x", sample_id=audit["sample_id"])
    result = coded.agreement("border_crossing")
    rep = result["report"]["border_crossing"]
    assert rep["n_coders"] == 2 and rep["pairable_units"] == 6
    assert rep["kappa"] == pytest.approx(2 / 3)  # po 5/6, pe 1/2
    assert [d["uid"] for d in result["disagreements"]] == [uids[1]]
    assert coded.export_labels(tmp_path / "out.jsonl") == 12
    n = coded.export_labels(tmp_path / "tasks.json", "labelstudio-tasks",
                            sample_id=audit["sample_id"])
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    assert n == 6 and {t["data"]["uid"] for t in tasks} == set(uids)
    assert "<Choices" in (tmp_path / "tasks.config.xml").read_text(encoding="utf-8")


def test_labels_can_be_saved_while_another_process_writes_the_store(
        coded: Project, tmp_path: Path) -> None:
    root = coded.root
    coded.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from chatlens import Project; "
         "p = Project.open(sys.argv[1]); print('ok', flush=True); time.sleep(30)", str(root)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        labels = LabelStore(root)
        labels.add_labels([NewLabel("u1", "exodus-2022", "border_crossing", "yes", "ann")])
        assert labels.labels_arrow().num_rows == 1
        labels.close()
    finally:
        holder.kill()
        holder.wait()
