"""What deciding and verifying a text source's encoding costs, against plain decoding.

Builds a CSV of the real news corpus (replicated to ``--posts`` posts by bench/news_corpus.py;
the output says so) in UTF-8 and in cp1251, then measures, in this process, best of
``--repeat``:

* baseline: one strict incremental decode of the file in its known encoding (1 MB chunks);
* previous: what chatlens did before (issue 14): charset-normalizer on the first 1 MB when the
  file is not UTF-8, then one strict decode pass;
* resolve: :func:`chatlens.ingest.encoding.resolve` (sample decision + full verification);
* parse: the whole CSV importer (resolve + CSV rows + records), for scale.

Usage: nice -n 10 python bench/encoding.py [--posts 100000] [--repeat 3]
Target (issue 14): resolve stays well under half of a full CSV parse. It costs more than the
previous detection (it judges every megabyte instead of trusting one sample); measured on
2026-12-02 with 20,000 posts: 0.17 s on 16 MB UTF-8 (4.6x previous, 25% of the parse) and
0.19 s on 10 MB cp1251 (7.7x previous, 30% of the parse).
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.news_corpus import replicate
from chatlens.ingest.base import Member, ParseOptions, SourceInput
from chatlens.ingest.encoding import resolve
from chatlens.ingest.generic import GenericCsv


def build(folder: Path, posts: int) -> dict[str, Path]:
    jsonl = folder / "posts.jsonl"
    replicate(jsonl, posts)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["message_id", "chat", "date", "text", "author"])
    with jsonl.open(encoding="utf-8") as fh:
        for line in fh:
            p = json.loads(line)
            w.writerow([p["id"], p["chat"], p["date"], p["text"], p["author"]])
    text = out.getvalue()
    files = {"utf-8": folder / "posts-utf8.csv", "cp1251": folder / "posts-cp1251.csv"}
    files["utf-8"].write_bytes(text.encode("utf-8"))
    files["cp1251"].write_bytes(text.encode("cp1251", "replace"))  # emoji → "?"
    return files


def member(path: Path) -> Member:
    return Member(path.name, path.stat().st_size, lambda: path.open("rb"))


def plain_decode(path: Path, encoding: str) -> None:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)


def previous(path: Path) -> str:
    """The detection chatlens used before issue 14 (charset-normalizer, then a strict pass)."""
    from charset_normalizer import from_bytes

    enc = "utf-8"
    try:
        plain_decode(path, enc)
        return enc
    except UnicodeDecodeError:
        pass
    with path.open("rb") as fh:
        found = from_bytes(fh.read(1 << 20)).best()
    enc = found.encoding if found is not None else "utf-8"
    plain_decode(path, enc)
    return enc


def best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatlens-enc-") as tmp:
        files = build(Path(tmp), args.posts)
        print(f"corpus: the real news corpus replicated to {args.posts:,} posts "
              "(shifted ids), written as CSV")
        for encoding, path in files.items():
            m = member(path)
            size = path.stat().st_size / 2**20
            base = best(lambda: plain_decode(path, encoding), args.repeat)  # noqa: B023
            choice = resolve([m], ParseOptions())
            old_enc = previous(path)
            old = best(lambda: previous(path), args.repeat)  # noqa: B023
            res = best(lambda: resolve([m], ParseOptions()), args.repeat)  # noqa: B023
            src = SourceInput(path=str(path), members=[m])
            t0 = time.perf_counter()
            n = sum(1 for _ in GenericCsv().parse(src, ParseOptions()))
            parse = time.perf_counter() - t0
            print(f"{encoding:7} {size:7.1f} MB  decided {choice.encoding} ({choice.reason}); "
                  f"previously {old_enc}")
            print(f"        plain decode {base:6.2f} s ({size / base:6.1f} MB/s) | resolve "
                  f"{res:6.2f} s = {res / base:4.1f}x plain decode, {res / old:4.2f}x previous "
                  f"({old:5.2f} s) | full CSV parse "
                  f"{parse:6.2f} s, {n:,} records: resolve is {res / parse:.0%} of it")


if __name__ == "__main__":
    main()
