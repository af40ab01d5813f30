"""Property-based fuzzing (Hypothesis), the test suite's small budget of bench/fuzz.py: every
importer, the codebook and claims loaders and the label readers, fed edited copies of small
seeds (and, for the loaders, arbitrary text), give records or chatlens errors with a message,
never another exception, and the full ingest path reconciles its counts."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import RUNNERS, check, full_ingest, mutate

_TG = (b'{"name": "X", "type": "public_channel", "id": 7, "messages": [{"id": 1, "type": '
       b'"message", "date": "2022-09-21T10:00:00", "date_unixtime": "1663754400", "from": "a",'
       b' "from_id": "user1", "text": ["hi ", {"type": "bold", "text": "b"}], "text_entities":'
       b' [{"type": "plain", "text": "hi "}]}, {"id": 2, "type": "service", "date": '
       b'"2022-09-21T10:01:00", "actor": "a", "action": "pin_message", "text": ""}]}')
_WA = "21/09/2022, 10:00 - Анна: Привет\n21/09/2022, 10:01 - Борис: как дела?\nещё строка\n"
SEEDS: dict[str, bytes] = {
    "telegram-json": _TG, "detect": _TG,
    "telegram-html": ('<div class="message default clearfix" id="message1"><div class="body">'
                      '<div class="pull_right date details" title="21.09.2022 10:00:00 UTC+03:00">'
                      '10:00</div><div class="from_name">Анна</div><div class="text">Привет'
                      '</div></div></div>').encode(),
    "whatsapp": _WA.encode(), "zip": _WA.encode(),
    "csv": "text,date,author\nПривет,2022-09-21T10:00:00,a\n\"x, \"\"y\"\"\",5,b\n".encode(),
    "jsonl": b'{"text": "a", "ts": 1663754400}\n{"text": "b", "author": "x"}\n',
    "codebook": b"name: x\nversion: 1\nlanguages: [ru]\nmeasures:\n  - id: m\n    question: q?\n"
                b"    labels: [yes, no]\n    lexicon: {ru: [a]}\n",
    "claims": b"claims:\n  - id: c\n    measure: m\n    statement: share exceeds\n"
              b"    compare: {op: '>', value: 0.2}\n",
    "labels-csv": b"uid,measure,value,annotator\nu1,m,yes,a\nu2,m,no,a\n",
    "labels-jsonl": b'{"uid": "u1", "measure": "m", "value": "yes", "span": [0, 2]}\n',
    "labels-labelstudio": b'[{"data": {"uid": "u1"}, "annotations": [{"result": [{"type": '
                          b'"choices", "from_name": "m", "value": {"choices": ["yes"]}}]}]}]',
}
POOL = list(SEEDS.values())


def _run(target: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        res = check(target, data, Path(tmp))
    assert res.kind != "crash", (target, res.detail, data[:300])
    assert res.seconds < 5, (target, res.seconds, data[:300])


@pytest.mark.parametrize("target", sorted(SEEDS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_edited_seeds_give_records_or_chatlens_errors(target: str, seed: int) -> None:
    assert target in RUNNERS
    _run(target, mutate(SEEDS[target], random.Random(seed), POOL))


@pytest.mark.parametrize("target", ["codebook", "claims", "labels-csv", "labels-jsonl",
                                    "csv", "jsonl", "whatsapp"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=400))
def test_arbitrary_text_gives_records_or_chatlens_errors(target: str, text: str) -> None:
    _run(target, text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("target", ["telegram-json", "whatsapp", "csv", "jsonl"])
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_edited_seeds_ingested_in_full_reconcile(target: str, seed: int) -> None:
    data = mutate(SEEDS[target], random.Random(seed), POOL)
    with tempfile.TemporaryDirectory() as tmp:
        assert full_ingest(target, data, Path(tmp)) == "", data[:300]
