"""Saving and loading trained models: JSON + NumPy arrays, no pickle, checksummed.

A model directory holds:

* ``model.json``: format version, measure, labels, feature spec, metrics, top features, data
  hash and counts, library versions, creation time, notes;
* ``weights.npz``: kept hashed columns and their IDF, the linear head and the calibrator
  (``float32`` to stay small; ``np.load(..., allow_pickle=False)``);
* ``MODEL_CARD.md``: the human-readable card;
* ``folds.npz`` (models trained by this version): the winner's cross-validation fold models
  (kept columns, IDF, head and calibrator per fold), which produced the out-of-fold
  probabilities and score new messages the same way for quantification
  (:meth:`~chatlens.train.model.TrainedModel.predict_proba_cross_fitted`);
* ``SHA256SUMS``: sha256 of the files above, verified before anything is parsed;
* ``out_of_fold.parquet`` (models trained from a project's labels): the uid of every training
  message with the model's out-of-fold probabilities for it (a column ``p:LABEL`` per label), so
  that quantification can measure the model's errors on messages it did not learn from. Not needed
  to load or run the model.

Trust model: loading never executes code from the files (no pickle, no joblib, no skops
object graphs) — only JSON and plain numeric arrays are read. The checksums catch corruption
and accidental edits; they are not a signature (whoever can write the directory can rewrite
them), so only load models that your own project trained or that ship inside chatlens.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from chatlens.errors import ModelError
from chatlens.train.features import FeaturePipeline, FeatureSpec
from chatlens.train.linear import Calibrator, LinearHead
from chatlens.train.model import FORMAT_VERSION, FoldModel, TrainedModel

FILES = ("model.json", "weights.npz", "MODEL_CARD.md")
#: Optional, checksummed when present: the fold models.
FOLDS = "folds.npz"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(model: TrainedModel, directory: str | Path) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT_VERSION, "measure": model.measure, "labels": model.labels,
        "positive": model.positive, "classes": model.classes,
        "features": model.pipeline.spec.to_json(), "feature_description": model.features,
        "metrics": model.metrics, "top_features": model.top_features, "data": model.data,
        "versions": model.versions, "created": model.created, "notes": model.notes,
    }
    (d / "model.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n",
                                  encoding="utf-8")
    pipe = model.pipeline
    np.savez_compressed(
        d / "weights.npz", kept=pipe.kept.astype(np.int32), idf=pipe.idf.astype(np.float32),
        W=model.head.W.astype(np.float32), b=model.head.b.astype(np.float64),
        A=model.calibrator.A.astype(np.float64), c=model.calibrator.c.astype(np.float64))
    (d / "MODEL_CARD.md").write_text(model.card_markdown(), encoding="utf-8")
    files = list(FILES)
    if model.folds:
        arrays: dict[str, Any] = {"n_folds": np.array(len(model.folds))}
        for k, f in enumerate(model.folds):
            arrays |= {f"kept{k}": f.pipeline.kept.astype(np.int32),
                       f"idf{k}": f.pipeline.idf.astype(np.float32),
                       f"W{k}": f.head.W.astype(np.float32), f"b{k}": f.head.b.astype(np.float64),
                       f"A{k}": f.calibrator.A.astype(np.float64),
                       f"c{k}": f.calibrator.c.astype(np.float64)}
        np.savez_compressed(d / FOLDS, **arrays)
        files.append(FOLDS)
    elif (d / FOLDS).exists():
        (d / FOLDS).unlink()
    sums = "".join(f"{_sha256(d / f)}  {f}\n" for f in files)
    (d / "SHA256SUMS").write_text(sums, encoding="utf-8")
    return d


OUT_OF_FOLD = "out_of_fold.parquet"


def save_out_of_fold(directory: str | Path, uids: list[str], model: TrainedModel) -> None:
    """Write the training messages' out-of-fold probabilities next to a saved model."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if model.oof_proba is None or len(uids) != len(model.oof_proba):
        raise ValueError("needs the model's out-of-fold probabilities, one row per uid")
    cols = {"uid": pa.array(uids, pa.string())}
    cols.update({f"p:{lab}": pa.array(model.oof_proba[:, j], pa.float64())
                 for j, lab in enumerate(model.labels)})
    pq.write_table(pa.table(cols), Path(directory) / OUT_OF_FOLD)


def load_out_of_fold(directory: str | Path, labels: list[str]) -> dict[str, np.ndarray]:
    """uid -> out-of-fold probabilities (columns in ``labels`` order); empty when the model has
    none (shipped models, models trained outside a project)."""
    import pyarrow.parquet as pq

    path = Path(directory) / OUT_OF_FOLD
    if not path.is_file():
        return {}
    t = pq.read_table(path)
    if t.column_names != ["uid", *(f"p:{lab}" for lab in labels)]:
        raise ModelError(f"{path}: columns {t.column_names} do not match the model's labels "
                         f"{labels}; retrain the model.")
    probs = np.column_stack([t[f"p:{lab}"].to_numpy() for lab in labels]) if t.num_rows else \
        np.zeros((0, len(labels)))
    return dict(zip(t["uid"].to_pylist(), probs, strict=True))


def verify(directory: str | Path) -> None:
    """Raise :class:`ModelError` unless every file matches ``SHA256SUMS``."""
    d = Path(directory)
    sums = d / "SHA256SUMS"
    if not sums.is_file():
        raise ModelError(f"{d}: no saved model here (SHA256SUMS is missing); train one with "
                         "`chatlens train --measure ...` or check the path.")
    expected: dict[str, str] = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            expected[name.strip()] = digest.strip()
    if (d / FOLDS).exists() and FOLDS not in expected:
        raise ModelError(f"{d}: {FOLDS} is not listed in SHA256SUMS: the model was altered "
                         "after it was saved; retrain it or restore it from its source.")
    for f in (*FILES, *([FOLDS] if FOLDS in expected else [])):
        if f not in expected or not (d / f).is_file():
            raise ModelError(f"{d}: the model is incomplete ({f} is missing); retrain it.")
        if _sha256(d / f) != expected[f]:
            raise ModelError(f"{d}: {f} does not match its checksum in SHA256SUMS: the model "
                             "was altered or damaged after it was saved; retrain it or restore "
                             "it from its source. Only load models your own project trained.")


def load_model(directory: str | Path) -> TrainedModel:
    d = Path(directory)
    verify(d)
    try:
        meta = json.loads((d / "model.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ModelError(f"{d}: model format {meta.get('format')!r} is not supported by "
                             f"this chatlens (expects {FORMAT_VERSION}); retrain the model.")
        with np.load(d / "weights.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("kept", "idf", "W", "b", "A", "c")}
        pipe = FeaturePipeline(FeatureSpec.from_json(meta["features"]))
        pipe.set_state(arrays["kept"], arrays["idf"])
        model = TrainedModel(
            measure=meta["measure"], labels=list(meta["labels"]), positive=meta["positive"],
            classes=list(meta["classes"]), pipeline=pipe,
            head=LinearHead(W=arrays["W"].astype(np.float64), b=arrays["b"]),
            calibrator=Calibrator(A=arrays["A"], c=arrays["c"]), metrics=meta["metrics"],
            top_features={k: [(str(n), float(w)) for n, w in v]
                          for k, v in meta["top_features"].items()},
            data=meta["data"], versions=meta["versions"], created=meta["created"],
            notes=meta["notes"])
        if (d / FOLDS).is_file():
            model.folds = _load_folds(d / FOLDS, pipe.spec)
    except ModelError:
        raise
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise ModelError(f"{d}: the saved model cannot be read ({e}); retrain it.") from e
    if model.head.W.shape[0] != pipe.n_features:
        raise ModelError(f"{d}: weights do not fit the feature spec; retrain the model.")
    if any(f.head.W.shape[0] != f.pipeline.n_features for f in model.folds):
        raise ModelError(f"{d}: fold weights do not fit the feature spec; retrain the model.")
    return model


def _load_folds(path: Path, spec: FeatureSpec) -> list[FoldModel]:
    out = []
    with np.load(path, allow_pickle=False) as z:
        for k in range(int(z["n_folds"])):
            fp = FeaturePipeline(spec)
            fp.set_state(z[f"kept{k}"], z[f"idf{k}"])
            out.append(FoldModel(fp, LinearHead(W=z[f"W{k}"].astype(np.float64), b=z[f"b{k}"]),
                                 Calibrator(A=z[f"A{k}"], c=z[f"c{k}"])))
    return out
