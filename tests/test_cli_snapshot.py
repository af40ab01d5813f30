"""The CLI's machine-readable answers on the demo project, pinned: a refactoring that changes a
number, a key or a message shows up here as a readable diff. Regenerate deliberately with
``CHATLENS_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_cli_snapshot.py``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatlens.demo import run_demo

pytestmark = pytest.mark.slow
SNAPSHOT = Path(__file__).parent / "snapshots" / "cli_demo.json"
COMMANDS = [
    ["status"],
    ["samples"],
    ["codebook", "show"],
    ["estimate", "--measure", "border_crossing"],
    ["estimate", "--measure", "border_crossing", "--by", "chat"],
    ["estimate", "--measure", "war_stance"],
    ["estimate", "--measure", "border_crossing", "--split", "2022-09-21"],
    ["evidence", "--measure", "border_crossing", "--value", "yes", "--limit", "3"],
    ["claims", "check", "builtin:exodus-2022"],
    ["agreement"],
    ["search", "граница", "--limit", "3"],
]
#: Values that differ between runs (ids, times, paths, keyed pseudonyms) and are replaced
#: before comparing.
VOLATILE = {"run_id", "created", "checked", "sample_id", "seed", "added", "started", "finished",
            "path", "project", "source_path", "hash", "frame_digest", "author_key"}


def _clean(x: Any, root: str) -> Any:
    if isinstance(x, dict):
        return {k: "<volatile>" if k in VOLATILE else _clean(v, root) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v, root) for v in x]
    if isinstance(x, float):
        return round(x, 9)
    if isinstance(x, str):
        x = x.replace(root, "<project>")
        return re.sub(r"(audit|train|reference)-([a-z_]+)-[0-9a-f]{6}", r"\1-\2-<id>", x)
    return x


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("snap") / "demo"
    run_demo(root, n_messages=200, seed=7)
    out = {}
    for args in COMMANDS:
        res = subprocess.run([sys.executable, "-m", "chatlens.cli", *args, "--json",
                              "--project", str(root)], capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, (args, res.stderr)
        out[" ".join(args)] = _clean(json.loads(res.stdout), str(root))
    return out


def test_cli_outputs_on_the_demo_match_the_snapshot(outputs: dict[str, Any]) -> None:
    if os.environ.get("CHATLENS_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(outputs, ensure_ascii=False, indent=1, sort_keys=True)
                            + "\n", encoding="utf-8")
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing: regenerate it (see the module docstring)"
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    for key in COMMANDS:
        k = " ".join(key)
        assert outputs[k] == expected[k], k
