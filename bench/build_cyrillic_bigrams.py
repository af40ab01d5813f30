"""Build ``chatlens/ingest/cyrillic_bigrams.json``: letter-pair log-probabilities of Russian,
which :mod:`chatlens.ingest.encoding` uses to tell real Cyrillic text from a reading in the wrong
code page. Trained on the first 12 channels (sorted by file name) of the CC BY 4.0 news corpus in
``../shared/data/corpora/ru_news_channels_2023_2024``; the other channels are left for tests.

    python bench/build_cyrillic_bigrams.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

LETTERS = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґў"
BOUNDARY = "_"  # anything that is not one of LETTERS
SMOOTH = 0.5
TRAIN_FILES = 12


def pairs(text: str) -> Counter[str]:
    seq = "".join(c if c in LETTERS else BOUNDARY for c in text.lower())
    seq = BOUNDARY + "".join(c for i, c in enumerate(seq)
                             if c != BOUNDARY or i == 0 or seq[i - 1] != BOUNDARY) + BOUNDARY
    return Counter(seq[i:i + 2] for i in range(len(seq) - 1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" /
                                              "data"))
    args = parser.parse_args()
    folder = Path(args.data) / "corpora" / "ru_news_channels_2023_2024"
    files = sorted(folder.glob("*.json"))[:TRAIN_FILES]
    counts: Counter[str] = Counter()
    posts = 0
    for path in files:
        for m in json.loads(path.read_text("utf-8")):
            if isinstance(m.get("text"), str):
                counts += pairs(m["text"])
                posts += 1
    alphabet = BOUNDARY + LETTERS
    logp: dict[str, float] = {}
    for a in alphabet:
        total = sum(counts[a + b] for b in alphabet) + SMOOTH * len(alphabet)
        for b in alphabet:
            logp[a + b] = round(math.log((counts[a + b] + SMOOTH) / total), 3)
    out = Path(__file__).resolve().parents[1] / "chatlens" / "ingest" / "cyrillic_bigrams.json"
    out.write_text(json.dumps({
        "what": "log P(next | letter) over Russian text; '_' is a word boundary",
        "source": "ru_news_channels_2023_2024 (github.com/NKTKLN/telegram-news-classifier, "
                  f"commit b8b03f1), first {TRAIN_FILES} channel files, {posts} posts",
        "licence": "CC BY 4.0 (the source corpus); derived letter statistics",
        "smoothing": SMOOTH, "alphabet": alphabet, "logp": logp,
    }, ensure_ascii=False, indent=0, sort_keys=True) + "\n", "utf-8")
    print(f"{out}: {len(logp)} pairs from {posts} posts in {len(files)} files")


if __name__ == "__main__":
    main()
