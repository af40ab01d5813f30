"""Language ID throughput on real texts, against baselines measured in the same run.

Usage: python bench/lid.py [--baseline-file OLD_LID.py] [--repeats 3]

Texts: the news corpus (``corpora/ru_news_channels_2023_2024``) and the WhatsApp exports' message
lines (Hebrew, English/Swahili), under ``$CHATLENS_SHARED_DATA`` or ``../shared/data``. Prints
the best of ``--repeats`` timings of :func:`chatlens.enrich.lid.detect_batch` and of
:func:`chatlens.enrich.text.prepare` (the normalisation every message already pays), and their
ratio. With ``--baseline-file`` (another version of ``lid.py``, e.g.
``git show main:chatlens/enrich/lid.py > /tmp/lid_main.py``) it times that one on the same
normalised texts too, interleaved, and prints new/old.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatlens.enrich import lid  # noqa: E402
from chatlens.enrich.settings import DEFAULT_LANGUAGES  # noqa: E402
from chatlens.enrich.text import prepare  # noqa: E402

_WA_LINE = re.compile(r"^\[?\d{1,2}[./]\d{1,2}[./]\d{2,4},? [^-\]]+[\]-] ?(?:[^:]+: )?(.*)$")


def shared() -> Path:
    env = os.environ.get("CHATLENS_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def load_texts(d: Path) -> list[str]:
    texts: list[str] = []
    for f in sorted((d / "corpora" / "ru_news_channels_2023_2024").glob("*.json")):
        texts.extend(str(m.get("text") or "") for m in json.loads(f.read_text("utf-8")))
    for f in sorted((d / "whatsapp").glob("*.txt")):  # message lines, roughly: enough to time
        for line in f.read_text("utf-8", errors="replace").splitlines():
            m = _WA_LINE.match(line.lstrip("\u200e\u200f"))
            texts.append(m.group(1) if m else line)
    return texts


def best(fn: Callable[[], object], repeats: int) -> float:
    out = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("lid_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-file", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    d = shared()
    if not d.is_dir():
        raise SystemExit(f"shared data not found at {d} (set CHATLENS_SHARED_DATA)")
    texts = load_texts(d)
    langs = DEFAULT_LANGUAGES
    t_prep = best(lambda: [prepare(t, fold=False) for t in texts], args.repeats)
    norms = [prepare(t, fold=False)[0] for t in texts]
    lid.detect_batch(norms[:2000], langs, 5, 300)  # load the model outside the timing
    t_new = best(lambda: lid.detect_batch(norms, langs, 5, 300), args.repeats)
    print(f"{len(texts):,} texts, languages {','.join(langs)}, best of {args.repeats}")
    print(f"prepare (baseline)   {t_prep:7.2f} s")
    print(f"detect_batch         {t_new:7.2f} s   {t_new / t_prep:.2f}x prepare")
    if args.baseline_file:
        old = load_module(args.baseline_file)
        old.detect_batch(norms[:2000], langs, 5, 300)
        t_old = t_new2 = float("inf")
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            t_old = min(t_old, best(lambda: old.detect_batch(norms, langs, 5, 300), 1))
            t_new2 = min(t_new2, best(lambda: lid.detect_batch(norms, langs, 5, 300), 1))
        print(f"{args.baseline_file.name:<20} {t_old:7.2f} s   new/old {t_new2 / t_old:.2f} "
              f"(interleaved: new {t_new2:.2f} s)")


if __name__ == "__main__":
    main()
