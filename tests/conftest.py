"""Shared fixtures: a fresh project per test, and the real public data when present."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatlens import Project

FIXTURES = Path(__file__).parent / "fixtures"


def shared_data_dir() -> Path | None:
    env = os.environ.get("CHATLENS_SHARED_DATA")
    candidates = [Path(env)] if env else []
    root = Path(__file__).resolve().parents[1]
    candidates.append(root.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (or ``$CHATLENS_SHARED_DATA``); the test is skipped when absent."""
    d = shared_data_dir()
    if d is None:
        pytest.skip("real data not present: ../shared/data is absent (set CHATLENS_SHARED_DATA)")
    return d


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    p = Project.init(tmp_path / "proj")
    yield p
    p.close()


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
