"""Language-model scorers: a measure coded by a model behind an OpenAI-compatible endpoint.

The prompt is built from the measure (question, instructions, labels, examples); the message is
the user turn. Answers are asked for as JSON (``{"label": "..."}``, constrained to the labels
with a JSON schema where the server supports it), validated against the labels, and given a
probability per label where the server returns log-probabilities. A malformed answer or one
that is not a label is asked again up to ``max_retries`` times, then recorded as invalid: the
message gets no code for the measure, it is never guessed.

Every answer is cached per (message, prompt hash, model) in the project
(:class:`chatlens.store.llmcache.LlmCache`) and committed as it arrives, so re-coding costs
nothing and an interrupted run resumes. Requests run in a thread pool of ``concurrency``
workers under an optional requests-per-minute limit, from the process that runs
``chatlens code`` (never from worker processes). No request is made unless the codebook has an
``llm`` scorer; a host that is not this machine is used only when the codebook says
``allow_remote: true`` and the caller passes ``allow_remote=True`` (``--allow-remote``).

The HTTP client is httpx (extra ``chatlens[llm]``), imported only when a request is made; tests
pass an ``httpx`` transport in :class:`LlmRuntime`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from chatlens.code.scorers import MISSING, Batch, Hit
from chatlens.codebook import LlmScorer as LlmConfig
from chatlens.codebook import Measure, is_local_url
from chatlens.errors import ChatlensError
from chatlens.store.llmcache import CachedAnswer, LlmCache

#: Assumed seconds per request for the dry run's time estimate.
SECONDS_PER_CALL = 1.0
#: Tokens the model writes per answer, for the dry run (``{"label": "..."}``).
ANSWER_TOKENS = 12


def estimate_tokens(text: str) -> int:
    """A rough token count (UTF-8 bytes / 4: about right for English, generous for Cyrillic)."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


# -- the prompt -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Prompt:
    system: str
    labels: tuple[str, ...]
    request: dict[str, Any]  # the request body without the messages
    max_chars: int
    hash: str

    def messages(self, text: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": text[: self.max_chars]}]


def build_prompt(m: Measure, cfg: LlmConfig) -> Prompt:
    """The system prompt and request parameters for measure ``m``; ``hash`` identifies them."""
    labels = tuple(m.labels)
    lines = [
        "You code messages from chat groups for a research project. Read the message and "
        "answer the question with exactly one of the labels.",
        "", f"Question: {m.question}", f"Labels: {', '.join(labels)}", "",
        "Instructions:", m.instructions.strip(),
    ]
    examples = [(lab, ex) for lab in labels for ex in m.examples.get(lab, [])[: cfg.max_examples]]
    if examples:
        lines += ["", "Examples:"]
        for lab, ex in examples:
            lines += [f"Message: {ex}", f"Answer: {json.dumps({'label': lab}, ensure_ascii=False)}"]
    lines += ["", 'Reply with JSON only, in the form {"label": "<one of the labels>"}.']
    system = "\n".join(lines)
    request: dict[str, Any] = {"model": cfg.model, "temperature": cfg.temperature,
                               "max_tokens": cfg.max_tokens}
    if cfg.logprobs:
        request |= {"logprobs": True, "top_logprobs": 5}
    if cfg.response_format == "json_schema":
        request["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "code", "strict": True, "schema": {
                "type": "object", "properties": {"label": {"type": "string", "enum": list(labels)}},
                "required": ["label"], "additionalProperties": False}}}
    elif cfg.response_format == "json_object":
        request["response_format"] = {"type": "json_object"}
    digest = hashlib.sha256(json.dumps({"system": system, "request": request,
                                        "max_chars": cfg.max_chars}, sort_keys=True,
                                       ensure_ascii=False).encode()).hexdigest()[:16]
    return Prompt(system, labels, request, cfg.max_chars, digest)


# -- answers --------------------------------------------------------------------------------

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_VALUE_START = re.compile(r'"label"\s*:\s*"')


def parse_label(content: str, labels: tuple[str, ...]) -> str | None:
    """The label in a JSON answer (``{"label": ...}``, code fences allowed, case ignored when
    that is unambiguous); None when the answer is malformed or not a label."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError:
        return None
    value = data.get("label") if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    if value in labels:
        return value
    folded = [lab for lab in labels if lab.casefold() == value.strip().casefold()]
    return folded[0] if len(folded) == 1 else None


def label_probabilities(content: str, logprobs: Any, labels: tuple[str, ...],
                        ) -> dict[str, float] | None:
    """Each label's probability from the log-probabilities of the token that starts the label
    in the answer, normalised over the labels; None when the server gave none or the first
    token does not tell the labels apart."""
    tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    start = _VALUE_START.search(content)
    if not tokens or not start:
        return None
    idx, pos = start.end(), 0
    for tok in tokens:
        text = str(tok.get("token", ""))
        if pos + len(text) > idx:
            prefix = content[pos:idx]  # e.g. ' "' when the token is ' "yes'
            alternatives = tok.get("top_logprobs") or [tok]
            mass: dict[str, float] = {}
            for alt in alternatives:
                t = str(alt.get("token", ""))
                if not t.startswith(prefix):
                    continue
                rest = t[len(prefix):]
                fits = [lab for lab in labels if rest and (lab.startswith(rest)
                                                          or rest.startswith(lab))]
                if len(fits) == 1:
                    mass[fits[0]] = mass.get(fits[0], 0.0) + math.exp(float(alt["logprob"]))
                elif len(fits) > 1 and alt is alternatives[0]:
                    return None  # the chosen first token is shared by several labels
            total = sum(mass.values())
            if total <= 0:
                return None
            return {lab: mass.get(lab, 0.0) / total for lab in labels}
        pos += len(text)
    return None


class LlmUnavailable(ChatlensError, RuntimeError):
    """The endpoint cannot be used at all (not running, wrong model, refused the request)."""


@dataclass(slots=True)
class _Limiter:
    """At most ``per_minute`` request starts a minute, spaced evenly (thread-safe)."""

    per_minute: float | None
    _next: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self) -> None:
        if not self.per_minute:
            return
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next)
            self._next = at + 60.0 / self.per_minute
        if at > now:
            time.sleep(at - now)


class LlmClient:
    """Chat-completions requests with retries: 429 waits for ``Retry-After``, 5xx and timeouts
    back off exponentially, a malformed answer is asked again. Thread-safe."""

    def __init__(self, cfg: LlmConfig, prompt: Prompt, transport: Any = None,
                 api_key: str | None = None, backoff: float = 0.5) -> None:
        try:
            import httpx
        except ImportError:
            raise ChatlensError("LLM scorers need httpx; install it with "
                                "pip install 'chatlens[llm]'.") from None
        self.cfg, self.prompt, self.backoff = cfg, prompt, backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            base_url=cfg.base_url.rstrip("/") + "/", timeout=cfg.timeout, headers=headers,
            transport=transport, limits=httpx.Limits(max_connections=cfg.concurrency))
        self.limiter = _Limiter(cfg.requests_per_minute)
        self._httpx = httpx

    def close(self) -> None:
        self.http.close()

    def ask(self, text: str) -> CachedAnswer | None:
        """The answer for one message, or None after transient failures (not to be cached).
        Raises :class:`LlmUnavailable` when the endpoint cannot be used."""
        httpx = self._httpx
        body = self.prompt.request | {"messages": self.prompt.messages(text)}
        last_error, raw = "", None
        for attempt in range(1, self.cfg.max_retries + 2):
            self.limiter.wait()
            delay = self.backoff * 2 ** (attempt - 1)
            try:
                r = self.http.post("chat/completions", json=body)
            except httpx.ConnectError as exc:
                raise LlmUnavailable(
                    f"No language-model server answers at {self.cfg.base_url} ({exc}); start "
                    "one (for example llama.cpp's llama-server, vLLM or Ollama) or fix base_url "
                    "in the codebook.") from None
            except httpx.TransportError as exc:  # timeouts, dropped connections
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(delay)
                continue
            if r.status_code == 429 or r.status_code >= 500:
                last_error = f"HTTP {r.status_code}"
                time.sleep(_retry_after(r.headers.get("retry-after"), delay))
                continue
            if r.status_code >= 400:
                raise LlmUnavailable(
                    f"The server at {self.cfg.base_url} refused the request (HTTP "
                    f"{r.status_code}: {r.text[:300]}); check the model name "
                    f"{self.cfg.model!r}, the API key, and whether it supports response_format "
                    f"{self.cfg.response_format!r} (set response_format: none if not).")
            try:
                data = r.json()
                choice = data["choices"][0]
                content = choice["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                last_error, raw = "malformed response", r.text[:500]
                continue
            raw = content[:500]
            label = parse_label(content, self.prompt.labels)
            if label is None:
                last_error = "the answer is not one of the labels"
                continue
            usage = data.get("usage") or {}
            probs = label_probabilities(content, choice.get("logprobs"), self.prompt.labels)
            return CachedAnswer("ok", label, probs, raw, None, attempt,
                                usage.get("prompt_tokens"), usage.get("completion_tokens"))
        if last_error in ("malformed response", "the answer is not one of the labels"):
            return CachedAnswer("invalid", None, None, raw, last_error, self.cfg.max_retries + 1)
        return None


def _retry_after(value: str | None, default: float) -> float:
    try:
        return min(max(float(value), 0.0), 120.0) if value is not None else default
    except ValueError:
        return default


# -- running --------------------------------------------------------------------------------

@dataclass(slots=True)
class LlmStats:
    """What an LLM scorer did in a run (or, in a dry run, would do)."""

    measure: str
    scorer: str
    model: str
    base_url: str
    prompt_hash: str
    cached: int = 0
    requested: int = 0
    answered: int = 0
    invalid: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    price_in: float | None = None
    price_out: float | None = None
    concurrency: int = 1
    per_minute: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in self.__slots__}
        d["cost"] = self.cost()
        d["seconds"] = self.seconds()
        return d

    def cost(self) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        return (self.prompt_tokens * (self.price_in or 0.0)
                + self.completion_tokens * (self.price_out or 0.0)) / 1e6

    def seconds(self) -> float:
        """Estimated wall time of the requests (:data:`SECONDS_PER_CALL` each)."""
        t = self.requested * SECONDS_PER_CALL / self.concurrency
        if self.per_minute:
            t = max(t, self.requested * 60.0 / self.per_minute)
        return t


@dataclass(slots=True)
class LlmRuntime:
    """How LLM scorers may run: ``network`` (False: cached answers only), ``allow_remote``
    (the command-line opt-in), ``dry_run`` (count calls and tokens, send nothing), the
    answer ``cache``, a ``progress(stage, done, total)`` callback and, for tests, an httpx
    ``transport``. ``stats`` collects one :class:`LlmStats` per scorer."""

    cache: LlmCache | None = None
    network: bool = True
    allow_remote: bool = False
    dry_run: bool = False
    progress: Callable[[str, int, int], None] | None = None
    transport: Any = None
    api_key: str | None = None
    backoff: float = 0.5
    stats: list[LlmStats] = field(default_factory=list)


class LlmMeasureScorer:
    """The scorer of one measure's ``llm`` entry. ``needs_population``: the code stage passes
    which messages are in the measure's population, so only those are sent."""

    needs_population = True

    def __init__(self, sid: str, m: Measure, cfg: LlmConfig, runtime: LlmRuntime) -> None:
        import os

        if runtime.network and not is_local_url(cfg.base_url) and not (
                cfg.allow_remote and runtime.allow_remote):
            raise ChatlensError(
                f"Measure {m.id} would send messages to {cfg.base_url}, which is not this "
                "machine. Chat data leaves the machine only when the codebook says "
                "allow_remote: true and the command is run with --allow-remote.")
        self.id, self.measure, self.cfg, self.runtime = sid, m.id, cfg, runtime
        self.label = m.positive_label()
        self.threshold = cfg.threshold
        self.binary = m.type == "binary"
        self.prompt = build_prompt(m, cfg)
        self.api_key = runtime.api_key or (os.environ.get(cfg.api_key_env)
                                           if cfg.api_key_env else None)
        self.stats = LlmStats(m.id, sid, cfg.model, cfg.base_url, self.prompt.hash,
                              price_in=cfg.price_per_million_input,
                              price_out=cfg.price_per_million_output,
                              concurrency=cfg.concurrency, per_minute=cfg.requests_per_minute)
        runtime.stats.append(self.stats)

    # the two entry points of the code stage
    def positive_proba(self, batch: Batch, inside: list[bool] | None = None) -> list[float]:
        """P(positive) per message; NaN where there is no valid answer (no code then)."""
        out: list[float] = []
        for a in self._answers(batch, inside):
            if a is None or a.label is None:
                out.append(math.nan)
            elif a.probs is not None:
                out.append(a.probs.get(self.label, 0.0))
            else:
                out.append(1.0 if a.label == self.label else 0.0)
        return out

    def score(self, batch: Batch, inside: list[bool] | None = None) -> list[Hit | None]:
        out: list[Hit | None] = []
        for a in self._answers(batch, inside):
            if a is None or a.label is None:
                out.append(MISSING)
            else:
                p = a.probs.get(a.label, 1.0) if a.probs is not None else 1.0
                out.append(None if self.binary and a.label != self.label else Hit(a.label, p))
        return out

    def _answers(self, batch: Batch, inside: list[bool] | None) -> list[CachedAnswer | None]:
        n = len(batch)
        uids = ([str(u) for u in batch.uids.to_pylist()] if batch.uids is not None
                else [str(i) for i in range(n)])
        todo = [i for i in range(n) if inside is None or inside[i]]
        rt, ph, model = self.runtime, self.prompt.hash, self.cfg.model
        found = rt.cache.get((uids[i] for i in todo), ph, model) if rt.cache else {}
        result: list[CachedAnswer | None] = [found.get(uids[i]) for i in range(n)]
        ask = [i for i in todo if result[i] is None]
        self.stats.cached += len(todo) - len(ask)
        if not ask or not rt.network:
            return result
        if rt.dry_run:
            self.stats.requested += len(ask)
            sys_tokens = estimate_tokens(self.prompt.system) + 8
            self.stats.prompt_tokens += sum(
                sys_tokens + estimate_tokens(batch.text[i][: self.prompt.max_chars]) for i in ask)
            self.stats.completion_tokens += ANSWER_TOKENS * len(ask)
            return result
        self._request(batch, uids, ask, result)
        return result

    def _request(self, batch: Batch, uids: list[str], ask: list[int],
                 result: list[CachedAnswer | None]) -> None:
        rt, st = self.runtime, self.stats
        client = LlmClient(self.cfg, self.prompt, rt.transport, self.api_key, rt.backoff)
        stage = f"llm {self.measure}"
        before = st.requested  # the bar counts every request of the run, batch after batch
        pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency)
        pending: dict[Future[CachedAnswer | None], int] = {}
        queue = iter(ask)
        done_n, last_commit = 0, time.monotonic()
        interrupted = True
        try:
            for i in queue:  # keep at most 2 x concurrency requests queued
                pending[pool.submit(client.ask, batch.text[i])] = i
                if len(pending) >= 2 * self.cfg.concurrency:
                    break
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = pending.pop(fut)
                    answer = fut.result()  # LlmUnavailable propagates
                    st.requested += 1
                    done_n += 1
                    if answer is None:
                        st.failed += 1
                        continue
                    st.answered += answer.status == "ok"
                    st.invalid += answer.status == "invalid"
                    st.prompt_tokens += answer.prompt_tokens or 0
                    st.completion_tokens += answer.completion_tokens or 0
                    result[i] = answer
                    if rt.cache is not None:
                        rt.cache.put(uids[i], self.prompt.hash, self.cfg.model, answer)
                if rt.cache is not None and time.monotonic() - last_commit > 1.0:
                    rt.cache.commit()
                    last_commit = time.monotonic()
                if rt.progress:
                    rt.progress(stage, before + done_n, before + len(ask))
                while len(pending) < 2 * self.cfg.concurrency:
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    pending[pool.submit(client.ask, batch.text[nxt])] = nxt
            interrupted = False
        finally:
            for fut in pending:
                fut.cancel()
            # interrupted (Ctrl-C, an unusable endpoint): do not wait for requests in flight;
            # every answer that arrived is committed below
            pool.shutdown(wait=not interrupted, cancel_futures=True)
            if rt.cache is not None:
                rt.cache.commit()
            client.close()
