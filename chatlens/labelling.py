"""Samples and labels for a project: drawing audit and training samples, importing, exporting
and checking labels. Wires :mod:`chatlens.annotate` to the stores."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatlens.annotate import (
    LabelRecord,
    agreement_report,
    disagreements,
    draw_audit,
    draw_train,
    read_labels,
    write_labels,
    write_tasks_label_studio,
)
from chatlens.errors import UsageError
from chatlens.store import stages as db
from chatlens.store.labels import NewLabel

if TYPE_CHECKING:
    from chatlens.project import Project

STRATA = {"chat": "chat_key", "month": "month"}


def create_sample(project: Project, measure: str, kind: str, n: int, strata: str | None,
                  seed: int | None, run_id: str) -> dict[str, Any]:
    """Draw an audit (probability) or training (active-learning) sample of the population."""
    cb = project.codebook()[0]
    m = cb.measure(measure)
    frame = db.population_frame(project.store, cb.name, measure)
    if frame.num_rows == 0:
        raise UsageError(f"Measure {measure} has no coded population yet; run `chatlens code` "
                         "first.")
    seed = seed if seed is not None else secrets.randbelow(2**31)
    uids = frame.column("uid").to_pylist()
    labels = project.labels()
    if kind == "audit":
        if strata is not None and strata not in STRATA:
            raise UsageError(f"--strata must be one of {', '.join(STRATA)}.")
        groups = frame.column(STRATA[strata]).to_pylist() if strata else None
        drawn = draw_audit(uids, n, seed, strata=[str(g) for g in groups] if groups else None)
        items = [(u, drawn.stratum_of.get(u), drawn.inclusion.get(u)) for u in drawn.uids]
        design = drawn.as_dict() | {"strata_by": strata}
        design.pop("uids", None)
    elif kind == "train":
        exclude = labels.sampled_uids(cb.name, measure, "audit")
        # binary measures: codes hold P(positive), so uncertainty sampling applies; for
        # categorical rule codes there is no probability yet, so the pick is random
        scores = ([float("nan") if s is None else float(s)
                   for s in frame.column("score").to_pylist()] if m.type == "binary" else None)
        picked = draw_train(uids, scores, n, seed, exclude=exclude,
                            texts=frame.column("text").to_pylist())
        items = [(u, None, None) for u in picked.uids]
        design = picked.as_dict()
        design.pop("uids", None)
    else:
        raise UsageError("--kind must be audit or train.")
    sample_id = f"{kind}-{measure}-{uuid.uuid4().hex[:6]}"
    labels.add_sample(sample_id, cb.name, measure, kind, design, items, run_id)
    return {"sample_id": sample_id, "measure": measure, "kind": kind, "n": len(items),
            "frame_size": frame.num_rows, "seed": seed, "design": design}


@dataclass(slots=True)
class ImportReport:
    path: str
    read: int = 0
    stored: int = 0
    problems: list[str] = field(default_factory=list)
    already: int = 0  # labels this file had already stored (an import run again)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "read": self.read, "stored": self.stored,
                "already": self.already, "problems": self.problems}


def import_labels(project: Project, path: str | Path, annotator: str,
                  sample_id: str | None = None, measure: str | None = None) -> ImportReport:
    """Import labels. Only ``sample_id`` decides whether they count as audit labels: a file
    cannot turn labels into audit labels by itself (its ``sample_kind`` column is ignored)."""
    cb = project.codebook()[0]
    store = project.labels()
    report = ImportReport(path=str(path))
    records, problems = read_labels(path, annotator, measure)
    report.read = len(records) + len(problems)
    report.problems = [str(p) for p in problems]
    sample: dict[str, Any] | None = None
    members: set[str] = set()
    if sample_id:
        found = [s for s in store.samples() if s["sample_id"] == sample_id]
        if not found:
            raise UsageError(f"No sample {sample_id!r}; `chatlens samples` lists them.")
        sample = found[0]
        members = {i["uid"] for i in store.sample_items(sample_id)}
    known = set(db.known_uids(project.store, [r.uid for r in records]))
    new: list[NewLabel] = []
    # the same file (by content) imported with the same options stores each row once
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    base_key = f"{digest}\x1f{sample_id or ''}\x1f{measure or ''}\x1f{annotator}"
    for index, r in enumerate(records):
        where = f"{path}: label for {r.uid}"
        m = next((x for x in cb.measures if x.id == r.measure), None)
        if m is None:
            report.problems.append(f"{where}: no measure {r.measure!r} in {cb.name}")
        elif r.value not in m.labels:
            report.problems.append(f"{where}: {r.value!r} is not one of {m.labels}")
        elif r.uid not in known:
            report.problems.append(f"{where}: no message with this uid in the project")
        elif sample is not None and (r.uid not in members or r.measure != sample["measure"]):
            report.problems.append(f"{where}: not an item of sample {sample_id}")
        else:
            new.append(NewLabel(
                uid=r.uid, codebook=cb.name, measure=r.measure, value=r.value,
                annotator=r.annotator, origin="import" if r.origin != "correction" else
                "correction", sample_id=sample_id, sample_kind=sample["kind"] if sample else "none",
                span=r.span, comment=r.comment, created=r.created,
                import_key=f"{base_key}\x1f{index}"))
    report.stored = store.add_labels(new)
    report.already = len(new) - report.stored
    return report


def export_labels(project: Project, path: str | Path, fmt: str | None = None,
                  sample_id: str | None = None, measure: str | None = None) -> int:
    """Write labels (CSV/JSONL/Label Studio JSON), or a sample's tasks for Label Studio."""
    cb = project.codebook()[0]
    store = project.labels()
    if fmt == "labelstudio-tasks":
        if not sample_id:
            raise UsageError("Exporting Label Studio tasks needs --sample ID.")
        sample = next((s for s in store.samples() if s["sample_id"] == sample_id), None)
        if sample is None:
            raise UsageError(f"No sample {sample_id!r}.")
        m = cb.measure(sample["measure"])
        uids = [i["uid"] for i in store.sample_items(sample_id)]
        items = [{"uid": r["uid"], "text": r["text"], "context_before": r["before"] or [],
                  "context_after": r["after"] or [], "measure": m.id, "question": m.question,
                  "labels": m.labels, "sample_kind": sample["kind"]}
                 for r in db.messages_with_context(project.store, uids)]
        tasks, config = write_tasks_label_studio(items)
        out = Path(path)
        out.write_text(tasks, encoding="utf-8")
        out.with_suffix(".config.xml").write_text(config, encoding="utf-8")
        return len(items)
    table = store.labels_arrow(cb.name, measure)
    rows = table.to_pylist()
    if sample_id:
        rows = [r for r in rows if r["sample_id"] == sample_id]
    from chatlens.annotate.records import parse_time

    records = [LabelRecord(
        uid=r["uid"], measure=r["measure"], value=r["value"], annotator=r["annotator"],
        created=parse_time(r["created"]), sample_kind=r["sample_kind"], origin=r["origin"],
        span=(r["span_start"], r["span_end"]) if r["span_start"] is not None else None,
        comment=r["comment"]) for r in rows if r["value"] is not None]
    if fmt not in (None, "csv", "jsonl", "labelstudio"):
        raise UsageError("--format must be csv, jsonl, labelstudio or labelstudio-tasks.")
    return write_labels(records, path, fmt)  # type: ignore[arg-type]


def consensus(rows: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """One value per uid from several annotators: the majority; ties are left out (returned)."""
    by_uid: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r["value"] is not None:
            by_uid[r["uid"]].append(r["value"])
    out: dict[str, str] = {}
    ties: list[str] = []
    for uid, values in by_uid.items():
        (top, n), *rest = Counter(values).most_common()
        if rest and rest[0][1] == n:
            ties.append(uid)
        else:
            out[uid] = top
    return out, ties


def agreement(project: Project, measure: str | None = None) -> dict[str, Any]:
    cb = project.codebook()[0]
    rows = project.labels().labels_arrow(cb.name, measure).to_pylist()
    triples = [(r["measure"], r["uid"], r["annotator"], r["value"]) for r in rows
               if r["value"] is not None]
    return {"report": agreement_report(triples), "disagreements": disagreements(triples)}
