"""chatlens.train: training, calibration, save/load, cards, the model scorer, the shipped model."""

from __future__ import annotations

import csv
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from chatlens.code.model import ModelScorer
from chatlens.code.scorers import Batch
from chatlens.train import (
    ModelError,
    TrainedModel,
    enrich_texts,
    shipped_model,
    train_model,
)
from chatlens.train.card import SECTIONS
from chatlens.train.linear import ece

HOSTILE = ["ты идиот", "какая мерзость", "ненавижу вас всех", "тупые уроды", "вы все сволочи",
           "заткнись дебил", "мрази конченые"]
NEUTRAL = ["хорошая погода", "пойдём в кино", "спасибо за помощь", "завтра встреча в десять",
           "купил хлеб и молоко", "где граница", "очередь на переходе"]
FILLER = ["сегодня", "вчера", "опять", "ну", "вот", "кстати", "утром", "в чате", "на границе"]


def synthetic(n: int, seed: int, noise: float = 0.1) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        hostile = rng.random() < 0.4
        src = HOSTILE if hostile else NEUTRAL
        if rng.random() < noise:  # label noise keeps probabilities away from 0/1
            hostile = not hostile
        texts.append(" ".join([rng.choice(FILLER), rng.choice(src), rng.choice(FILLER)]))
        labels.append("yes" if hostile else "no")
    return texts, labels


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    texts, labels = synthetic(400, seed=1)
    return train_model(texts, labels, measure="hostility", labels_order=["yes", "no"],
                       origins=["synthetic"] * len(texts),
                       notes={"attribution": "Synthetic test data.", "limits": ["Toy data."]})


def test_beats_chance_by_a_wide_margin(model: TrainedModel) -> None:
    # 10% label noise caps accuracy near 0.9; chance (majority) is ~0.6
    assert model.metrics["accuracy"] > 0.85
    assert model.metrics["macro_f1"] > 0.8
    assert model.metrics["chosen"] in model.metrics["candidates"]
    texts, labels = synthetic(300, seed=2, noise=0.0)
    p = model.predict_proba(texts)
    pred = [model.labels[i] for i in p.argmax(axis=1)]
    assert np.mean([a == b for a, b in zip(pred, labels, strict=True)]) > 0.95


def test_calibration_error_small_on_held_out(model: TrainedModel) -> None:
    texts, labels = synthetic(600, seed=3)
    p = model.predict_proba(texts)
    y = np.array([1 if lab == "yes" else 0 for lab in labels])
    cols = np.column_stack([p[:, 1], p[:, 0]])  # [P(no), P(yes)]
    assert ece(cols, y) < 0.08
    assert model.metrics["ece"] < 0.08


def test_categorical_and_label_order() -> None:
    rng = random.Random(0)
    words = {"pos": ["отлично", "супер", "люблю"], "neg": ["ужас", "плохо", "кошмар"],
             "neu": ["стол", "дом", "улица"]}
    texts, labels = [], []
    for _ in range(240):
        lab = rng.choice(list(words))
        texts.append(f"{rng.choice(FILLER)} {rng.choice(words[lab])} {rng.choice(FILLER)}")
        labels.append(lab)
    m = train_model(texts, labels, measure="sent", labels_order=["neu", "neg", "pos", "other"],
                    candidates=("linsvm-calibrated",), cv=3)
    p = m.predict_proba(["это просто ужас", "люблю это"])
    assert p.shape == (2, 4)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0].argmax() == 1 and p[1].argmax() == 2 and p[:, 3].max() < 0.01
    assert m.metrics["macro_f1"] > 0.6  # "other" never occurs, so its F1 is 0


def test_save_load_round_trip_identical(model: TrainedModel, tmp_path: Path) -> None:
    model.save(tmp_path / "m")
    loaded = TrainedModel.load(tmp_path / "m")
    texts, _ = synthetic(50, seed=4)
    assert np.array_equal(model.predict_proba(texts), loaded.predict_proba(texts))
    assert loaded.metrics == model.metrics and loaded.data == model.data
    assert loaded.pipeline.spec == model.pipeline.spec


def test_checksum_mismatch_raises_chatlens_error(model: TrainedModel, tmp_path: Path) -> None:
    d = tmp_path / "m"
    model.save(d)
    raw = (d / "weights.npz").read_bytes()
    (d / "weights.npz").write_bytes(raw[:-10] + bytes(10))
    with pytest.raises(ModelError, match="checksum"):
        TrainedModel.load(d)
    with pytest.raises(ModelError, match="no saved model"):
        TrainedModel.load(tmp_path / "nothing")


def test_model_card_has_required_sections(model: TrainedModel) -> None:
    card = model.card_markdown()
    for section in SECTIONS:
        assert f"## {section}" in card, section
    assert "synthetic / yes" in card and "Synthetic test data." in card and "Toy data." in card
    assert model.data["hash"] in card
    assert "ECE" in card or "calibration error" in card


def test_data_hash_ignores_order(model: TrainedModel) -> None:
    texts, labels = synthetic(400, seed=1)
    pairs = list(zip(texts, labels, strict=True))
    random.Random(9).shuffle(pairs)
    from chatlens.train import data_hash
    assert data_hash([t for t, _ in pairs], [lab for _, lab in pairs]) == model.data["hash"]


def test_model_scorer_on_batch(model: TrainedModel) -> None:
    texts = ["ты идиот сегодня", "купил хлеб и молоко вчера", ""]
    norms, lemmas = enrich_texts(texts)
    batch = Batch(text=texts, norm=norms, lang=["ru"] * 3, lemmas=lemmas)
    scorer = ModelScorer("model0", model, threshold=0.5)
    assert scorer.id == "model0" and scorer.label == "yes"
    hits = scorer.score(batch)
    assert hits[0] is not None and hits[0].label == "yes" and hits[0].score > 0.5
    assert hits[1] is None
    probs = scorer.positive_proba(batch)
    assert probs[0] == pytest.approx(hits[0].score)
    assert probs[1] < 0.5
    clone = pickle.loads(pickle.dumps(scorer))
    assert clone.positive_proba(batch) == probs


def test_fold_models_reproduce_the_out_of_fold_probabilities(model: TrainedModel) -> None:
    """The kept fold models are the functions that made the out-of-fold probabilities, so the
    cross-fitted scorer gives new messages scores distributed like them (issue 12 item 1)."""
    texts, _ = synthetic(400, seed=1)
    assert model.oof_fold is not None and model.oof_proba is not None
    every = model.predict_proba_folds(texts)
    assert every.shape == (len(model.folds), 400, 2)
    own = every[model.oof_fold, np.arange(400)]
    assert np.abs(own - model.oof_proba).max() < 1e-5  # fold weights rounded to float32
    new, _ = synthetic(60, seed=7)
    keys = [f"uid{i}" for i in range(60)]
    p = model.predict_proba_cross_fitted(new, keys)
    q = model.predict_proba_cross_fitted(new[::-1], keys[::-1])[::-1]
    assert np.array_equal(p, q)  # each text's fold follows its key, not its position
    from chatlens.train.model import fold_of
    folds = model.predict_proba_folds(new)
    assert np.array_equal(p, folds[[fold_of(k, len(model.folds)) for k in keys], np.arange(60)])


def test_fold_models_survive_save_and_load(model: TrainedModel, tmp_path: Path) -> None:
    model.save(tmp_path / "m")
    loaded = TrainedModel.load(tmp_path / "m")
    texts, _ = synthetic(50, seed=4)
    keys = [str(i) for i in range(50)]
    assert len(loaded.folds) == len(model.folds)
    assert np.array_equal(model.predict_proba_cross_fitted(texts, keys),
                          loaded.predict_proba_cross_fitted(texts, keys))
    raw = (tmp_path / "m" / "folds.npz").read_bytes()
    (tmp_path / "m" / "folds.npz").write_bytes(raw[:-10] + bytes(10))
    with pytest.raises(ModelError, match="checksum"):
        TrainedModel.load(tmp_path / "m")


def test_out_of_fold_scorer_answers_new_messages_with_the_fold_models(
        model: TrainedModel) -> None:
    import pyarrow as pa

    from chatlens.code.model import OutOfFoldScorer
    texts = ["ты идиот сегодня", "купил хлеб и молоко вчера", "где граница"]
    norms, lemmas = enrich_texts(texts)
    batch = Batch(text=texts, norm=norms, lang=["ru"] * 3, lemmas=lemmas,
                  uids=pa.array(["a", "b", "c"]))
    scorer = OutOfFoldScorer(ModelScorer("model0", model), {"a": np.array([0.25, 0.75])})
    assert scorer.cross_fitted
    p = scorer.proba(batch)
    assert np.array_equal(p[0], [0.25, 0.75])
    assert np.array_equal(p[1:], model.predict_proba_cross_fitted(texts[1:], ["b", "c"]))


def test_shipped_hostility_model_scores_sensibly() -> None:
    m = shipped_model("hostility-ru")
    assert m.positive == "yes" and m.labels == ["yes", "no"]
    toxic = ["Ты тупой дебил, заткнись уже", "Какие же вы мрази конченые, ненавижу",
             "Иди на х*й, урод"]
    neutral = ["Спасибо, очень помогли с документами", "Во сколько завтра открывается граница?",
               "Сегодня хорошая погода, гуляли в парке"]
    p = m.predict_proba(toxic + neutral)[:, 0]
    assert min(p[:3]) > max(p[3:])
    assert p[:3].mean() > 0.5 and p[3:].mean() < 0.2
    d = Path(__file__).resolve().parents[1] / "chatlens" / "models" / "hostility-ru"
    assert sum(f.stat().st_size for f in d.iterdir()) < 5_000_000
    assert "CC BY 4.0" in (d / "MODEL_CARD.md").read_text(encoding="utf-8")


@pytest.mark.shared_data
def test_rusentiment_slice_beats_majority(shared_data: Path) -> None:
    path = shared_data / "labeled" / "ru_rusentiment" / "rusentiment_random_posts.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:1500]
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    train = (texts[:1100], labels[:1100])
    test = (texts[1100:], labels[1100:])
    order = sorted(set(labels))
    m = train_model(*train, measure="sentiment", labels_order=order,
                    candidates=("linsvm-calibrated",), cv=3)
    pred = [order[i] for i in m.predict_proba(test[0]).argmax(axis=1)]
    acc = np.mean([a == b for a, b in zip(pred, test[1], strict=True)])
    majority = max(test[1].count(x) for x in order) / len(test[1])
    assert acc > majority + 0.03
