"""chatlens: measure what messaging-app communities say, with honest uncertainty.

The front door: :class:`Project` (open or create a project and run every operation on it),
:class:`Population` (the one filter on a measure's population) and the error tree of
:mod:`chatlens.errors`. ``Project`` and ``Population`` load on first use, so importing a pure
stage (``chatlens.estimate``, ``chatlens.enrich``, …) does not load the store or the importers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from chatlens.errors import (
    ChatlensError,
    ClaimsError,
    CodebookError,
    CollectError,
    EncodingError,
    InputError,
    ModelError,
    ProjectError,
    ProjectLockedError,
    UnknownFormatError,
    UnsafeArchiveError,
    UsageError,
)

if TYPE_CHECKING:
    from chatlens.project import Project
    from chatlens.store.frames import Population

__all__ = [
    "ChatlensError",
    "ClaimsError",
    "CodebookError",
    "CollectError",
    "EncodingError",
    "InputError",
    "ModelError",
    "Population",
    "Project",
    "ProjectError",
    "ProjectLockedError",
    "UnknownFormatError",
    "UnsafeArchiveError",
    "UsageError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "Project":
        from chatlens.project import Project

        return Project
    if name == "Population":
        from chatlens.store.frames import Population

        return Population
    raise AttributeError(f"module 'chatlens' has no attribute {name!r}")
