"""chatlens: measure what messaging-app communities say, with honest uncertainty."""

from __future__ import annotations

__version__ = "0.1.0"

from chatlens.errors import (
    ChatlensError,
    EncodingError,
    InputError,
    ProjectError,
    ProjectLockedError,
    UnknownFormatError,
    UnsafeArchiveError,
    UsageError,
)
from chatlens.project import Project

__all__ = [
    "ChatlensError",
    "EncodingError",
    "InputError",
    "Project",
    "ProjectError",
    "ProjectLockedError",
    "UnknownFormatError",
    "UnsafeArchiveError",
    "UsageError",
    "__version__",
]
