"""Errors raised by chatlens.

Every error derives from :class:`ChatlensError` and from the matching builtin, so callers can
catch either::

    ChatlensError (Exception)
    ├── UsageError (ValueError)            bad arguments or options
    ├── ProjectError (RuntimeError)        no project, wrong schema version
    │   └── ProjectLockedError             another process holds the project's writer lock
    └── InputError (ValueError)            an input file that cannot be read at all
        ├── UnknownFormatError             no importer recognises the file
        ├── EncodingError                  text that is not in the declared/detected encoding
        └── UnsafeArchiveError             zip with path traversal or a huge expansion ratio

Messages are full sentences that say what to do next; the CLI prints them on one line.
"""

from __future__ import annotations


class ChatlensError(Exception):
    """Root of all chatlens errors."""


class UsageError(ChatlensError, ValueError):
    """The caller passed invalid arguments or options."""


class ProjectError(ChatlensError, RuntimeError):
    """The project directory is missing, damaged or of an unsupported version."""


class ProjectLockedError(ProjectError):
    """Another process is writing to the project."""


class InputError(ChatlensError, ValueError):
    """An input cannot be read at all; nothing from it was stored."""

    def __init__(self, path: str, message: str, position: str | None = None) -> None:
        self.path = path
        self.position = position
        where = f"{path}" + (f" ({position})" if position else "")
        super().__init__(f"{where}: {message}")


class UnknownFormatError(InputError):
    """No importer recognises the input."""


class EncodingError(InputError):
    """The input is not valid text in the expected encoding."""


class UnsafeArchiveError(InputError):
    """An archive that could escape its folder or expand far beyond its size."""
