"""Train a measure's model from the project's labels and keep it with its card.

Audit labels never train a model: prediction-powered estimates are only valid when the model is
independent of the audit sample. Models learn from training samples, corrections and imported
labels (several annotators: the majority; ties are left out).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatlens.errors import UsageError
from chatlens.project.labels import consensus
from chatlens.store.stages import texts_and_lemmas

if TYPE_CHECKING:
    import pyarrow as pa

    from chatlens.project import Project

MIN_PER_LABEL = 5


def train_measure(project: Project, measure: str, cv: int = 5, seed: int = 0,
                  merge: dict[str, str] | None = None,
                  leave_out: list[str] | None = None, dense: bool = False) -> dict[str, Any]:
    """Train ``measure``'s model. Every label the model is to predict needs
    ``MIN_PER_LABEL`` training examples; a rarer one can be merged into another (``merge``:
    rare -> into; the model then predicts ``into`` for both) or left out (``leave_out``: its
    messages are not used, and the model never predicts it). ``dense``: add the sentence
    embedding to the features (:data:`chatlens.train.features.DENSE_SPEC`)."""
    from chatlens.train import DENSE_SPEC, FeatureSpec, save_model, train_model
    from chatlens.train.storage import save_out_of_fold

    cb = project.codebook()[0]
    m = cb.measure(measure)
    audit_uids = project.labels().sampled_uids(cb.name, measure, "audit")
    rows = [r for r in project.labels().labels_arrow(cb.name, measure).to_pylist()
            if r["sample_kind"] != "audit" and r["value"] is not None
            and r["uid"] not in audit_uids]  # not even corrections of audit messages
    chosen, ties = consensus(rows)
    merge, leave_out = dict(merge or {}), list(leave_out or [])
    for lab in [*merge, *merge.values(), *leave_out]:
        if lab not in m.labels:
            raise UsageError(f"{lab!r} is not a label of {measure} ({', '.join(m.labels)}).")
    raw = {lab: sum(1 for v in chosen.values() if v == lab) for lab in m.labels}
    chosen = {u: merge.get(v, v) for u, v in chosen.items() if v not in leave_out}
    origin = {r["uid"]: r["origin"] for r in rows}
    counts = {lab: sum(1 for v in chosen.values() if v == lab) for lab in m.labels}
    present = [lab for lab, n in counts.items() if n]
    rare = [lab for lab in present if counts[lab] < MIN_PER_LABEL]
    if len(present) < 2 or rare:
        more = (f" More labels come from a training sample (`chatlens sample --measure "
                f"{measure} --kind train`) or corrections.")
        if m.type == "binary" and chosen:  # both labels are needed: merging cannot help
            more = (f" Draw another training sample (`chatlens sample --measure {measure} "
                    "--kind train`, which takes rule hits in equal share when they are rare), or "
                    "find examples with `chatlens search WORDS` and label them as training "
                    "labels (dashboard corrections or `chatlens label import`); see the "
                    "labelling how-to, 'A rare measure'.")
        elif rare:
            more = (f" Label more of {', '.join(rare)}, or merge a rare label into another "
                    f"(`--merge {rare[0]}=OTHER`) or leave it out (`--leave-out {rare[0]}`)."
                    + more)
        raise UsageError(
            f"Too few training labels for {measure}: {raw} (audit labels are not used). Every "
            f"label the model learns needs at least {MIN_PER_LABEL} examples, and it needs two "
            f"such labels.{more}")
    uids = sorted(chosen)
    table = texts_and_lemmas(project.store, project.enrich_settings().fingerprint(), uids)
    labels_order = [lab for lab in m.labels if counts[lab]]
    model = train_model(
        [r["text"] for r in table], [chosen[r["uid"]] for r in table],
        lemmas=[r["lemmas"] or [] for r in table] if all(r["lemmas"] for r in table) else None,
        measure=measure, labels_order=labels_order,
        positive=m.positive_label() if m.type == "binary" else None, cv=cv, seed=seed,
        spec=DENSE_SPEC if dense else FeatureSpec(), origins=[origin[r["uid"]] for r in table],
        notes={"codebook": f"{cb.name} {cb.version}", "ties_left_out": len(ties),
               **({"merged": merge} if merge else {}),
               **({"left_out": leave_out} if leave_out else {})})
    models = project.root / "models"
    models.mkdir(exist_ok=True)
    version = 1 + sum(1 for p in models.glob(f"{measure}-v*") if p.is_dir())
    name = f"{measure}-v{version}"
    save_model(model, models / name)
    save_out_of_fold(models / name, [r["uid"] for r in table], model)
    return {"model": name, "path": str(models / name), "measure": measure,
            "labels": counts, "metrics": {k: model.metrics.get(k) for k in
                                          ("macro_f1", "weighted_f1", "accuracy", "ece",
                                           "chosen")},
            "use": _use_hint(project, measure, name)}


def _use_hint(project: Project, measure: str, name: str) -> str:
    """How to make the codebook use the new model (a built-in codebook must be copied)."""
    source = project.codebook()[1]
    entry = f"`{{type: model, model: {name}}}` to {measure}'s scorers"
    if source.startswith("builtin:"):
        return (f"copy the built-in codebook (`chatlens codebook show {source} --yaml > "
                f"codebook.yaml`), add {entry}, and run `chatlens code --codebook "
                "codebook.yaml`")
    return f"add {entry} in {source} and run `chatlens code`"


def list_models(project: Project) -> list[dict[str, Any]]:
    from chatlens.train import SHIPPED_MODELS

    out = []
    for base, where in ((project.root / "models", "project"), (SHIPPED_MODELS, "shipped")):
        if not base.is_dir():
            continue
        for d in sorted(p for p in base.iterdir() if (p / "model.json").is_file()):
            meta = json.loads((d / "model.json").read_text(encoding="utf-8"))
            metrics = meta.get("metrics", {})
            out.append({"model": d.name, "where": where, "measure": meta.get("measure"),
                        "labels": meta.get("labels"), "macro_f1": metrics.get("macro_f1"),
                        "ece": metrics.get("ece"), "created": meta.get("created"),
                        "card": str(d / "MODEL_CARD.md") if (d / "MODEL_CARD.md").exists()
                        else None})
    return out


def model_card(project: Project, name: str) -> str:
    from chatlens.code.compiled import resolve_model
    from chatlens.train import load_model

    folder = resolve_model(name, project.root / "models")
    if folder is None:
        raise UsageError(f"No model {name!r}; `chatlens models` lists them.")
    return str(load_model(Path(folder)).card_markdown())


#: Messages coded at once by :func:`cross_fitted_codes`.
_BATCH = 20_000


def cross_fitted_codes(project: Project, measure: str, uids: list[str]
                       ) -> tuple[pa.Table, dict[str, Any]]:
    """uid, value, score of ``measure`` for ``uids``, coded with every model scorer answering
    from models that never learned from the message: the model's training messages get their
    out-of-fold probabilities, all others the cross-fitted fold models (the fold model the uid
    hashes to).

    Quantification must score *both* its reference labels and its target this way: then the
    error rates measured on the reference describe exactly the scores it corrects on the target.
    (Stored codes come from the final model, whose scores on new messages are sharper than its
    out-of-fold rates: on real data under a true prior shift that biased ACC; see
    ``bench/estimate.py --prior-shift``.) Rule scorers code as stored. The second value says how
    it went: ``{"models": [...], "cross_fitted": bool, "recoded": n}``; ``cross_fitted`` is
    False when a model was saved without fold models (retrain it), in which case quantification
    should not be offered. Messages without codes for the measure are left out.
    """
    import pyarrow as pa

    from chatlens.code import code_table, compile_codebook
    from chatlens.code.model import ModelScorer, OutOfFoldScorer
    from chatlens.store.stages import code_input

    cb = project.codebook()[0]
    compiled = compile_codebook(cb, models_dir=project.root / "models", out_of_fold=measure)
    (cm,) = [x for x in compiled.measures if x.id == measure]
    models = [sc for sc in cm.scorers if isinstance(sc, ModelScorer)]
    info: dict[str, Any] = {
        "models": [sc.name for sc in models],
        "cross_fitted": all(isinstance(sc, OutOfFoldScorer) and sc.cross_fitted
                            for sc in models),
        "recoded": 0}
    fingerprint = project.enrich_settings().fingerprint()
    parts = []
    ordered = sorted(uids)
    for start in range(0, len(ordered), _BATCH):
        table = code_input(project.store, fingerprint, ordered[start:start + _BATCH])
        fresh = code_table(table, compiled, write=frozenset({measure}))
        parts.append(fresh.filter(fresh["in_population"]).select(["uid", "value", "score"]))
        info["recoded"] += parts[-1].num_rows
    if not parts:
        return pa.table({"uid": pa.array([], pa.string()), "value": pa.array([], pa.string()),
                         "score": pa.array([], pa.float64())}), info
    return pa.concat_tables(parts).sort_by("uid"), info
