"""Errors raised by chatlens.

Every error derives from :class:`ChatlensError` and from the matching builtin, so callers can
catch either::

    ChatlensError (Exception)
    ├── UsageError (ValueError)            bad arguments or options
    ├── ProjectError (RuntimeError)        no project, wrong schema version
    │   └── ProjectLockedError             another process holds the project's writer lock
    │       └── ProjectBusy                (dashboard) the project is being written: retry
    ├── InputError (ValueError)            an input file that cannot be read at all
    │   ├── UnknownFormatError             no importer recognises the file
    │   ├── EncodingError                  text that is not in the declared/detected encoding
    │   └── UnsafeArchiveError             zip with path traversal or a huge expansion ratio
    ├── CodebookError (ValueError)         a codebook with problems, each with its place
    │   └── ClaimsError                    a claims file with problems
    ├── ModelError (ValueError)            a saved model missing, damaged or altered
    └── CollectError (RuntimeError)        a collection cannot start or go on
        └── CollectAuthError               no usable session and no terminal to log in from

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


class CodebookError(ChatlensError, ValueError):
    """A codebook with problems; ``problems`` lists (path, line, message)."""

    def __init__(self, source: str, problems: list[tuple[str, int | None, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"  {path}{f' (line {line})' if line else ''}: {msg}"
                 for path, line, msg in problems]
        n = len(problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''} in the codebook:\n"
                         + "\n".join(lines))


class ClaimsError(CodebookError):
    """A claims file with problems (same shape as codebook problems)."""


class ModelError(ChatlensError, ValueError):
    """A saved model is missing, damaged, altered or of an unsupported format."""


class CollectError(ChatlensError, RuntimeError):
    """A collection cannot start or go on; nothing half-written is left behind."""


class CollectAuthError(CollectError):
    """There is no usable login session and no interactive terminal to create one."""
