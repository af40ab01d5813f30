"""Label Studio: tasks and a labeling config out, exported annotations in.

Tasks carry ``data.uid`` (the message), ``data.text``, ``data.context_before`` and
``data.context_after`` (plain text, one message per line), and the measures to code.
The config has one single-choice ``<Choices name="MEASURE">`` per measure, so each annotation
result's ``from_name`` is the measure and ``value.choices[0]`` the label; span results
(``labels`` with ``start``/``end``) become labels with a span, a ``comment`` text area the
comment. ``completed_by`` becomes the annotator: the e-mail when the export gives one, else
``labelstudio:<id>``. Cancelled annotations and unusable results are reported, not imported.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from xml.sax.saxutils import quoteattr

import orjson

from chatlens.annotate.records import (
    SAMPLE_KINDS,
    LabelProblem,
    LabelRecord,
    SampleKind,
    context_text,
    parse_time,
)
from chatlens.errors import InputError, UsageError
from chatlens.jsonscan import Element, ScanError, scan

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_RESERVED = {"text", "context_before", "context_after", "comment"}


def write_tasks_label_studio(items: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """Label Studio tasks (JSON text) and the matching labeling config (XML text).

    Each item has ``uid, text, context_before, context_after, measure, question, labels`` and
    optionally ``sample_kind``. Items with the same uid become one task that lists its measures.
    """
    tasks: dict[str, dict[str, Any]] = {}
    measures: dict[str, tuple[str, tuple[str, ...]]] = {}
    for it in items:
        m, labels = str(it["measure"]), tuple(str(x) for x in it["labels"])
        if not _NAME.match(m) or m in _RESERVED:
            raise UsageError(f"measure id {m!r} cannot name a Label Studio control")
        spec = (str(it.get("question") or m), labels)
        if measures.setdefault(m, spec) != spec:
            raise UsageError(f"measure {m!r} is given with two different questions or labels")
        uid = str(it["uid"])
        task = tasks.setdefault(uid, {"data": {
            "uid": uid, "text": str(it.get("text") or ""),
            "context_before": context_text(it.get("context_before")),
            "context_after": context_text(it.get("context_after")), "measures": ""}})
        data = task["data"]
        data["measures"] = ", ".join([*filter(None, data["measures"].split(", ")), m])
        if it.get("sample_kind"):
            data["sample_kind"] = str(it["sample_kind"])
    lines = ['<View>',
             '  <Text name="context_before" value="$context_before"/>',
             '  <Header value="Message" size="5"/>',
             '  <Text name="text" value="$text"/>',
             '  <Text name="context_after" value="$context_after"/>',
             '  <Header value="To code: $measures" size="6"/>']
    for m, (question, labels) in measures.items():
        lines.append(f'  <Header value={quoteattr(question.replace("$", "＄"))} size="5"/>')
        lines.append(f'  <Choices name="{m}" toName="text" choice="single-select" '
                     'showInline="true">')
        lines += [f"    <Choice value={quoteattr(lab)}/>" for lab in labels]
        lines.append("  </Choices>")
    lines += ['  <TextArea name="comment" toName="text" placeholder="Comment (optional)" '
              'maxSubmissions="1"/>', "</View>"]
    config = "\n".join(lines) + "\n"
    return json.dumps(list(tasks.values()), ensure_ascii=False, indent=1), config


def export_json(records: Sequence[LabelRecord]) -> str:
    """Records as Label Studio tasks with one annotation each (the shape an export has)."""
    tasks: dict[str, dict[str, Any]] = {}
    for r in records:
        task = tasks.setdefault(r.uid, {"data": {"uid": r.uid}, "annotations": []})
        if r.span is None:
            result = {"from_name": r.measure, "to_name": "text", "type": "choices",
                      "value": {"choices": [r.value]}}
        else:
            result = {"from_name": r.measure, "to_name": "text", "type": "labels",
                      "value": {"start": r.span[0], "end": r.span[1], "labels": [r.value]}}
        results = [result]
        if r.comment is not None:
            results.append({"from_name": "comment", "to_name": "text", "type": "textarea",
                            "value": {"text": [r.comment]}})
        task["annotations"].append({
            "completed_by": {"email": r.annotator}, "created_at": r.created.isoformat(),
            "was_cancelled": False, "result": results,
            "chatlens": {"sample_kind": r.sample_kind, "origin": r.origin}})
    return json.dumps(list(tasks.values()), ensure_ascii=False, indent=1)


def _annotator(by: Any, default: str) -> str:
    if isinstance(by, dict):
        by = by.get("email") or (f"labelstudio:{by['id']}" if by.get("id") is not None else None)
    elif isinstance(by, int) and not isinstance(by, bool):
        by = f"labelstudio:{by}"
    return by if isinstance(by, str) and by else default


def _comment(results: list[Any]) -> str | None:
    for res in results:
        if isinstance(res, dict) and res.get("type") == "textarea":
            value = res.get("value")
            text = value.get("text") if isinstance(value, dict) else None
            if isinstance(text, str):
                return text or None
            if isinstance(text, list):
                return "\n".join(t for t in text if isinstance(t, str)) or None
    return None


def read_export(path: Path, text: str, default_annotator: str, measure: str | None,
                now: datetime) -> tuple[list[LabelRecord], list[LabelProblem]]:
    """Labels from a Label Studio JSON export (a list of tasks with annotations)."""
    records: list[LabelRecord] = []
    problems: list[LabelProblem] = []

    def problem(where: str, message: str) -> None:
        problems.append(LabelProblem(str(path), None, message, where))

    tasks = _tasks(path, text, problem)
    for ti, task in enumerate(tasks, start=1):
        if task is None:  # reported by _tasks
            continue
        data = task.get("data") if isinstance(task, dict) else None
        tid = task.get("id", "?") if isinstance(task, dict) else "?"
        where_t = f"task {ti} (id {tid})"
        uid = data.get("uid") if isinstance(data, dict) else None
        if not isinstance(uid, str) or not uid:
            problem(where_t, "task has no data.uid: it was not exported by chatlens")
            continue
        kind = data.get("sample_kind") if isinstance(data, dict) else None
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            problem(where_t, "the task's annotations are not a list")
            continue
        for ai, ann in enumerate(annotations, start=1):
            where = f"{where_t}, annotation {ai}"
            if not isinstance(ann, dict) or not isinstance(ann.get("result"), list):
                problem(where, "annotation has no result list")
                continue
            if ann.get("was_cancelled"):
                problem(where, "annotation was cancelled (skipped) in Label Studio")
                continue
            extra: dict[str, Any] = ann.get("chatlens") or {}
            if not isinstance(extra, dict):
                extra = {}
            try:
                created = parse_time(ann["created_at"]) if ann.get("created_at") else now
            except (TypeError, ValueError):
                problem(where, f"created_at is not a time: {str(ann.get('created_at'))[:60]!r}")
                continue
            base: dict[str, Any] = {
                "uid": uid, "annotator": _annotator(ann.get("completed_by"), default_annotator),
                "created": created, "comment": _comment(ann["result"]),
                "sample_kind": cast(SampleKind, extra.get("sample_kind") or (
                    kind if kind in SAMPLE_KINDS else "none")),
                "origin": extra.get("origin") or "import"}
            for ri, res in enumerate(ann["result"], start=1):
                _result(res, base, measure, records, f"{where}, result {ri}", problem)
    return records, problems


def _result(res: Any, base: dict[str, Any], measure: str | None, records: list[LabelRecord],
            where: str, report: Callable[[str, str], None]) -> None:
    def problem(message: str) -> None:
        report(where, message)

    if not isinstance(res, dict) or res.get("type") == "textarea":
        return
    name, value = res.get("from_name"), res.get("value")
    if not isinstance(value, dict) or not isinstance(name, str):
        problem("result has no from_name or value")
        return
    if measure is not None and name != measure:
        problem(f"result is for {name!r}, not the requested measure {measure!r}")
        return
    kind = res.get("type")
    picked = value.get("choices") if kind == "choices" else value.get("labels")
    if kind not in ("choices", "labels") or not isinstance(picked, list):
        problem(f"unsupported result type {kind!r}: only choices and labels are imported")
        return
    if len(picked) != 1:
        problem(f"{len(picked)} values chosen for {name!r}; one is needed")
        return
    if not isinstance(picked[0], str | int) or isinstance(picked[0], bool):
        problem(f"the value chosen for {name!r} is not text")
        return
    try:
        span = None
        if kind == "labels":
            start, end = value["start"], value["end"]
            if not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end)):
                raise ValueError(f"span start and end must be integers, got "
                                 f"{str([start, end])[:60]}")
            span = (start, end)
        records.append(LabelRecord(measure=name, value=str(picked[0]), span=span, **base))
    except KeyError as exc:
        problem(f"span result has no {exc.args[0]}")
    except (TypeError, ValueError, OverflowError) as exc:
        problem(str(exc)[:300])


def _tasks(path: Path, text: str, problem: Callable[[str, str], None]) -> list[Any]:
    """The export's tasks, each parsed alone: a task nested too deeply or holding invalid JSON
    is reported and the others are read. A file that is not a JSON list is an InputError."""
    if not text.lstrip().startswith("["):
        try:
            json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = getattr(exc, "msg", "nested too deeply")
            raise InputError(str(path), f"not valid JSON: {why}") from None
        raise InputError(str(path), "not a Label Studio export: expected a JSON list of tasks")
    tasks: list[Any] = []
    try:
        for ev in scan(io.BytesIO(text.encode("utf-8", "surrogatepass")), lambda p: p == ()):
            if not isinstance(ev, Element):
                continue
            where = f"task {len(tasks) + 1}"
            if ev.error is not None:
                problem(where, ev.error)
                tasks.append(None)
                continue
            try:
                tasks.append(orjson.loads(ev.raw))
            except orjson.JSONDecodeError as exc:
                problem(where, f"not valid JSON: {exc}")
                tasks.append(None)
    except ScanError as exc:
        if all(t is None for t in tasks):  # nothing readable before the damage
            raise InputError(str(path), f"not valid JSON: {exc}") from None
        problem(f"after task {len(tasks)}", f"the rest of the file is not valid JSON: {exc}")
    return tasks
