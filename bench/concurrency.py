"""Readers against a writer, with real processes; run it with any chatlens on PYTHONPATH to compare.

    PYTHONPATH=. python bench/concurrency.py                  # this checkout
    PYTHONPATH=/path/to/old python bench/concurrency.py       # e.g. before issue 14

Seeds a demo project (``chatlens demo``-style, coded), then, while a writer process holds the
project after committing a batch (as ``ingest``/``code`` do between batches), runs ``status``,
``label import`` and dashboard pages (``chatlens serve`` in its own process); then runs
``ingest`` while two clients browse the dashboard at ~5 requests/s each. Prints one JSON line per
scenario: exit codes, HTTP statuses, seconds. ``--publish-mb`` also times the snapshot copy a
writer makes on close, for a file of that many MB.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HOLDER = """
import sys
from chatlens import Project
p = Project.open(sys.argv[1])
p.ingest([sys.argv[2]], format="jsonl")
print("written", flush=True)
sys.stdin.read()
p.close()
"""


def cli(*args: str, env: dict[str, str]) -> tuple[int, float, str]:
    began = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "chatlens.cli", *args], capture_output=True,
                         text=True, env=env)
    return out.returncode, round(time.monotonic() - began, 2), out.stderr.strip()[-160:]


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def jsonl(path: Path, n: int, chat: str) -> Path:
    path.write_text("".join(json.dumps({"text": f"сообщение {i}", "chat": chat,
                                        "ts": "2022-10-01T10:00:00Z", "author": f"a{i % 7}",
                                        "message_id": str(i)}) + "\n" for i in range(n)),
                    encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--publish-mb", type=int, default=0)
    args = ap.parse_args()
    env = {**os.environ}
    tmp = Path(tempfile.mkdtemp(prefix="chatlens-concur-"))
    root = tmp / "proj"
    from chatlens.demo import run_demo

    run_demo(root, n_messages=150, seed=7)
    from chatlens import Project

    with Project.open(root) as proj:
        proj.code("builtin:exodus-2022")
        uid = proj.messages().column("uid")[0].as_py()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "chatlens.cli", "serve", "--port",
                               str(port), "--project", str(root)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            get(url + "/")
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1.5)  # the dashboard lets go of an idle connection
    try:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root),
                                   str(jsonl(tmp / "a.jsonl", 50, "held"))], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "written"
        labels = tmp / "labels.csv"
        labels.write_text(f"uid,measure,value\n{uid},border_crossing,no\n", encoding="utf-8")
        during = {
            "status": cli("status", "--json", "--project", str(root), env=env),
            "label_import": cli("label", "import", str(labels), "--project", str(root),
                                env={**env, "CHATLENS_LOCK_WAIT": "2"}),
            "pages": {p: get(url + p) for p in ("/", "/measures", "/annotate")},
        }
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait()
        print(json.dumps({"scenario": "readers while a writer holds the project", **during}))

        stop = threading.Event()
        codes: list[int] = []

        def browse() -> None:
            pages = ["/", "/measures", "/evidence?measure=border_crossing&value=yes"]
            i = 0
            while not stop.is_set():
                codes.append(get(url + pages[i % len(pages)]))
                i += 1
                stop.wait(0.2)

        threads = [threading.Thread(target=browse) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1)
        result = cli("ingest", str(jsonl(tmp / "b.jsonl", 30, "browsed")), "--format", "jsonl",
                     "--project", str(root), env=env)
        stop.set()
        for t in threads:
            t.join()
        print(json.dumps({"scenario": "ingest while browsing ~10 requests/s",
                          "ingest": result, "http": sorted(set(codes)),
                          "requests": len(codes)}))
    finally:
        server.terminate()
        server.wait()
    if args.publish_mb:
        from chatlens.store import snapshot

        big = tmp / "big"
        big.mkdir()
        with open(big / "chatlens.duckdb", "wb") as fh:
            for _ in range(args.publish_mb):
                fh.write(os.urandom(1 << 20))
        began = time.monotonic()
        snapshot.publish(big)
        print(json.dumps({"scenario": "snapshot publish", "mb": args.publish_mb,
                          "seconds": round(time.monotonic() - began, 2)}))


if __name__ == "__main__":
    main()
