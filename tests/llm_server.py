"""An in-process HTTP server speaking OpenAI chat-completions JSON, for testing LLM scorers.

A fake "model" answers from the message text: a text containing one of ``positive_words`` gets
the first label with probability ``p_hit``, any other the second label with ``p_miss``, with
log-probabilities of the label token in ``logprobs.content[].top_logprobs``. Marker words in a
message trigger failures:

- ``MALFORMED``: the content is never JSON; ``BADLABEL``: the label is never one of the labels;
- ``FLAKY``: the first answer for the message is not JSON, the next is fine;
- ``RATELIMIT``: the first request gets 429 with ``Retry-After: 0``; ``ERROR500``: the first 500;
- ``SLOW``: the first request sleeps past the client's timeout; ``BROKENBODY``: the first
  response body is not JSON at all.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLlm:
    def __init__(self, positive_words: tuple[str, ...] = ("границ", "border"),
                 p_hit: float = 0.9, p_miss: float = 0.8, logprobs: bool = True,
                 slow_seconds: float = 1.0, fail_after: int | None = None) -> None:
        self.positive_words, self.p_hit, self.p_miss = positive_words, p_hit, p_miss
        self.logprobs, self.slow_seconds, self.fail_after = logprobs, slow_seconds, fail_after
        self.requests: list[dict[str, Any]] = []
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeLlm:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, headers, payload = fake.respond(self.path, body)
                if status == -1:  # too slow: the client times out before this
                    time.sleep(fake.slow_seconds)
                    status = 200
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        text = body["messages"][-1]["content"]
        with self.lock:
            self.requests.append(body)
            self.seen[text] += 1
            first = self.seen[text] == 1
            total = len(self.requests)
        if path != "/v1/chat/completions":
            return 404, {}, {"error": {"message": "not found"}}
        if self.fail_after is not None and total > self.fail_after:
            return 500, {}, {"error": {"message": "server overloaded"}}
        if "RATELIMIT" in text and first:
            return 429, {"Retry-After": "0"}, {"error": {"message": "rate limited"}}
        if "ERROR500" in text and first:
            return 500, {}, {"error": {"message": "boom"}}
        if "SLOW" in text and first:
            return -1, {}, self._completion(body, text)
        if "BROKENBODY" in text and first:
            return 200, {}, b"<html>gateway error</html>"
        return 200, {}, self._completion(body, text, first)

    def _completion(self, body: dict[str, Any], text: str, first: bool = True) -> dict[str, Any]:
        schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {})
        labels = schema.get("properties", {}).get("label", {}).get("enum") or ["yes", "no"]
        hit = any(w in text.lower() for w in self.positive_words)
        label, p = (labels[0], self.p_hit) if hit else (labels[1], self.p_miss)
        other = labels[1] if hit else labels[0]
        content = json.dumps({"label": label})
        if "MALFORMED" in text or ("FLAKY" in text and first):
            content = "I think the answer is yes"
        elif "BADLABEL" in text:
            content = json.dumps({"label": "maybe"})
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}
        if self.logprobs and body.get("logprobs") and content.startswith('{"label": "'):
            tokens = ['{"', "label", '":', ' "', label, '"}']
            lp = []
            for t in tokens:
                top = [{"token": t, "logprob": 0.0}]
                if t == label:
                    top = [{"token": label, "logprob": math.log(p)},
                           {"token": other, "logprob": math.log(1 - p)}]
                lp.append({"token": t, "logprob": top[0]["logprob"], "top_logprobs": top})
            choice["logprobs"] = {"content": lp}
        return {"id": "chatcmpl-test", "object": "chat.completion", "model": body["model"],
                "choices": [choice],
                "usage": {"prompt_tokens": 50 + len(text) // 4, "completion_tokens": 6}}
