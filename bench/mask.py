"""PII masking time against message length: the patterns of chatlens <= 0.x (quadratic on
some inputs) and :func:`chatlens.textsafe.mask_pii` (linear), on adversarial and ordinary text.

Usage: python bench/mask.py [--old-max 40000]

The old patterns are only timed up to ``--old-max`` characters (at 100 KB one call took about
a minute); the new one up to 1 MB. Also times the name masking of service texts.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatlens.textsafe import mask_pii, mask_service_names

_OLD_PHONE = re.compile(r"(?<![\w+])\+?\d[\d\s().-]{7,}\d(?!\w)")
_OLD_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")


def old_mask(text: str) -> str:
    return _OLD_PHONE.sub("[phone]", _OLD_EMAIL.sub("[email]", text))


INPUTS = {
    "dotted words (a.a.a…)": "a.",
    "plus-digits (+1+1…)": "+1",
    "spaced digits (1 1 …)": "1 ",
    "ordinary text with a phone and an e-mail": "Пишите на ivan@mail.ru или +7 999 123-45-67. ",
}


def seconds(fn: object, text: str) -> float:
    t = time.perf_counter()
    fn(text)  # type: ignore[operator]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old-max", type=int, default=40_000)
    args = ap.parse_args()
    sizes = [10_000, 40_000, 100_000, 1_000_000]
    print(f"{'input':44} {'chars':>9} {'old s':>9} {'new s':>9} {'names s':>9}")
    for name, unit in INPUTS.items():
        for n in sizes:
            text = unit * (n // len(unit)) + "x"
            old = f"{seconds(old_mask, text):9.4f}" if n <= args.old_max else "        —"
            print(f"{name:44} {n:9,} {old} {seconds(mask_pii, text):9.4f} "
                  f"{seconds(lambda t: mask_service_names(t, {'a': 'b'}), text):9.4f}")


if __name__ == "__main__":
    main()
