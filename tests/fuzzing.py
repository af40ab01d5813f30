"""Mutation fuzzing of every reader of untrusted files (used by the test suite and bench/fuzz.py).

``check(target, data, folder)`` feeds one input to one reader and says what happened. The only
exceptions allowed are chatlens's own errors with a message; every record an importer yields
must have the field types the store needs (so nothing fails later, in Arrow), and
``read = stored + duplicate + quarantined`` holds by construction because every item is a
Record or a Bad.
"""

from __future__ import annotations

import random
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatlens.errors import ChatlensError
from chatlens.ingest.base import Bad, ParseOptions, Record, SourceInput
from chatlens.ingest.discover import discover
from chatlens.ingest.registry import detect, get_importer

INT64 = 1 << 63
TOKENS = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\\x", b"\\u", b'\\ud800', b"\xff",
          b"\xc3", b"\x00", b"\n", b"\r\n", b"[" * 3000, b"{\"a\":" * 2000, b'"a,' * 500,
          b"9999999999999", b"-1e400", b"NaN", b"null", b"true", b"5", b'"date_unixtime": 5',
          b'"media_type": 5', b"<div>" * 300, b"</div>", b"<b>" * 3000, b"\xe2\x80\x8e",
          b"21/09/2022, 10:00 - ", b"[21/09/2022, 10:00:00] ", b"!!int abc", b"!!timestamp x",
          b"&a [*a]", b"\t", b"- ", b": ", b"=cmd|", b"\xef\xbb\xbf"]
#: the importer a target name stands for (None: whatever detection picks)
IMPORTERS = {"telegram-json": "telegram-json", "telegram-html": "telegram-html",
             "whatsapp": "whatsapp", "csv": "csv", "jsonl": "jsonl", "parquet": "parquet",
             "zip": None, "detect": None}


@dataclass(slots=True)
class Outcome:
    kind: str  # ok | refused (a chatlens error) | crash
    detail: str
    seconds: float


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """1-4 random edits: flip, insert a token, delete, duplicate or splice a range."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(buf)) if buf else 0
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = rng.choice(TOKENS)
        elif op == 2 and buf:
            del buf[pos:pos + rng.randint(1, 64)]
        elif op == 3 and buf:
            end = min(len(buf), pos + rng.randint(1, 256))
            buf[pos:pos] = buf[pos:end] * rng.randint(1, 8)
        elif op == 4 and pool:
            other = rng.choice(pool)
            start = rng.randint(0, len(other))
            buf[pos:pos] = other[start:start + rng.randint(1, 512)]
        else:
            buf[pos:pos + 1] = b""
    return bytes(buf)


def _check_record(item: Record) -> None:
    for name in ("message_id", "author_id", "author_name", "media", "reply_to",
                 "forwarded_from"):
        value = getattr(item, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"Record.{name} is {type(value).__name__}")
    if isinstance(item.entities, bytes):  # JSON as orjson writes it: UTF-8
        item.entities.decode("utf-8")
    elif item.entities is not None and not isinstance(item.entities, str):
        raise TypeError(f"Record.entities is {type(item.entities).__name__}")
    for name in ("text", "loc", "kind"):
        if not isinstance(getattr(item, name), str):
            raise TypeError(f"Record.{name} is not a string")
    if not isinstance(item.raw, str | bytes):  # bytes: as read, checked as UTF-8 on storage
        raise TypeError("Record.raw is neither text nor bytes")
    if not isinstance(item.chat.chat_id, str) or not (
            item.chat.title is None or isinstance(item.chat.title, str)) or not (
            item.chat.type is None or isinstance(item.chat.type, str)):
        raise TypeError("Record.chat has a non-string field")
    if item.ts_us is not None and (not isinstance(item.ts_us, int) or not
                                   -INT64 <= item.ts_us < INT64):
        raise OverflowError(f"Record.ts_us {item.ts_us!r} does not fit int64")
    for text in (item.text, item.author_name or "", item.chat.title or ""):
        text.encode("utf-8")  # lone surrogates cannot be stored


def _parse_all(source: SourceInput, target: str) -> int:
    fmt = IMPORTERS.get(target)
    importer = get_importer(fmt) if fmt else detect(source).importer
    n = 0
    for item in importer.parse(source, ParseOptions()):
        n += 1
        if isinstance(item, Record):
            _check_record(item)
        elif not isinstance(item, Bad):
            raise TypeError(f"parse yielded a {type(item).__name__}")
    return n


def _ingest_file(path: Path, target: str) -> str:
    n = 0
    for found in discover([path]):
        if isinstance(found, ChatlensError):
            raise found
        n += _parse_all(found, target)
    return f"{n} items"


def _codebook(path: Path, target: str) -> str:
    from chatlens.codebook import parse_codebook
    from chatlens.codebook.claims import parse_claims

    text = path.read_bytes().decode("utf-8", "replace")
    (parse_claims if target == "claims" else parse_codebook)(text, str(path))
    return "valid"


def _labels(path: Path, target: str) -> str:
    from chatlens.annotate import read_labels

    records, problems = read_labels(path, "fuzz")
    for p in problems:
        if not str(p):
            raise ValueError("a label problem without a message")
    for r in records:
        for v in (r.uid, r.measure, r.value, r.annotator, r.comment or ""):
            v.encode("utf-8")
        if r.span is not None and not all(-INT64 <= x < INT64 for x in r.span):
            raise OverflowError("span does not fit int64")
    return f"{len(records)} records, {len(problems)} problems"


SUFFIX = {"telegram-json": "result.json", "telegram-html": "messages.html",
          "whatsapp": "WhatsApp Chat with X.txt", "csv": "t.csv", "jsonl": "t.jsonl",
          "parquet": "t.parquet", "zip": "export.zip", "detect": "input.bin",
          "codebook": "codebook.yaml", "claims": "claims.yaml", "labels-csv": "labels.csv",
          "labels-jsonl": "labels.jsonl", "labels-labelstudio": "labels.json"}
RUNNERS: dict[str, Callable[[Path, str], str]] = {
    **{k: _ingest_file for k in IMPORTERS}, "codebook": _codebook, "claims": _codebook,
    "labels-csv": _labels, "labels-jsonl": _labels, "labels-labelstudio": _labels}


def _write_input(target: str, data: bytes, folder: Path) -> Path:
    """``data`` as the file the reader ``target`` opens (bytes that are no zip go in one)."""
    path = folder / SUFFIX[target]
    if target == "zip" and not data.startswith(b"PK"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("_chat.txt", data)
    else:
        path.write_bytes(data)
    return path


def check(target: str, data: bytes, folder: Path) -> Outcome:
    """Feed ``data`` to the reader ``target``; see the module docstring."""
    path = _write_input(target, data, folder)
    t0 = time.perf_counter()
    try:
        detail = RUNNERS[target](path, target)
        kind = "ok"
    except ChatlensError as exc:
        kind, detail = "refused", str(exc)
        if not detail.strip():
            kind, detail = "crash", f"{type(exc).__name__} without a message"
    except Exception as exc:
        kind, detail = "crash", f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        path.unlink(missing_ok=True)
    return Outcome(kind, detail, time.perf_counter() - t0)


def full_ingest(target: str, data: bytes, folder: Path) -> str:
    """Ingest ``data`` into a fresh project and check that its counts reconcile.

    The per-input ``check`` stops at the importer; this goes through the whole ingest path
    (store, dedupe, quarantine), so bench/fuzz.py runs it every so many inputs. Returns "" when
    all is well, else what went wrong."""
    import shutil

    from chatlens import Project

    if target not in IMPORTERS:
        return ""
    path = _write_input(target, data, folder)
    proj_dir = folder / "project"
    try:
        with Project.init(proj_dir) as proj:
            report = proj.ingest([path], format=IMPORTERS[target])
            status = proj.status()
        for s in report.sources:
            if s.read != s.stored + s.duplicate + s.quarantined:
                return (f"counts do not reconcile: read {s.read} != stored {s.stored} + "
                        f"duplicate {s.duplicate} + quarantined {s.quarantined}")
            if s.status == "failed" and not (s.error or "").strip():
                return "a failed source without an error message"
        stored = report.total("stored")
        messages = status.get("messages", stored)
        if isinstance(messages, int) and messages != stored:
            return f"the project holds {messages} messages but ingest stored {stored}"
        return ""
    except ChatlensError as exc:
        return "" if str(exc).strip() else f"{type(exc).__name__} without a message"
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        path.unlink(missing_ok=True)
        shutil.rmtree(proj_dir, ignore_errors=True)
