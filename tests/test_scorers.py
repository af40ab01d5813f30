"""Scorer internals that the fast paths rely on: start-position regex search, Arrow-backed
lemma batches (sliced, with nulls) and lexicon matching over them."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from chatlens.code.scorers import Batch, RegexMatcher, build_lexicon
from chatlens.regexsafety import start_class

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


def test_arrow_batch_positions_and_rows_match_the_lists() -> None:
    b = _arrow_batch()
    assert b.lemmas == [x or [] for x in LEMMAS]
    fresh = _arrow_batch()
    assert [fresh.lemma_row(i) for i in range(len(LEMMAS))] == [x or [] for x in LEMMAS]
    assert fresh.positions(frozenset({"граница", "очередь"})) == {
        0: [1], 3: [2], 4: [0], 5: [1, 3], 6: [0]}
    assert fresh.positions(frozenset({"missing"})) == {}
    assert fresh.positions(frozenset()) == {}


def test_lexicon_on_arrow_and_on_lists_agree() -> None:
    lex = build_lexicon("l", "yes", [("граница",), ("верхний", "ларс"), ("очередь",)], ["ru"],
                        window=2, extra_negators=[], min_matches=1)
    want = lex.score(Batch(["x"] * len(LEMMAS), ["x"] * len(LEMMAS), ["ru"] * len(LEMMAS),
                           [x or [] for x in LEMMAS]))
    got = lex.score(_arrow_batch())
    assert got == want
    assert [h.matched if h else None for h in got] == [
        None, None, None, ("верхний ларс", "очередь"), ("граница",), ("граница",), ("очередь",)]
