"""Training from project labels, model scorers in codebooks, probabilities kept for PPI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatlens import Project, UsageError
from chatlens.codebook import load_codebook
from chatlens.demo import run_demo
from chatlens.store.labels import NewLabel
from chatlens.store.stages import population_frame
from tests.helpers import telegram_export


def _label_sample(p: Project, sample_id: str, topic_of: dict[str, str], measure: str) -> None:
    frame = {r["uid"]: r["text"] for r in population_frame(p.store, "exodus-2022",
                                                            measure).to_pylist()}
    kind = next(s["kind"] for s in p.labels().samples() if s["sample_id"] == sample_id)
    p.labels().add_labels(
        NewLabel(i["uid"], "exodus-2022", measure,
                 "yes" if topic_of.get(frame[i["uid"]]) == measure else "no", "coder",
                 sample_id=sample_id, sample_kind=kind)
        for i in p.labels().sample_items(sample_id))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict[str, str]]:
    root = tmp_path_factory.mktemp("t") / "p"
    run_demo(root, n_messages=400, seed=5)
    truth = json.loads((root / "demo-data" / "truth.json").read_text(encoding="utf-8"))
    topic_of = {t["text"]: t["topic"] for t in truth}
    p = Project.open(root)
    s = p.sample("border_crossing", "train", 200, seed=9)
    _label_sample(p, s["sample_id"], topic_of, "border_crossing")
    return p, topic_of


def test_train_uses_training_labels_and_writes_a_card(trained: tuple[Project, dict]) -> None:
    p, _ = trained
    result = p.train("border_crossing", cv=3)
    assert result["model"] == "border_crossing-v1"
    folder = Path(result["path"])
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "F1" in card and result["metrics"]["macro_f1"] > 0.8
    assert {m["model"] for m in p.models()} >= {"border_crossing-v1", "hostility-ru"}


def test_audit_labels_never_train(tmp_path: Path) -> None:
    d = run_demo(tmp_path / "p", n_messages=150, seed=2)  # labels only audit samples
    with Project.open(d["project"]) as p, pytest.raises(UsageError, match="audit labels"):
        p.train("border_crossing")


def test_model_scorer_codes_probabilities_and_estimates_cover_truth(
        trained: tuple[Project, dict], tmp_path: Path) -> None:
    p, topic_of = trained
    if not (p.root / "models" / "border_crossing-v1").exists():
        p.train("border_crossing", cv=3)
    from importlib import resources

    from chatlens.codebook import BUILTIN

    text = resources.files(BUILTIN).joinpath("exodus-2022.yaml").read_text("utf-8")
    text = text.replace('version: "1.0.0"', 'version: "1.0.1"').replace(
        "        negation: {window: 2}\n\n  - id: mobilization",
        "        negation: {window: 2}\n      - {type: model, model: border_crossing-v1}\n"
        "    combine: any\n\n  - id: mobilization")
    (tmp_path / "cb.yaml").write_text(text, encoding="utf-8")
    assert load_codebook(tmp_path / "cb.yaml").measure("border_crossing").scorers[1].type == \
        "model"
    report = p.code(tmp_path / "cb.yaml")
    assert report.recoded_measures == ["border_crossing"]
    scores = [r[0] for r in p.store.con.execute(
        "SELECT score FROM codes WHERE measure = 'border_crossing' AND in_population"
    ).fetchall()]
    assert any(0.0 < s < 0.5 for s in scores)  # P(positive) kept below the threshold
    frame = population_frame(p.store, "exodus-2022", "border_crossing").to_pylist()
    truth = sum(topic_of.get(r["text"]) == "border_crossing" for r in frame) / len(frame)
    audit = p.sample("border_crossing", "audit", 150, seed=21)
    _label_sample(p, audit["sample_id"], topic_of, "border_crossing")
    (row,) = p.estimate("border_crossing")
    assert row.estimate.method == "ppi" and row.estimate.lower <= truth <= row.estimate.upper

    # quantify measures the model's errors on its training labels out of fold
    from chatlens.project.train import cross_fitted_codes
    from chatlens.train.storage import load_out_of_fold

    labels = {r["uid"]: r["value"] for r in p.labels().labels_arrow(
        "exodus-2022", "border_crossing").to_pylist() if r["sample_kind"] == "train"}
    oof = load_out_of_fold(p.root / "models" / "border_crossing-v1", ["yes", "no"])
    assert set(oof) == set(labels)
    codes, info = cross_fitted_codes(p, "border_crossing", sorted(labels))
    stored = {r["uid"]: r["score"] for r in p.store.query_arrow(
        "SELECT uid, score FROM codes WHERE measure = 'border_crossing' AND in_population"
    ).to_pylist()}
    assert info["recoded"] == codes.num_rows == len([u for u in labels if u in stored])
    for r in codes.to_pylist():  # a rule hit scores 1.0; otherwise the out-of-fold P(yes)
        assert r["score"] in (1.0, pytest.approx(float(oof[r["uid"]][0])))

    def loss(scores: dict[str, float]) -> float:
        return sum((scores[u] - (labels[u] == "yes")) ** 2 for u in scores) / len(scores)

    assert loss({r["uid"]: r["score"] for r in codes.to_pylist()}) > \
        loss({u: stored[u] for u in labels if u in stored})  # in-sample scores flatter
    # the project's own training labels never feed quantification (not a random sample, and
    # the model learned from them): only a declared reference set does
    with pytest.raises(UsageError, match="reference set"):
        p.estimate("border_crossing", method="quantify")


def test_cross_fitted_codes_score_every_message_out_of_fold(
        trained: tuple[Project, dict], tmp_path: Path) -> None:
    """What quantification should score reference and target with (issue 12 item 1): training
    messages their out-of-fold probability, all others the fold model their uid hashes to."""
    p, _ = trained
    if not (p.root / "models" / "border_crossing-v1").exists():
        p.train("border_crossing", cv=3)
    from importlib import resources

    from chatlens.codebook import BUILTIN
    from chatlens.project.train import cross_fitted_codes
    from chatlens.train import load_model
    from chatlens.train.storage import load_out_of_fold

    text = resources.files(BUILTIN).joinpath("exodus-2022.yaml").read_text("utf-8")
    text = text.replace('version: "1.0.0"', 'version: "1.0.2"').replace(
        "        negation: {window: 2}\n\n  - id: mobilization",
        "        negation: {window: 2}\n      - {type: model, model: border_crossing-v1}\n"
        "    combine: any\n\n  - id: mobilization")
    (tmp_path / "cb.yaml").write_text(text, encoding="utf-8")
    p.code(tmp_path / "cb.yaml")
    frame = population_frame(p.store, "exodus-2022", "border_crossing").to_pylist()
    uids = [r["uid"] for r in frame]
    codes, info = cross_fitted_codes(p, "border_crossing", uids)
    assert info["cross_fitted"] and info["models"] == ["border_crossing-v1"]
    assert codes.num_rows == info["recoded"] == len(uids)
    folder = p.root / "models" / "border_crossing-v1"
    model = load_model(folder)
    oof = load_out_of_fold(folder, model.labels)
    text_of = {r["uid"]: r["text"] for r in frame}
    others = [u for u in uids if u not in oof]
    assert others
    cross = dict(zip(others, model.predict_proba_cross_fitted(
        [text_of[u] for u in others], others)[:, model.labels.index("yes")], strict=True))
    for r in codes.to_pylist():  # a rule hit scores 1.0 (combine: any)
        want = oof[r["uid"]][0] if r["uid"] in oof else cross[r["uid"]]
        assert r["score"] in (1.0, pytest.approx(float(want), abs=1e-6))


def test_shipped_model_can_score_a_measure(tmp_path: Path) -> None:
    from chatlens.code.compiled import compile_codebook

    text = """
name: t
version: "1"
languages: [ru]
measures:
  - id: hostility
    question: Is the message hostile?
    labels: [yes, no]
    instructions: Hostile or abusive language.
    scorers:
      - {type: model, model: hostility-ru, threshold: 0.3}
"""
    (tmp_path / "h.yaml").write_text(text, encoding="utf-8")
    compiled = compile_codebook(load_codebook(tmp_path / "h.yaml"))
    assert compiled.measures[0].scorers[0].id == "model0"


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


def test_a_rare_measure_gets_a_training_sample_it_can_learn_from(project: Project,
                                                                 tmp_path: Path) -> None:
    """12 of 2,000 messages (0.6 %) are about the border: a proportional training sample of 100
    would hold about one; the sample enriches on the rule's hits, warns with the expected
    count, and the model trains. Too few positives make `train` say what to do."""
    from click.testing import CliRunner

    from chatlens.cli import cli

    texts = [f"Стоим на границе в Ларсе уже {i} часов" if i % 166 == 0 and i < 1992
             else f"Обычный разговор про погоду и работу номер {i}" for i in range(2000)]
    project.ingest([telegram_export(tmp_path / "rare.json", texts)])
    project.code("builtin:exodus-2022")
    frame = {r["uid"]: r["text"] for r in population_frame(project.store, "exodus-2022",
                                                            "border_crossing").to_pylist()}
    hits = sum("границе" in t for t in frame.values())
    assert 0 < hits / len(frame) < 0.01
    root = project.root
    project.close()
    res = CliRunner().invoke(cli, ["sample", "--measure", "border_crossing", "--kind", "train",
                                   "--n", "100", "--seed", "3", "--project", str(root)])
    assert res.exit_code == 0, res.output
    assert f"would hold about {100 * hits / len(frame):.1f} of them" in " ".join(
        res.output.split())
    with Project.open(root) as p:
        (s,) = p.labels().samples(kind="train")
        assert s["design"]["method"] == "score-enriched"
        items = p.labels().sample_items(s["sample_id"])
        few = [i for i in items if "границе" in frame[i["uid"]]][:2]
        rest = [i for i in items if "границе" not in frame[i["uid"]]]
        # two positives only: train refuses and names the way on
        p.labels().add_labels(
            NewLabel(i["uid"], "exodus-2022", "border_crossing",
                     "yes" if "границе" in frame[i["uid"]] else "no", "coder",
                     sample_id=s["sample_id"], sample_kind="train") for i in few + rest)
        with pytest.raises(UsageError, match="chatlens search WORDS") as exc:
            p.train("border_crossing")
        assert "--merge" not in str(exc.value)
        _label_sample(p, s["sample_id"], {t: "border_crossing" for t in frame.values()
                                          if "границе" in t}, "border_crossing")
        assert p.train("border_crossing")["model"] == "border_crossing-v1"
