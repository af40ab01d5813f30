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

import numpy as np

from chatlens.annotate import (
    LabelRecord,
    agreement_report,
    disagreements,
    draw_audit,
    draw_train,
    read_labels,
    write_labels,
    write_sheet,
    write_tasks_label_studio,
)
from chatlens.annotate.labels_io import label_format
from chatlens.annotate.sampling import ACTIVE_MIX, draw_active
from chatlens.errors import UsageError
from chatlens.project.active import check_spread, choose_working_model, training_reference
from chatlens.store import stages as db
from chatlens.store.labels import LabelStore, NewLabel

if TYPE_CHECKING:
    import pyarrow as pa

    from chatlens.codebook import Measure
    from chatlens.project import Project

STRATA = {"chat": "chat_key", "month": "month"}


def create_sample(project: Project, measure: str, kind: str, n: int, strata: str | None,
                  seed: int | None, run_id: str, design: str = "random",
                  floor: float = ACTIVE_MIX) -> dict[str, Any]:
    """Draw an audit (probability) or training (active-learning) sample of the population.
    An audit's ``design`` is ``random`` (SRSWOR, stratified by ``strata`` if given) or
    ``active`` (a Poisson batch weighted to the model's uncertainty with the uniform share
    ``floor``; see :mod:`chatlens.project.active`)."""
    if design not in ("random", "active"):
        raise UsageError("--design must be random or active.")
    if design == "active" and (kind != "audit" or strata is not None):
        raise UsageError("--design active is an audit design of its own: use it with --kind "
                         "audit and without --strata.")
    cb = project.codebook()[0]
    m = cb.measure(measure)
    frame = db.population_frame(project.store, cb.name, measure)
    if frame.num_rows == 0:
        raise UsageError(f"Measure {measure} has no coded population yet; run `chatlens code` "
                         "first.")
    seed = seed if seed is not None else secrets.randbelow(2**31)
    uids = frame.column("uid").to_pylist()
    labels = project.labels()
    if kind == "audit" and design == "active":
        items, sample_design = _draw_active(project, labels, cb.name, m, frame, n, seed,
                                             floor)
    elif kind == "audit":
        if strata is not None and strata not in STRATA:
            raise UsageError(f"--strata must be one of {', '.join(STRATA)}.")
        groups = frame.column(STRATA[strata]).to_pylist() if strata else None
        drawn = draw_audit(uids, n, seed, strata=[str(g) for g in groups] if groups else None)
        items = [(u, drawn.stratum_of.get(u), drawn.inclusion.get(u)) for u in drawn.uids]
        sample_design = drawn.as_dict() | {"strata_by": strata}
        sample_design.pop("uids", None)
    elif kind == "train":
        exclude = labels.sampled_uids(cb.name, measure, "audit")
        # binary measures: codes hold P(positive), so uncertainty sampling applies; for
        # categorical rule codes there is no probability yet, so the pick is random
        scores = ([float("nan") if s is None else float(s)
                   for s in frame.column("score").to_pylist()] if m.type == "binary" else None)
        picked = draw_train(uids, scores, n, seed, exclude=exclude,
                            texts=frame.column("text").to_pylist(),
                            groups=frame.column("chat_key").to_pylist())
        items = [(u, None, None) for u in picked.uids]
        sample_design = picked.as_dict()  # method, note, the sample's composition and the frame's
        sample_design.pop("uids", None)
        sample_design.pop("random_uids", None)
    else:
        raise UsageError("--kind must be audit or train.")
    sample_id = f"{kind}-{measure}-{uuid.uuid4().hex[:6]}"
    labels.add_sample(sample_id, cb.name, measure, kind, sample_design, items, run_id)
    return {"sample_id": sample_id, "measure": measure, "kind": kind, "n": len(items),
            "frame_size": frame.num_rows, "seed": seed, "design": sample_design}


def _draw_active(project: Project, labels: LabelStore, codebook: str, m: Measure,
                 frame: pa.Table, n: int, seed: int, floor: float,
                 ) -> tuple[list[tuple[str, str | None, float | None]], dict[str, Any]]:
    """One batch of an active audit: the working model chosen from the labels stored now, then
    a Poisson draw weighted to its uncertainty (:mod:`chatlens.project.active`)."""
    if m.type != "binary":
        raise UsageError(f"An active audit needs a binary measure whose scores are "
                         f"probabilities; {m.id} is {m.type}. Use --design random.")
    if not 0.0 < floor <= 1.0:
        raise UsageError(f"--floor must be above 0 and at most 1 (the uniform share of the "
                         f"inclusion probabilities), got {floor}.")
    uids = frame.column("uid").to_pylist()
    score = np.array([0.0 if s is None else float(s) for s in frame.column("score").to_pylist()])
    rows = labels.labels_arrow(codebook, m.id, sample_kind="audit").to_pylist()
    audit, _ = consensus(rows)
    at = {u: i for i, u in enumerate(uids)}
    known = [u for u in audit if u in at]
    y = np.array([1.0 if audit[u] == m.positive_label() else 0.0 for u in known])
    working = choose_working_model(y, score[[at[u] for u in known]], score,
                                   lambda: training_reference(project, m))
    spread = check_spread(working(score), m.id)
    drawn = draw_active(uids, spread, n, seed, mix=floor)
    pi = list(drawn.inclusion.values())
    fitted = (sorted({r["sample_id"] for r in rows})
              if working.a is not None and working.basis == "audit" else [])
    design = drawn.as_dict() | {
        "design": "active", "expected_n": n, "floor": floor, "strata_by": None,
        "working_model": working.as_dict() | {"fitted_on_samples": fitted},
        "pi_range": [min(pi), max(pi)] if pi else None}
    for key in ("uids", "inclusion", "strata_sizes", "sample_sizes", "stratum_of"):
        design.pop(key, None)  # pi is stored with each item
    return [(u, None, drawn.inclusion[u]) for u in drawn.uids], design


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


def import_labels(project: Project, path: str | Path, annotator: str | None = None,
                  sample_id: str | None = None, measure: str | None = None,
                  reference: str | None = None, run_id: str | None = None) -> ImportReport:
    """Import labels. Only ``sample_id`` decides whether they count as audit labels: a file
    cannot turn labels into audit labels by itself (its ``sample_kind`` column is ignored).

    ``reference`` declares the labels a *reference set* named so: labels of another corpus or
    period (ingested into the project, e.g. as a labelled table), which quantification may
    use where no audit exists. They never count as audit or training labels.

    ``annotator`` names the coder of every row: rows that name another coder are refused
    (so a second coder's sheet is never booked to the first). Without it each row's
    ``annotator`` column decides, and rows that name none are booked to ``import``."""
    cb = project.codebook()[0]
    store = project.labels()
    report = ImportReport(path=str(path))
    if reference is not None and sample_id is not None:
        raise UsageError("--reference and --sample exclude each other: a reference set is "
                         "labels of another corpus or period, a sample is drawn from this one.")
    if reference is not None and not reference.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"Reference set names are letters, digits, - and _; not {reference!r}.")
    records, problems = read_labels(path, annotator or "import", measure)
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
    # (the coder is each row's own, so importing it with or without --annotator is one import)
    base_key = f"{digest}\x1f{sample_id or ''}\x1f{measure or ''}"
    for index, r in enumerate(records):
        where = f"{path}: label for {r.uid}"
        m = next((x for x in cb.measures if x.id == r.measure), None)
        if m is None:
            report.problems.append(f"{where}: no measure {r.measure!r} in {cb.name}")
        elif r.value not in m.labels:
            report.problems.append(f"{where}: {r.value!r} is not one of {m.labels}")
        elif annotator is not None and r.annotator != annotator:
            report.problems.append(f"{where}: the row names annotator {r.annotator!r}, not "
                                   f"{annotator!r}; import it without --annotator, or clear "
                                   "that column")
        elif r.uid not in known:
            report.problems.append(f"{where}: no message with this uid in the project")
        elif sample is not None and (r.uid not in members or r.measure != sample["measure"]):
            report.problems.append(f"{where}: not an item of sample {sample_id}")
        else:
            ref_id = f"reference-{r.measure}-{reference}" if reference else None
            new.append(NewLabel(
                uid=r.uid, codebook=cb.name, measure=r.measure, value=r.value,
                annotator=r.annotator, origin="import" if r.origin != "correction" else
                "correction", sample_id=ref_id or sample_id,
                sample_kind="reference" if reference else sample["kind"] if sample else "none",
                span=r.span, comment=r.comment, created=r.created,
                import_key=f"{base_key}\x1f{reference or ''}\x1f{r.annotator}\x1f{index}"))
    if reference:
        for m_id in sorted({n.measure for n in new}):
            store.add_reference_items(f"reference-{m_id}-{reference}", cb.name, m_id,
                                      [n.uid for n in new if n.measure == m_id], run_id)
    report.stored = store.add_labels(new)
    report.already = len(new) - report.stored
    return report


def export_labels(project: Project, path: str | Path, fmt: str | None = None,
                  sample_id: str | None = None, measure: str | None = None,
                  annotator: str | None = None) -> int:
    """Write labels (CSV/JSONL/Label Studio JSON), or a sample's items: as Label Studio tasks
    (``labelstudio-tasks``), or, for ``--sample`` with CSV/JSONL, a coding sheet with one row
    per item (its labels filled in where it has some) that ``import_labels`` reads back.

    With ``annotator`` the sheet is that coder's, blind to the others: one row per item, only
    their own labels filled in, and their name in every row's ``annotator`` column."""
    cb = project.codebook()[0]
    store = project.labels()
    if fmt not in (None, "csv", "jsonl", "labelstudio", "labelstudio-tasks"):
        raise UsageError("--format must be csv, jsonl, labelstudio or labelstudio-tasks.")
    sample = None
    if sample_id:
        sample = next((s for s in store.samples() if s["sample_id"] == sample_id), None)
        if sample is None:
            raise UsageError(f"No sample {sample_id!r}; `chatlens samples` lists them.")
    if fmt == "labelstudio-tasks" and sample is None:
        raise UsageError("Exporting Label Studio tasks needs --sample ID.")
    if sample is not None and (fmt or label_format(path)) != "labelstudio":
        m = cb.measure(sample["measure"])
        uids = [i["uid"] for i in store.sample_items(sample["sample_id"])]
        messages = db.messages_with_context(project.store, uids)
        masker = project.masker()  # a coding sheet is an output like any other: PII masked
        for r in messages:
            r["text"] = masker.text(r["text"])
            r["before"] = [masker.text(t) for t in r["before"] or []]
            r["after"] = [masker.text(t) for t in r["after"] or []]
        if fmt == "labelstudio-tasks":
            items = [{"uid": r["uid"], "text": r["text"], "context_before": r["before"] or [],
                      "context_after": r["after"] or [], "measure": m.id,
                      "question": m.question, "labels": m.labels,
                      "sample_kind": sample["kind"]} for r in messages]
            tasks, config = write_tasks_label_studio(items)
            out = Path(path)
            out.write_text(tasks, encoding="utf-8")
            out.with_suffix(".config.xml").write_text(config, encoding="utf-8")
            return len(items)
        done: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for lab in store.labels_arrow(cb.name, m.id).to_pylist():
            if (lab["sample_id"] == sample["sample_id"] and lab["value"] is not None
                    and annotator in (None, lab["annotator"])):
                done[lab["uid"]].append(lab)
        rows = [{"uid": r["uid"], "measure": m.id, "text": r["text"],
                 "context_before": r["before"], "context_after": r["after"],
                 "choices": " | ".join(m.labels), "value": lab.get("value"),
                 "annotator": annotator or lab.get("annotator"), "comment": lab.get("comment")}
                for r in messages for lab in (done.get(r["uid"]) or [{}])]
        return write_sheet(rows, path, fmt)  # type: ignore[arg-type]
    table = store.labels_arrow(cb.name, measure)
    rows = [r for r in table.to_pylist() if sample_id in (None, r["sample_id"])
            and annotator in (None, r["annotator"])]
    from chatlens.annotate.records import parse_time

    records = [LabelRecord(
        uid=r["uid"], measure=r["measure"], value=r["value"], annotator=r["annotator"],
        created=parse_time(r["created"]), sample_kind=r["sample_kind"], origin=r["origin"],
        span=(r["span_start"], r["span_end"]) if r["span_start"] is not None else None,
        comment=r["comment"]) for r in rows if r["value"] is not None]
    return write_labels(records, path, fmt)  # type: ignore[arg-type]


#: What counts for an audited message whose coders disagree and that nobody adjudicated:
#: ``bounds`` (the default) computes the estimate both ways and keeps the union of the
#: intervals, so it holds however the disagreement would be settled; ``exclude`` leaves such
#: messages out (counted and reported: they are usually the hard cases, not missing at random).
#: ``annotator:NAME`` lets that coder's label decide.
TIE_POLICIES = ("bounds", "exclude")


def consensus(rows: list[dict[str, Any]], prefer: str | None = None,
              ) -> tuple[dict[str, str], dict[str, list[str]]]:
    """One value per uid from several annotators: an adjudicated label if there is one (the
    latest), else the majority, else the ``prefer``red annotator's label; what is still tied
    is returned apart, uid -> the tied values."""
    by_uid: dict[str, list[str]] = defaultdict(list)
    adjudicated: dict[str, str] = {}
    by_annotator: dict[tuple[str, str], str] = {}
    for r in rows:
        if r["value"] is None:
            continue
        if r.get("origin") == "adjudication":
            adjudicated[r["uid"]] = r["value"]
        else:
            by_uid[r["uid"]].append(r["value"])
            by_annotator[(r["uid"], r["annotator"])] = r["value"]
    out: dict[str, str] = {}
    ties: dict[str, list[str]] = {}
    for uid, values in by_uid.items():
        if uid in adjudicated:
            continue
        (top, n), *rest = Counter(values).most_common()
        if not rest or rest[0][1] < n:
            out[uid] = top
        elif prefer is not None and (uid, prefer) in by_annotator:
            out[uid] = by_annotator[(uid, prefer)]
        else:
            ties[uid] = sorted(v for v, k in Counter(values).items() if k == n)
    out.update(adjudicated)
    return out, ties


def disputes(store: LabelStore, codebook: str, measure: str) -> list[dict[str, Any]]:
    """Audited messages of ``measure`` whose coders disagree and that nobody adjudicated, read
    from ``labels.sqlite`` alone (no DuckDB: the dashboard counts and settles them while another
    process writes the store): uid, the tied values, the samples, each coder's value."""
    rows = [r for r in store.labels_arrow(codebook, measure, "audit").to_pylist()
            if r["value"] is not None]
    _, ties = consensus(rows)
    mine: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["uid"] in ties and r["origin"] != "adjudication":
            mine[r["uid"]].append(r)
    return [{"uid": uid, "measure": measure, "tied": ties[uid],
             "samples": sorted({r["sample_id"] for r in mine[uid]}),
             "labels": {r["annotator"]: r["value"] for r in mine[uid]}} for uid in sorted(ties)]


def unresolved(project: Project, measure: str) -> list[dict[str, Any]]:
    """Audited messages of ``measure`` whose coders disagree and that nobody adjudicated: uid,
    the samples, each coder's value, the message text (PII masked) and its context."""
    from chatlens.textsafe import mask_pii

    cb = project.codebook()[0]
    cb.measure(measure)
    items = disputes(project.labels(), cb.name, measure)
    if not items:
        return []
    texts = {r["uid"]: r for r in db.messages_with_context(project.store,
                                                            [i["uid"] for i in items])}
    for it in items:
        msg = texts.get(it["uid"], {})
        it.update({
            "text": mask_pii(msg.get("text") or ""),
            "context_before": [mask_pii(t) for t in msg.get("before") or []],
            "context_after": [mask_pii(t) for t in msg.get("after") or []]})
    return items


def record_decisions(store: LabelStore, codebook: str, measure: str, labels: list[str],
                     decisions: dict[str, str], adjudicator: str) -> tuple[int, list[str]]:
    """Store ``decisions`` (uid -> value) as ``adjudication`` labels, one in every audit sample
    the message was labelled in; writes ``labels.sqlite`` only. Returns the labels stored and
    the problems (a value not of the measure, a uid without an audit label)."""
    samples_of: dict[str, set[str]] = defaultdict(set)
    for r in store.labels_arrow(codebook, measure, "audit").to_pylist():
        samples_of[r["uid"]].add(r["sample_id"])
    problems, new = [], []
    for uid, value in decisions.items():
        if value not in labels:
            problems.append(f"{uid}: {value!r} is not one of {labels}")
        elif uid not in samples_of:
            problems.append(f"{uid}: no audit label of {measure} to adjudicate")
        else:
            new += [NewLabel(uid=uid, codebook=codebook, measure=measure, value=value,
                             annotator=adjudicator, origin="adjudication", sample_id=sid,
                             sample_kind="audit") for sid in sorted(samples_of[uid])]
    return store.add_labels(new), problems


def adjudicate(project: Project, measure: str, decisions: dict[str, str],
               adjudicator: str) -> dict[str, Any]:
    """Settle coder disagreements: ``decisions`` maps audited uids to the value that counts.
    Each decision is stored as an ``adjudication`` label in every audit sample the message was
    labelled in, and wins over the coders' labels there (theirs are kept)."""
    cb = project.codebook()[0]
    m = cb.measure(measure)
    store = project.labels()
    stored, problems = record_decisions(store, cb.name, measure, m.labels, decisions,
                                        adjudicator)
    return {"measure": measure, "decided": len(decisions) - len(problems), "stored": stored,
            "problems": problems, "remaining": len(disputes(store, cb.name, measure))}


def read_decisions(path: str | Path) -> dict[str, str]:
    """``uid`` -> ``value`` from an adjudication sheet (CSV with those columns, as
    ``chatlens label adjudicate -o`` writes it); rows with an empty value are skipped."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"uid", "value"} <= set(reader.fieldnames):
            raise UsageError(f"{path}: an adjudication sheet needs the columns uid and value "
                             f"(found: {', '.join(reader.fieldnames or []) or 'none'}).")
        return {r["uid"].strip(): r["value"].strip() for r in reader
                if (r.get("value") or "").strip() and (r.get("uid") or "").strip()}


def write_adjudication_sheet(items: list[dict[str, Any]], path: str | Path) -> int:
    """A CSV to settle disagreements in a spreadsheet: fill ``value`` and import it back with
    ``chatlens label adjudicate --measure M --import FILE``. Cells that a spreadsheet would
    run as a formula are neutralised."""
    import csv

    from chatlens.textsafe import csv_safe

    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["uid", "measure", "text", "context_before", "context_after", "labels",
                    "value", "comment"])
        for it in items:
            w.writerow([csv_safe(x) for x in (
                it["uid"], it["measure"], it["text"], "\n".join(it["context_before"]),
                "\n".join(it["context_after"]),
                "; ".join(f"{k}: {v}" for k, v in sorted(it["labels"].items())), "", "")])
    return len(items)


def agreement(project: Project, measure: str | None = None) -> dict[str, Any]:
    cb = project.codebook()[0]
    rows = project.labels().labels_arrow(cb.name, measure).to_pylist()
    # agreement is between the coders: an adjudicator's decisions settle, they do not code
    triples = [(r["measure"], r["uid"], r["annotator"], r["value"]) for r in rows
               if r["value"] is not None and r["origin"] != "adjudication"]
    return {"report": agreement_report(triples), "disagreements": disagreements(triples)}
