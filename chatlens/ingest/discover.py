"""Turn the paths a user names into sources: files, folders, archives.

A Telegram HTML export's pages (``messages.html``, ``messages2.html``, …) become one source so
that "joined" messages keep their sender across page breaks. Archives are checked before anything
is read: no member may escape the archive's folder or expand far beyond its compressed size.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, cast

from chatlens.errors import InputError, UnsafeArchiveError
from chatlens.ingest.base import Member, SourceInput

#: Extensions looked at inside folders and archives; anything else (photos, videos) is media.
DATA_EXTENSIONS = {".json", ".html", ".txt", ".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".db"}
MAX_RATIO = 100  # uncompressed / compressed for one archive member
RATIO_FLOOR = 8 * 1024 * 1024  # members smaller than this are never flagged for ratio
MAX_ARCHIVE_TOTAL = 16 * 1024**3

_PAGE = re.compile(r"^messages(\d*)\.html$")


def page_number(name: str) -> int | None:
    """1 for ``messages.html``, N for ``messagesN.html``, None for anything else."""
    m = _PAGE.match(PurePosixPath(name).name)
    if not m:
        return None
    return int(m.group(1) or 1)


def _file_member(path: Path, name: str | None = None) -> Member:
    def opener() -> IO[bytes]:
        return path.open("rb")

    return Member(name=name or path.name, size=path.stat().st_size, opener=opener)


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
               RuntimeError, ValueError, KeyError)


class _Archive:
    """One open archive shared by all its members: its directory is read once, not per open
    (opening each of N members through a fresh ``ZipFile`` was quadratic in N)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None

    def zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip


class _ZipMemberReader:
    """A file object over one archive member; damage shows up as :class:`InputError`."""

    def __init__(self, archive: _Archive, info: zipfile.ZipInfo) -> None:
        self._name = f"{archive.path}!{info.filename}"
        try:
            self._fh = archive.zip().open(info)
        except _ZIP_ERRORS as exc:
            raise self._damaged(exc) from None

    def _damaged(self, exc: BaseException) -> InputError:
        why = str(exc) or type(exc).__name__
        return InputError(self._name, f"the archive member cannot be read ({why}); re-export "
                          "or re-download the archive.")

    def read(self, n: int = -1) -> bytes:
        try:
            return self._fh.read(n)
        except _ZIP_ERRORS as exc:
            raise self._damaged(exc) from None

    def readline(self, limit: int = -1) -> bytes:
        try:
            return self._fh.readline(limit)
        except _ZIP_ERRORS as exc:
            raise self._damaged(exc) from None

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _ZipMemberReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_archive(path: Path) -> list[zipfile.ZipInfo]:
    """The archive's data members, or :class:`UnsafeArchiveError` if it is unsafe to read."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except _ZIP_ERRORS as exc:
        why = str(exc) or type(exc).__name__
        raise InputError(str(path), f"not a readable zip archive ({why}); re-export or "
                         "re-download it.") from None
    total = 0
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise UnsafeArchiveError(
                str(path), f"member {name!r} points outside the archive; refusing to read it."
            )
        total += info.file_size
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UnsafeArchiveError(
                str(path),
                f"member {name!r} expands {info.file_size // max(info.compress_size, 1)}x "
                f"({info.file_size} bytes); refusing a likely zip bomb.",
            )
    if total > MAX_ARCHIVE_TOTAL:
        raise UnsafeArchiveError(str(path), f"archive expands to {total} bytes; refusing.")
    return [i for i in infos if i.filename and not i.is_dir()]  # a nameless member holds no file


def _archive_sources(path: Path) -> list[SourceInput]:
    infos = [i for i in check_archive(path) if PurePosixPath(i.filename).suffix.lower()
             in DATA_EXTENSIONS and not PurePosixPath(i.filename).name.startswith(".")]
    if not infos:
        raise InputError(str(path), "the archive holds no chat export (.txt, .json, .html, …).")

    archive = _Archive(path)

    def member(info: zipfile.ZipInfo) -> Member:
        return Member(
            name=f"{path.name}!{info.filename}",
            size=info.file_size,
            opener=lambda: cast(IO[bytes], _ZipMemberReader(archive, info)),
        )

    pages = sorted((i for i in infos if page_number(i.filename)), key=lambda i: (
        str(PurePosixPath(i.filename).parent), page_number(i.filename) or 0))
    sources: list[SourceInput] = []
    by_dir: dict[str, list[zipfile.ZipInfo]] = {}
    for info in pages:
        by_dir.setdefault(str(PurePosixPath(info.filename).parent), []).append(info)
    for folder, group in by_dir.items():
        sources.append(SourceInput(path=f"{path}!{folder}", members=[member(i) for i in group],
                                   hint="telegram-html"))
    for info in infos:
        if page_number(info.filename) is None:
            sources.append(SourceInput(path=f"{path}!{info.filename}", members=[member(info)],
                                       explicit=len(infos) == 1))
    return sources


def _page_group(folder: Path, files: list[Path]) -> SourceInput:
    files = sorted(files, key=lambda p: page_number(p.name) or 0)
    return SourceInput(path=str(folder), members=[_file_member(p) for p in files],
                       hint="telegram-html")


def discover(paths: list[str | Path]) -> Iterator[SourceInput | InputError]:
    """Yield one :class:`SourceInput` per logical export, or the error that stopped a path."""
    loose_pages: dict[Path, list[Path]] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            yield InputError(str(path), "no such file or folder.")
            continue
        if path.is_dir():
            yield from _walk(path)
        elif page_number(path.name):
            loose_pages.setdefault(path.parent, []).append(path)
        elif path.suffix.lower() == ".zip":
            try:
                yield from _archive_sources(path)
            except InputError as exc:
                yield exc
        else:
            yield SourceInput(path=str(path), members=[_file_member(path)])
    for folder, files in loose_pages.items():
        yield _page_group(folder, files)


def _walk(root: Path) -> Iterator[SourceInput | InputError]:
    found = False
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir())]):
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        pages = [p for p in files if page_number(p.name)]
        if pages:
            found = True
            yield _page_group(folder, pages)
        for p in files:
            if page_number(p.name) is not None:
                continue
            suffix = p.suffix.lower()
            if suffix == ".zip":
                found = True
                try:
                    yield from _archive_sources(p)
                except InputError as exc:
                    yield exc
            elif suffix in DATA_EXTENSIONS and p.name != "export_results.html":
                found = True
                yield SourceInput(path=str(p), members=[_file_member(p)], explicit=False)
    if not found:
        yield InputError(str(root), "the folder holds no chat export (.txt, .json, .html, …).")
