"""Per-measure models: features, training with cross-validation, calibration, cards, scorers.

A pure library (no project database, no CLI)::

    from chatlens.train import train_model, TrainedModel
    m = train_model(texts, labels, measure="hostility", labels_order=["hostile", "other"])
    m.save("models/hostility"); m = TrainedModel.load("models/hostility")

A trained model scores a codebook measure through :class:`chatlens.code.model.ModelScorer`.

See ``docs/models.md`` for how training works, the card fields and the trust model.
"""

from __future__ import annotations

from pathlib import Path

from chatlens.errors import ModelError
from chatlens.train.card import card_markdown
from chatlens.train.features import DENSE_SPEC, FeaturePipeline, FeatureSpec, enrich_texts
from chatlens.train.linear import CANDIDATES
from chatlens.train.model import TrainedModel, data_hash, train_model
from chatlens.train.storage import load_model, save_model, verify

#: Models that ship inside the package (``chatlens/models/<name>/``).
SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "models"


def shipped_model(name: str) -> TrainedModel:
    """Load a model that ships with chatlens, e.g. ``shipped_model("hostility-ru")``."""
    d = SHIPPED_MODELS / name
    if not (d / "SHA256SUMS").is_file():
        names = sorted(p.name for p in SHIPPED_MODELS.iterdir() if (p / "SHA256SUMS").is_file())
        raise ModelError(f"no shipped model {name!r}; shipped models: {', '.join(names)}")
    return load_model(d)


__all__ = [
    "CANDIDATES",
    "DENSE_SPEC",
    "SHIPPED_MODELS",
    "FeaturePipeline",
    "FeatureSpec",
    "ModelError",
    "TrainedModel",
    "card_markdown",
    "data_hash",
    "enrich_texts",
    "load_model",
    "save_model",
    "shipped_model",
    "train_model",
    "verify",
]
