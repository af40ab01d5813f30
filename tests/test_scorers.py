"""Scorer internals that the fast paths rely on: start-position regex search, Arrow-backed
lemma batches (sliced, with nulls) and lexicon matching over them."""

from __future__ import annotations

import re
from itertools import pairwise

import pyarrow as pa
import pytest

from chatlens.code.scorers import Batch, RegexMatcher, build_lexicon
from chatlens.codebook.regexsafety import start_class

TEXTS = [
    "", "Z", "без Z на машине", "Stop it, sir", "ſtop s", "\u212ailo k", "ᲀ в", "STOP",
    "(?i)", "xZ nope", "#Z тег", "#V", "V-образный", "zов и zа",
    "Ziggy V", "КЗ", "ZZZ Z", "в #Zа", "кZ", "ZOV Zov zов", "#zа", "знак-Z", "Z-образный",
]
PATTERNS = [
    (r"(?<![\w\-])[ZV](?![\w\-])|#[ZV]\b|\bzов\b|\bzа\b", False),
    (r"z(?:ov|ов)", True),
    (r"(?<=#)[zv]", True),
    (r"ZZ|Z\b", False),
    (r"(?i)stop", False),  # inline flags: the whole pattern ignores case
    (r"x|(?i:stop)", False),  # scoped
    (r"stop|kilo|в", True),  # re's special case folds: ſ, the Kelvin sign, ᲀ
]


@pytest.mark.parametrize(("pattern", "ignore_case"), PATTERNS)
def test_regex_from_start_characters_equals_search(pattern: str, ignore_case: bool) -> None:
    rx = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    starts = start_class(pattern, ignore_case)
    assert starts, pattern
    batch = Batch(TEXTS, TEXTS, ["ru"] * len(TEXTS), [[] for _ in TEXTS])
    got = RegexMatcher("r", "yes", rx, "text", starts).score(batch)
    want = [m.group(0) if (m := rx.search(t)) else None for t in TEXTS]
    assert [h.matched[0] if h else None for h in got] == want


LEMMAS = [["не", "граница", "закрыть"], None, [], ["верхний", "ларс", "очередь"],
          ["граница"], ["нет", "очередь", "на", "граница"], ["очередь"]]


def _arrow_batch() -> Batch:
    arr = pa.array([["pad"], *LEMMAS, ["граница", "tail"]], pa.list_(pa.string()))
    sliced = pa.chunked_array([arr.slice(1, 3), arr.slice(4, len(LEMMAS) - 3)])
    n = len(LEMMAS)
    return Batch(["x"] * n, ["x"] * n, ["ru"] * n, sliced)


def test_arrow_batch_flat_codes_match_the_lists() -> None:
    b = _arrow_batch()
    assert b.lemmas == [x or [] for x in LEMMAS]
    offsets, codes, dictionary = _arrow_batch().flat_codes()
    flat = [dictionary[c].as_py() for c in codes.tolist()]
    assert [flat[a:z] for a, z in pairwise(offsets.tolist())] == [
        x or [] for x in LEMMAS]


def test_lexicon_on_arrow_and_on_lists_agree() -> None:
    lex = build_lexicon("l", "yes", [("граница",), ("верхний", "ларс"), ("очередь",)], ["ru"],
                        window=2, extra_negators=[], min_matches=1)
    want = lex.score(Batch(["x"] * len(LEMMAS), ["x"] * len(LEMMAS), ["ru"] * len(LEMMAS),
                           [x or [] for x in LEMMAS]))
    got = lex.score(_arrow_batch())
    assert got == want
    assert [h.matched if h else None for h in got] == [
        None, None, None, ("верхний ларс", "очередь"), ("граница",), ("граница",), ("очередь",)]


def reference_find(phrases: list[tuple[str, ...]], negators: set[str], window: int,
                   lemmas: list[str]) -> list[tuple[str, ...]]:
    """The lexicon rule on one message, written plainly: at each position the longest phrase
    that matches there, unless a negator is among the ``window`` lemmas before it."""
    found = []
    for i in range(len(lemmas)):
        if window and negators & set(lemmas[max(0, i - window):i]):
            continue
        for p in sorted(set(phrases), key=len, reverse=True):
            if tuple(lemmas[i:i + len(p)]) == p:
                found.append(p)
                break
    return found


def test_lexicon_matches_equal_the_plain_rule_on_random_messages() -> None:
    import random

    rng = random.Random(3)
    vocab = ["a", "b", "c", "d", "не", "нет", "x"]
    for trial in range(300):
        phrases = [tuple(rng.choice(vocab[:4]) for _ in range(rng.randint(1, 3)))
                   for _ in range(rng.randint(1, 5))]
        window = rng.choice([0, 1, 2, 3])
        min_matches = rng.choice([1, 1, 2])
        lex = build_lexicon("l", "yes", phrases, ["ru"], window, ["x"] if trial % 2 else [],
                            min_matches)
        msgs = [[rng.choice(vocab) for _ in range(rng.randint(0, 12))] for _ in range(40)]
        arr = pa.array([["pad"], *msgs], pa.list_(pa.string())).slice(1)  # offsets not at 0
        got = lex.score(Batch(["t"] * len(msgs), ["t"] * len(msgs), ["ru"] * len(msgs), arr))
        for m, hit in zip(msgs, got, strict=True):
            want = reference_find(phrases, set(lex.negators), window, m)
            expect = tuple(" ".join(p) for p in want) if len(want) >= min_matches else None
            assert (hit.matched if hit else None) == expect, (phrases, window, m)
