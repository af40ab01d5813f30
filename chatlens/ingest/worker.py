"""A worker process that reads an ingest's batches into Arrow tables.

With it, ingest of a large export uses two cores: the main process reads the file, finds the
runs of whole records (:class:`~chatlens.ingest.base.Run`) and stores the tables of one batch
while the worker parses the next (JSON, records, pseudonyms, Arrow). The worker is a plain
``python -m chatlens.ingest.worker`` child, not :mod:`multiprocessing`, so that a user's script
is never imported again in it. Requests and replies alternate on its stdin and stdout, each a
pickle streamed in and out: the worker only writes while the main process waits to read.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import traceback
from contextlib import suppress
from typing import IO, TYPE_CHECKING, Any, NoReturn

from chatlens.errors import ChatlensError

if TYPE_CHECKING:
    import pyarrow as pa

    from chatlens.ingest.rows import Batch

Built = tuple[dict[str, "pa.Table"], tuple[int, int, int]]


def _send(fh: IO[bytes], obj: object) -> None:
    pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)  # streamed: no copy of it all
    fh.flush()


def _recv(fh: IO[bytes]) -> Any:
    """The next object; EOFError when the stream ends (or is cut off inside one)."""
    try:
        return pickle.load(fh)
    except pickle.UnpicklingError as exc:
        raise EOFError from exc


class TableWorker:
    """The worker process: :meth:`begin` a source, then :meth:`submit` a batch and take its
    :meth:`result` before submitting the next."""

    def __init__(self) -> None:
        # -P: not the current folder first on its path (a json.py there would shadow json),
        # but chatlens and its dependencies as this process found them
        path = os.pathsep.join(p for p in sys.path if p)
        # its own process group: a terminal's Ctrl-C is the main process's to handle
        group: dict[str, Any]
        if sys.platform == "win32":
            group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        else:
            group = {"process_group": 0}
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "chatlens.ingest.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path}, **group)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._out, self._in = self._proc.stdin, self._proc.stdout
        self._waiting = False  # a batch was submitted and its result not taken

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def begin(self, secret: bytes, tz: str, source_id: str, run_id: str) -> None:
        """Start a source: pseudonyms with the project's secret, naive times read in ``tz``
        (a result the last source left untaken, when it stopped early, is dropped). The worker
        does not reply: a process still starting reads it when it is ready."""
        if self._waiting:
            self._waiting = False
            self._reply()
        self._write(("begin", secret, tz, source_id, run_id))

    def submit(self, batch: Batch) -> None:
        assert not self._waiting, "take the last batch's result first"
        self._write(("batch", batch))
        self._waiting = True

    def result(self) -> Built:
        self._waiting = False
        built: Built = self._read()
        return built

    def close(self) -> None:
        """End the worker: it exits at the end of its requests, or, with a reply no one will
        take (an ingest interrupted), when writing it fails."""
        self._in.close()
        with suppress(OSError):
            self._out.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def _write(self, request: tuple[Any, ...]) -> None:
        try:
            _send(self._out, request)
        except OSError:  # a broken pipe: the worker is gone
            self._stopped()

    def _reply(self) -> tuple[str, Any]:
        try:
            reply: tuple[str, Any] = _recv(self._in)
        except EOFError:
            self._stopped()
        return reply

    def _read(self) -> Any:
        kind, value = self._reply()
        if kind == "error":
            raise value
        return value

    def _stopped(self) -> NoReturn:
        code = self._proc.wait()
        raise ChatlensError(f"the ingest worker process stopped (exit code {code}); what was "
                            "stored stays: rerun the same ingest to resume. Set "
                            "CHATLENS_INGEST_WORKER=off to read in one process.")


def main() -> None:
    """Serve requests until stdin ends."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the replies
    sys.stdout = sys.stderr
    gc.disable()  # as in the main process: parsing makes no cycles (see _young_gc_only)
    with suppress(OSError):  # the main process stopped listening (a broken pipe): it is done
        _serve(requests, replies)
    with suppress(OSError):
        replies.close()


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    from chatlens.ingest.rows import LocalTime, Pseudonymiser, batch_tables

    # a source's state, or why it could not begin (raised at its first batch: begin has no
    # reply, so that requests and replies keep alternating)
    state: tuple[str, str, Pseudonymiser, LocalTime] | Exception | None = None
    while True:
        try:
            request = _recv(requests)
        except EOFError:
            return
        if request[0] == "begin":
            _, secret, tz, source_id, run_id = request
            try:
                state = (source_id, run_id, Pseudonymiser(secret), LocalTime(tz))
            except Exception as exc:
                state = exc
            continue
        try:
            if isinstance(state, Exception):
                raise state
            assert state is not None, "a batch before its source began"
            source_id, run_id, pseudo, clock = state
            reply = batch_tables(source_id, run_id, request[1], pseudo, clock)
        except Exception as exc:  # raised again in the main process
            _send(replies, ("error", _portable(exc)))
        else:
            _send(replies, ("ok", reply))
        gc.collect(1)


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives a pickle round trip (some exception classes do not: their
    ``__init__`` takes other arguments than ``args``), else a RuntimeError with its traceback."""
    try:
        back = pickle.loads(pickle.dumps(exc))
    except Exception:
        back = None
    if isinstance(back, Exception):
        return exc
    trace = "".join(traceback.format_exception(exc))
    return RuntimeError(f"in the ingest worker process: {type(exc).__name__}: {exc}\n{trace}")


if __name__ == "__main__":
    main()
