"""Build the shipped starter model ``hostility-ru`` (a dev script: it reads ../shared/data).

Trained ONLY on data whose licence allows shipping (``ship: yes`` in ../shared/data/README.md):

* ``labeled/ru_vk_toxicity/russian_distorted_toxicity.tsv`` — Russian Distorted Toxicity,
  Alla Gorbunova (HSE), MIT; VK comments, ``toxicity`` 0/1 (the raw, possibly distorted text);
* ``labeled/ru_abusive_tweets/out.csv`` and ``out_troll.csv`` — Russian Abusive Language,
  Sariellee/Russan-Hate-speech-Recognition, CC BY 4.0; tweets, ``hate_speech`` 0–3
  (1–3 → ``yes``).

Usage: ``python bench/build_hostility_model.py [--data ../shared/data] [--out chatlens/models/
hostility-ru]``. The artefact is committed; rerun only to rebuild it.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatlens.train import FeatureSpec, train_model  # noqa: E402

ATTRIBUTION = """\
Trained only on openly licensed data that allows redistribution of derived models:

- **Russian Distorted Toxicity** — Alla Gorbunova (HSE University), 3,000 VK comments collected
  on 2022-02-14 from the public groups of Meduza, Lentach and Dozhd, annotated for toxicity and
  distorted spelling. MIT licence. https://github.com/alla-g/toxicity-detection-thesis
  (`toxicity_corpus/russian_distorted_toxicity.tsv`, commit 6511593).
- **Russian Abusive Language** (Russian hate-speech recognition data) — Sariellee et al.,
  tweets manually labelled with hate-speech level 0–3 (levels 1–3 used as `yes`). Creative
  Commons Attribution 4.0 International (CC BY 4.0).
  https://github.com/Sariellee/Russan-Hate-speech-Recognition
  (`data/processed_separate/out.csv`, `out_troll.csv`, commit a906e30).

The model (weights derived from these data) is distributed under chatlens' licence with this
attribution; the data themselves are not included."""

LIMITS = [
    "Trained on *toxicity / abusive language* labels (insults, obscenity, hate speech), not on "
    "the exodus codebook's `host_hostility` question: it flags rude or abusive messages whatever "
    "their target, and misses polite contempt. Use it as a starting scorer and retrain on your "
    "own audit labels.",
    "Small training set (about 4,200 texts) from VK news comments (Feb 2022) and tweets "
    "(2010s); Telegram chat language, Ukrainian and surzhyk are out of domain.",
    "Obscene words that are used as intensifiers without hostility (common in chats) are "
    "often scored as hostile.",
]


def load(data: Path) -> tuple[list[str], list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    origins: list[str] = []
    seen: set[str] = set()

    def add(text: str, hostile: bool, origin: str) -> None:
        t = (text or "").strip()
        if t and t not in seen:
            seen.add(t)
            texts.append(t)
            labels.append("yes" if hostile else "no")
            origins.append(origin)

    vk = data / "labeled" / "ru_vk_toxicity" / "russian_distorted_toxicity.tsv"
    with vk.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            add(row["comments"], row["toxicity"].strip() == "1", "ru_vk_toxicity (MIT)")
    for name in ("out.csv", "out_troll.csv"):
        with (data / "labeled" / "ru_abusive_tweets" / name).open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                add(row["text"], int(row["hate_speech"]) >= 1, "ru_abusive_tweets (CC BY 4.0)")
    return texts, labels, origins


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("CHATLENS_SHARED_DATA") or str(ROOT.parent / "shared" / "data")
    ap.add_argument("--data", default=default)
    ap.add_argument("--out", default=str(ROOT / "chatlens" / "models" / "hostility-ru"))
    args = ap.parse_args()
    texts, labels, origins = load(Path(args.data))
    model = train_model(texts, labels, measure="hostility", labels_order=["yes", "no"],
                        positive="yes", cv=5, seed=0, origins=origins,
                        spec=FeatureSpec(min_df=2, char_bits=20, word_bits=18),
                        notes={"attribution": ATTRIBUTION, "limits": LIMITS})
    model.save(args.out)
    size = sum(p.stat().st_size for p in Path(args.out).iterdir())
    m = model.metrics
    print(f"hostility-ru: {len(texts)} texts, chosen {m['chosen']} {m['candidates']}, "
          f"macro F1 {m['macro_f1']:.3f}, F1(yes) {m['per_class']['yes']['f1']:.3f}, "
          f"ECE {m['ece']:.3f}, {size / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
