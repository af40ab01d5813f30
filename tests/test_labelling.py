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
from tests.helpers import BORDER_TEXTS, ingest_border_chats

TEXTS = BORDER_TEXTS


@pytest.fixture
def coded(project: Project, tmp_path: Path) -> Project:
    return ingest_border_chats(project, tmp_path)


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
    loose = coded.import_labels(f)  # no --sample: the file's "audit" is ignored
    assert loose.stored == 10
    assert coded.labels().labels_arrow(sample_kind="audit").num_rows == 0
    bound = coded.import_labels(f, sample_id=audit["sample_id"])
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
    report = coded.import_labels(f, sample_id=audit["sample_id"])
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
    coded.import_labels(write_csv(tmp_path / "two.csv", rows), sample_id=audit["sample_id"])
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


def test_sample_exports_as_a_coding_sheet_that_imports_back(coded: Project,
                                                              tmp_path: Path) -> None:
    audit = coded.sample("border_crossing", "audit", 8, seed=11)
    sid = audit["sample_id"]
    uids = [i["uid"] for i in coded.labels().sample_items(sid)]
    sheet = tmp_path / "items.csv"
    assert coded.export_labels(sheet, sample_id=sid) == 8  # nothing labelled yet: 8 rows
    with sheet.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["uid", "measure", "text", "context_before", "context_after",
                             "choices", "value", "annotator", "comment"]
    assert [r["uid"] for r in rows] == uids
    assert all(r["measure"] == "border_crossing" and r["value"] == "" for r in rows)
    assert rows[0]["choices"] == "yes | no"
    # context is plain text, one message per line, never a Python list repr
    with_ctx = [r for r in rows if r["context_before"]]
    assert with_ctx and not any(r["context_before"].startswith("[") for r in rows)
    assert any("\n" in r["context_before"] or "\n" in r["context_after"] for r in rows)
    assert all(r["context_before"].split("\n")[0] in TEXTS for r in with_ctx)
    # a coder fills in five values; the empty rows are skipped and counted
    for r in rows[:5]:
        r["value"] = "yes" if "границе" in r["text"] else "no"
    rows[0]["comment"] = "clear case"
    with sheet.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    report = coded.import_labels(sheet, "coder1", sample_id=sid)
    assert report.read == 8 and report.stored == 5
    assert len(report.problems) == 3
    assert all("not labelled yet" in p for p in report.problems)
    assert coded.labels().samples()[0]["labelled"] == 5
    # exported again, the sheet shows the labels made so far
    again = tmp_path / "again.jsonl"
    assert coded.export_labels(again, sample_id=sid) == 8
    lines = [json.loads(x) for x in again.read_text(encoding="utf-8").splitlines()]
    assert [x["value"] for x in lines][:5] == [r["value"] for r in rows[:5]]
    assert lines[0]["annotator"] == "coder1" and lines[0]["comment"] == "clear case"
    assert isinstance(lines[0]["context_after"], str)


def test_second_coder_gets_a_blind_sheet_and_cannot_be_booked_to_the_first(
        coded: Project, tmp_path: Path) -> None:
    sid = coded.sample("border_crossing", "audit", 6, seed=5)["sample_id"]

    def fill(path: Path, value: str) -> None:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            r["value"] = value
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    first = tmp_path / "a.csv"
    coded.export_labels(first, sample_id=sid, annotator="alice")
    fill(first, "yes")
    assert coded.import_labels(first, "alice", sample_id=sid).stored == 6
    # bob's sheet is blind: alice's values are not in it, and every row names bob
    second = tmp_path / "b.csv"
    assert coded.export_labels(second, sample_id=sid, annotator="bob") == 6
    with second.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["value"] for r in rows} == {""} and {r["annotator"] for r in rows} == {"bob"}
    fill(second, "no")
    assert coded.import_labels(second, "bob", sample_id=sid).stored == 6
    # alice's filled sheet imported under bob's name is refused row by row, not re-booked
    refused = coded.import_labels(first, "bob", sample_id=sid)
    assert refused.stored == 0 and len(refused.problems) == 6
    assert all("names annotator 'alice', not 'bob'" in p for p in refused.problems)
    # without --annotator, the rows' own column decides (nothing new: alice's labels exist)
    assert coded.import_labels(first, sample_id=sid).stored == 0
    by = {(r["annotator"], r["value"]) for r in coded.labels().labels_arrow().to_pylist()
          if r["sample_id"] == sid}
    assert by == {("alice", "yes"), ("bob", "no")}
    agreement = coded.agreement("border_crossing")
    assert agreement["disagreements"]


def test_label_studio_tasks_carry_context_as_plain_text(coded: Project, tmp_path: Path) -> None:
    audit = coded.sample("border_crossing", "audit", 5, seed=4)
    coded.export_labels(tmp_path / "tasks.json", "labelstudio-tasks", sample_id=audit["sample_id"])
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    for t in tasks:
        for key in ("context_before", "context_after"):
            value = t["data"][key]
            assert isinstance(value, str) and not value.startswith("['")
            assert all(line in TEXTS for line in value.split("\n") if line)
    assert any("\n" in t["data"]["context_before"] for t in tasks)


def test_cli_label_import_counts_rows_not_labelled_yet(coded: Project, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from chatlens.cli import cli

    audit = coded.sample("border_crossing", "audit", 4, seed=9)
    root = coded.root
    coded.close()
    sheet = tmp_path / "items.csv"
    run = CliRunner().invoke
    res = run(cli, ["label", "export", "--sample", audit["sample_id"], "-o", str(sheet),
                    "--project", str(root)])
    assert res.exit_code == 0 and "wrote 4 rows" in res.output
    with sheet.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows[0]["value"] = "no"
    write_csv(sheet, rows)
    res = run(cli, ["label", "import", str(sheet), "--sample", audit["sample_id"],
                    "--project", str(root)])
    assert res.exit_code == 0, res.output
    assert "stored 1" in res.output and "3 without a value: not labelled yet" in res.output
    assert "skipped:" not in res.output
