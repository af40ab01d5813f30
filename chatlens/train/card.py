"""The model card: what a model was trained on, how well it does, and where it fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatlens.train.model import TrainedModel

SECTIONS = ("Model", "Data", "Cross-validated metrics", "Calibration", "Confusion matrix",
            "Top features", "Known limits", "Licence and attribution")

GENERIC_LIMITS = (
    "Bag-of-n-grams model: it sees words and character sequences, not meaning; sarcasm, "
    "quotation of others' words, and negation spanning long distances are often missed.",
    "Metrics are cross-validated on the training labels; on messages unlike them (other "
    "communities, periods, topics) performance is lower and must be checked on an audit sample.",
    "Probabilities are calibrated on out-of-fold scores of the training data; under a shift in "
    "prevalence they drift. Use the audit sample (PPI) for prevalence, not raw counts.",
)


def _f(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def card_markdown(model: TrainedModel) -> str:
    m = model.metrics
    classes = model.classes
    out = [f"# Model card: {model.measure}", "", "## Model", ""]
    out += [f"- measure: `{model.measure}` ({model.kind}; labels: "
            + ", ".join(f"`{x}`" for x in model.labels) + ")"]
    if model.positive is not None:
        out.append(f"- positive label: `{model.positive}` (scorer reports P({model.positive}))")
    out += [f"- classifier: `{m['chosen']}`, chosen by {m['n_splits']}-fold stratified "
            f"cross-validated {m['selection'].replace('_', '-')} among "
            + ", ".join(f"`{c}` {v:.3f}" for c, v in m["candidates"].items()),
            f"- features: {model.features}",
            f"- calibration: {'Platt scaling' if model.positive else 'matrix scaling'} "
            "fitted on out-of-fold scores",
            f"- created: {model.created}; versions: "
            + ", ".join(f"{k} {v}" for k, v in sorted(model.versions.items())),
            f"- training time: {model.notes.get('train_seconds', '?')} s",
            "", "## Data", "",
            f"- examples: {model.data['n']}; data hash (sha256 of sorted text/label pairs): "
            f"`{model.data['hash']}`", "", "| label | examples |", "|---|---|"]
    out += [f"| {lab} | {model.data['per_label'].get(lab, 0)} |" for lab in model.labels]
    out += ["", "| origin / label | examples |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in model.data["per_origin"].items()]
    out += ["", "## Cross-validated metrics", "",
            f"Out-of-fold predictions (argmax of calibrated probabilities), n = {m['n']}.", "",
            f"- macro F1 {_f(m['macro_f1'])}, weighted F1 {_f(m['weighted_f1'])}, "
            f"accuracy {_f(m['accuracy'])}", "",
            "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    out += [f"| {lab} | {_f(v['precision'])} | {_f(v['recall'])} | {_f(v['f1'])} | "
            f"{v['support']} |" for lab, v in m["per_class"].items()]
    what = (f"P({model.positive})" if model.positive else "top-label confidence")
    out += ["", "## Calibration", "",
            f"- expected calibration error (10 bins, {what}, cross-fitted): {_f(m['ece'])}",
            f"- Brier score: {_f(m['brier'])}"]
    if "best_threshold" in m:
        bt = m["best_threshold"]
        out.append(f"- F1({model.positive}) is highest, {bt['f1']:.3f}, at threshold "
                   f"{bt['threshold']:.2f} on out-of-fold P({model.positive}) (tuned on the "
                   "same folds: optimistic); the table above uses 0.5")
    out += ["", "## Confusion matrix", "",
            "Rows: true label; columns: predicted label (out-of-fold).", "",
            "| true \\ predicted | " + " | ".join(classes) + " |",
            "|---|" + "---|" * len(classes)]
    out += [f"| {c} | " + " | ".join(str(v) for v in row) + " |"
            for c, row in zip(classes, m["confusion"], strict=True)]
    out += ["", "## Top features", ""]
    for lab, feats in model.top_features.items():
        shown = ", ".join(f"{n} ({w:+.2f})" for n, w in feats[:15]) or "(none)"
        out.append(f"- **{lab}**: {shown}")
    out += ["", "## Known limits", ""]
    out += [f"- {x}" for x in [*model.notes.get("limits", []), *GENERIC_LIMITS]]
    out += ["", "## Licence and attribution", "",
            str(model.notes.get("attribution") or "Trained on the project's own labels; no "
                                                  "third-party data recorded."), ""]
    return "\n".join(out)
