"""Scoring the gazetteer against hand-checked place ids of real posts (fixtures/places_truth.json).

The fixture holds ids only; the texts are read from ``../shared/data`` (their licences keep them
out of the repository). Used by tests/test_places.py and bench/places.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatlens.enrich import EnrichSettings
from chatlens.enrich.pipeline import enrich_text

TRUTH = Path(__file__).parent / "fixtures" / "places_truth.json"
Finder = Callable[[list[str], list[str], str], list[str]]


def _text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    return "".join(x if isinstance(x, str) else str(x.get("text", "")) for x in raw or [])


def truth_texts(shared: Path) -> list[tuple[str, set[str]]]:
    """(text, expected place ids) of every checked post, in fixture order."""
    items = json.loads(TRUTH.read_text("utf-8"))["items"]
    files = {name: _posts(shared / name) for name in {it["file"] for it in items}}
    return [(files[it["file"]][it["message_id"]], set(it["places"])) for it in items]


def _posts(path: Path) -> dict[int | str, str]:
    """Message id → text of a news-corpus file, a Telegram JSON export or a labelled parquet."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path, columns=["id", "content"]).to_pylist()
        return {r["id"]: r["content"] or "" for r in rows}
    doc = json.loads(path.read_text("utf-8"))
    msgs = doc["messages"] if isinstance(doc, dict) else doc
    return {int(m.get("message_id", m.get("id"))): _text(m.get("text")) for m in msgs}


def score(find: Finder, posts: list[tuple[str, set[str]]]) -> dict[str, float]:
    """Micro precision and recall of (post, place id) pairs, with their counts."""
    settings = EnrichSettings(places=False)
    tp = fp = fn = 0
    for text, expected in posts:
        row = enrich_text(text, settings)
        found = set(find(row["tokens"], row["lemmas"], "fast"))
        tp += len(found & expected)
        fp += len(found - expected)
        fn += len(expected - found)
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
            "tp": tp, "fp": fp, "fn": fn}


def audited_hits(shared: Path) -> list[tuple[str, str, bool]]:
    """(text, place id, whether the post names it) of the hand-checked new-gazetteer hits."""
    hits = json.loads(TRUTH.read_text("utf-8"))["new_hits"]
    texts = {name: _posts(shared / name) for name in {h["file"] for h in hits}}
    return [(texts[h["file"]][h["message_id"]], h["place"], h["correct"]) for h in hits]


def score_audit(find: Finder, hits: list[tuple[str, str, bool]]) -> dict[str, float]:
    """Of the audited pairs the finder still gives: the share that is correct; and the share of
    the correct pairs it gives."""
    settings = EnrichSettings(places=False)
    given = correct_given = correct = 0
    for text, pid, ok in hits:
        row = enrich_text(text, settings)
        found = pid in find(row["tokens"], row["lemmas"], "fast")
        given += found
        correct_given += found and ok
        correct += ok
    return {"precision": correct_given / max(given, 1), "recall": correct_given / max(correct, 1),
            "given": given}
