"""Place gazetteer cost on the real news corpus: compile time and ``find_places`` per message.

Usage: python bench/places.py [--baseline REF] [--repeat 3]

The baseline is ``chatlens/enrich/places.py`` as it was at git ``REF`` (default: the commit
before the gazetteer grew to cities and regions), loaded from ``git show`` into its own module,
so both gazetteers run in the same process on the same tokens and lemmas. Prints, for each: the
first-call compile time (gazetteer and lemma caches cleared, dictionaries loaded), the time of
``find_places`` over every post, how many posts pass the gazetteer-key filter, how many get a
place, precision and recall on the hand-checked posts of tests/fixtures/places_truth.json, and
the ratios new / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatlens.enrich import morph  # noqa: E402
from chatlens.enrich import places as new_places  # noqa: E402
from chatlens.enrich.lid import detect_batch  # noqa: E402
from chatlens.enrich.morph import analyze_batch  # noqa: E402
from chatlens.enrich.settings import EnrichSettings  # noqa: E402
from chatlens.enrich.text import prepare  # noqa: E402
from tests.places_eval import audited_hits, score, score_audit, truth_texts  # noqa: E402

BASELINE_REF = "642ed68"  # main before issue 14's gazetteer (countries and a few capitals)


def shared_dir() -> Path:
    env = os.environ.get("CHATLENS_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def corpus_texts() -> list[str]:
    d = shared_dir() / "corpora" / "ru_news_channels_2023_2024"
    if not d.is_dir():
        sys.exit(f"news corpus not found at {d}; set CHATLENS_SHARED_DATA")
    texts: list[str] = []
    for f in sorted(d.glob("*_messages.json")):
        texts.extend(str(m.get("text") or "") for m in json.loads(f.read_text("utf-8")))
    return texts


def baseline_module(ref: str) -> types.ModuleType:
    src = subprocess.run(["git", "show", f"{ref}:chatlens/enrich/places.py"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    mod = types.ModuleType("places_baseline")
    exec(compile(src, f"places@{ref}", "exec"), mod.__dict__)
    return mod


def measure(mod: Any, rows: list[tuple[list[str], list[str]]], repeat: int) -> dict[str, float]:
    compile_s = []
    for _ in range(repeat):
        mod.gazetteer.cache_clear()
        mod.gazetteer_keys.cache_clear()
        morph._CACHES.clear()  # cold lemma caches; the pymorphy3 dictionaries stay loaded
        t0 = time.perf_counter()
        mod.gazetteer_keys("fast")
        compile_s.append(time.perf_counter() - t0)
    keys = mod.gazetteer_keys("fast")
    find: Callable[[list[str], list[str], str], list[str]] = mod.find_places
    best = float("inf")
    found = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        found = sum(1 for toks, lems in rows if find(toks, lems, "fast"))
        best = min(best, time.perf_counter() - t0)
    passing = sum(1 for toks, lems in rows
                  if not (keys.isdisjoint(toks) and keys.isdisjoint(lems)))
    return {"compile_s": min(compile_s), "find_s": best, "passing": passing, "found": found,
            "keys": len(keys)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=BASELINE_REF)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    texts = corpus_texts()
    norms = [prepare(t, fold=False)[0] for t in texts]
    langs = [d[0] for d in detect_batch(norms, *_lid_args())]
    an = analyze_batch(norms, langs)
    rows = list(zip(an.tokens.to_pylist(), an.lemmas.to_pylist(), strict=True))
    n = len(rows)
    print(f"news corpus: {n} posts, {sum(len(r[0]) for r in rows)} tokens")
    baseline = baseline_module(args.baseline)
    base = measure(baseline, rows, args.repeat)
    new = measure(new_places, rows, args.repeat)
    for name, r in (("baseline " + args.baseline, base), ("this tree", new)):
        print(f"{name:>18}: compile {r['compile_s'] * 1e3:7.1f} ms, {r['keys']:5.0f} keys; "
              f"find_places {r['find_s'] / n * 1e6:6.2f} µs/post; "
              f"{r['passing']:5.0f} posts pass the key filter, {r['found']:5.0f} get a place")
    posts, hits = truth_texts(shared_dir()), audited_hits(shared_dir())
    for name, mod in (("baseline " + args.baseline, baseline), ("this tree", new_places)):
        s, a = score(mod.find_places, posts), score_audit(mod.find_places, hits)
        print(f"{name:>18}: {len(posts)} hand-checked posts: precision {s['precision']:.3f}, "
              f"recall {s['recall']:.3f} (tp {s['tp']}, fp {s['fp']}, fn {s['fn']}); "
              f"{len(hits)} audited new hits: {a['given']:.0f} given, "
              f"precision {a['precision']:.3f}")
    print(f"ratios this/baseline: compile {new['compile_s'] / base['compile_s']:.2f}x, "
          f"find_places {new['find_s'] / base['find_s']:.2f}x, "
          f"posts passing the filter {new['passing'] / base['passing']:.2f}x")


def _lid_args() -> tuple[Any, ...]:
    s = EnrichSettings()
    return s.languages, s.min_chars, s.lid_chars


if __name__ == "__main__":
    main()
