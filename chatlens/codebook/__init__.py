"""Codebooks: versioned YAML files that say what to measure and how to score it.

A codebook is validated into typed models. Every problem names its place in the file
(``measures[3].scorers[0].terms.uk[5]``, with the line) and says what to fix; nothing is written
to a project from a codebook that has problems. See ``docs/codebook.md`` for the reference.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chatlens.codebook.regexsafety import check_pattern
from chatlens.errors import ChatlensError, CodebookError

ID = r"^[a-z][a-z0-9_]*$"
LANG = r"^[a-z]{2,3}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Negation(_Model):
    window: int = Field(3, ge=1, le=10, description="tokens before a match that can negate it")
    words: dict[str, list[str]] | None = Field(
        None, description="extra negation words per language (built-ins: не, нет, ни, без, …)")


class LexiconScorer(_Model):
    type: Literal["lexicon"]
    id: str | None = Field(None, pattern=ID)
    label: str | None = None
    terms: dict[Annotated[str, Field(pattern=LANG)], list[Annotated[str, Field(min_length=1)]]]
    negation: Negation | None = None
    min_matches: int = Field(1, ge=1)

    @field_validator("terms")
    @classmethod
    def _not_empty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not any(v.values()):
            raise ValueError("a lexicon needs at least one term")
        return v


class RegexScorer(_Model):
    type: Literal["regex"]
    id: str | None = Field(None, pattern=ID)
    label: str | None = None
    pattern: str
    ignore_case: bool = True
    field: Literal["text", "norm"] = "text"

    @field_validator("pattern")
    @classmethod
    def _safe(cls, v: str) -> str:
        check_pattern(v)
        return v


class ModelScorer(_Model):
    type: Literal["model"]
    id: str | None = Field(None, pattern=ID)
    label: str | None = None
    model: str = Field(description="name of a trained model in the project (chatlens models)")
    threshold: float = Field(0.5, gt=0, lt=1)


def is_local_url(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost`` or a loopback address)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LlmScorer(_Model):
    """A language model behind an OpenAI-compatible chat-completions endpoint (``chatlens[llm]``).

    The endpoint is a local server by default; a remote host is used only when ``allow_remote``
    is true here *and* the command is run with ``--allow-remote``."""

    type: Literal["llm"]
    id: str | None = Field(None, pattern=ID)
    label: str | None = None
    model: str = Field(min_length=1, description="model name the server knows")
    base_url: str = Field("http://127.0.0.1:8080/v1", pattern=r"^https?://[^\s/]+",
                          description="OpenAI-compatible API root (…/v1)")
    allow_remote: bool = Field(False, description="permit a non-local endpoint (together with "
                               "--allow-remote on the command line)")
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                    description="environment variable holding the API key")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(64, ge=8, le=4096)
    logprobs: bool = Field(True, description="ask for log-probabilities (a probability per "
                           "answer where the server gives them)")
    response_format: Literal["json_schema", "json_object", "none"] = "json_schema"
    concurrency: int = Field(4, ge=1, le=256, description="requests in flight at once")
    requests_per_minute: float | None = Field(None, gt=0)
    timeout: float = Field(60.0, gt=0, description="seconds per request")
    max_retries: int = Field(3, ge=0, le=20)
    max_examples: int = Field(5, ge=0, le=50, description="examples per label in the prompt")
    max_chars: int = Field(4000, ge=100, description="message text is cut to this length")
    price_per_million_input: float | None = Field(None, ge=0, description="for the dry run")
    price_per_million_output: float | None = Field(None, ge=0, description="for the dry run")
    threshold: float = Field(0.5, gt=0, lt=1,
                             description="binary: P(positive) at which the label is assigned")


Scorer = Annotated[LexiconScorer | RegexScorer | ModelScorer | LlmScorer,
                   Field(discriminator="type")]


class Condition(_Model):
    measure: str = Field(pattern=ID)
    value: str


class Population(_Model):
    languages: list[Annotated[str, Field(pattern=LANG)]] | None = None
    chats: list[str] | None = None
    kinds: list[Literal["message", "media", "service"]] = ["message", "media"]
    since: date | None = None
    until: date | None = None
    where: list[Condition] = []


class Measure(_Model):
    id: str = Field(pattern=ID)
    question: str = Field(min_length=5)
    type: Literal["binary", "categorical"] = "binary"
    labels: list[str] = Field(min_length=2)
    positive: str | None = Field(None, description="binary: the label scorers assign")
    default: str | None = Field(None, description="value when no scorer fires")
    instructions: str = Field(min_length=10)
    examples: dict[str, list[str]] = Field(
        default_factory=dict, description="label -> example messages for coders")
    population: Population = Population()
    scorers: list[Scorer] = Field(min_length=1)
    combine: Literal["first", "any", "all", "max"] = "first"

    def positive_label(self) -> str:
        return self.positive or self.labels[0]

    def default_label(self) -> str:
        if self.default:
            return self.default
        if self.type == "binary":
            return next(lab for lab in self.labels if lab != self.positive_label())
        return self.labels[-1]


class Codebook(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: str = Field(min_length=1)
    description: str = ""
    languages: list[Annotated[str, Field(pattern=LANG)]] = Field(min_length=1)
    measures: list[Measure] = Field(min_length=1)

    def measure(self, measure_id: str) -> Measure:
        for m in self.measures:
            if m.id == measure_id:
                return m
        known = ", ".join(m.id for m in self.measures)
        raise ChatlensError(f"No measure {measure_id!r} in codebook {self.name}; it has: {known}.")

    def resolved(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def hash(self) -> str:
        return _digest(self.resolved())

    def measure_hash(self, measure_id: str, extra: str = "",
                     extras: dict[str, str] | None = None) -> str:
        """Changes when the measure, anything it depends on, or its ``extra`` changes
        (``extras`` gives each measure its own, e.g. the models it uses)."""
        m = self.measure(measure_id)
        own = (extras or {}).get(measure_id, extra)
        deps = sorted({c.measure for c in m.population.where})
        return _digest({"measure": m.model_dump(mode="json"), "extra": own,
                        "deps": [self.measure_hash(d, extra, extras) for d in deps]})

    def ordered(self) -> list[Measure]:
        """Measures with every measure after the ones its population depends on."""
        done: dict[str, Measure] = {}
        pending = list(self.measures)
        while pending:
            ready = [m for m in pending if all(c.measure in done for c in m.population.where)]
            for m in ready:
                done[m.id] = m
            pending = [m for m in pending if m.id not in done]
        return list(done.values())


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _semantic_problems(cb: Codebook) -> list[tuple[tuple[Any, ...], str]]:
    problems: list[tuple[tuple[Any, ...], str]] = []
    ids = [m.id for m in cb.measures]
    by_id = {m.id: m for m in cb.measures}
    for i, m in enumerate(cb.measures):
        where = ("measures", i)
        if ids.count(m.id) > 1:
            problems.append(((*where, "id"), f"measure id {m.id!r} is used more than once"))
        if len(set(m.labels)) != len(m.labels):
            problems.append(((*where, "labels"), "labels must be unique"))
        if m.type == "binary" and len(m.labels) != 2:
            problems.append(((*where, "labels"), "a binary measure has exactly two labels; "
                             "use type: categorical for more"))
        for key in ("positive", "default"):
            value = getattr(m, key)
            if value is not None and value not in m.labels:
                problems.append(((*where, key), f"{value!r} is not one of the labels {m.labels}"))
        for label in m.examples:
            if label not in m.labels:
                problems.append(((*where, "examples", label),
                                 f"examples for {label!r}, which is not one of {m.labels}"))
        for lang in m.population.languages or []:
            if lang not in cb.languages:
                problems.append(((*where, "population", "languages"),
                                 f"language {lang!r} is not declared in the codebook's "
                                 f"languages {cb.languages}"))
        for k, cond in enumerate(m.population.where):
            dep = by_id.get(cond.measure)
            if dep is None:
                problems.append(((*where, "population", "where", k, "measure"),
                                 f"no measure {cond.measure!r} in this codebook"))
            elif cond.value not in dep.labels:
                problems.append(((*where, "population", "where", k, "value"),
                                 f"{cond.value!r} is not a label of {dep.id} ({dep.labels})"))
            elif cond.measure == m.id:
                problems.append(((*where, "population", "where", k, "measure"),
                                 "a measure cannot filter on itself"))
        for j, sc in enumerate(m.scorers):
            if sc.label is not None and sc.label not in m.labels:
                problems.append(((*where, "scorers", j, "label"),
                                 f"{sc.label!r} is not one of the labels {m.labels}"))
            if m.type == "categorical" and sc.label is None and sc.type not in ("model", "llm"):
                problems.append(((*where, "scorers", j),
                                 "a categorical measure's rule scorer needs a label: the value "
                                 "it assigns when it fires"))
            if isinstance(sc, LexiconScorer):
                for lang in sc.terms:
                    if lang not in cb.languages:
                        problems.append(((*where, "scorers", j, "terms", lang),
                                         f"lexicon in {lang!r}, which the codebook does not "
                                         f"declare; add it to languages {cb.languages} or "
                                         "remove these terms"))
            if isinstance(sc, LlmScorer):

                if sc.label is not None:
                    problems.append(((*where, "scorers", j, "label"),
                                     "an llm scorer chooses among all the measure's labels; "
                                     "remove label"))

                if not sc.allow_remote and not is_local_url(sc.base_url):
                    problems.append(((*where, "scorers", j, "base_url"),
                                     f"{sc.base_url} is not on this machine; chat data is sent "
                                     "to a remote host only with allow_remote: true here and "
                                     "--allow-remote on the command line"))
    if not problems and len(cb.ordered()) != len(cb.measures):
        problems.append((("measures",), "population filters depend on each other in a cycle"))
    return problems


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == str(part)),
                        None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and \
                part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _pydantic_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # drop discriminator tags that pydantic inserts ("lexicon", "function-after[...]")
    return tuple(p for p in loc if not (isinstance(p, str) and (
        p in ("lexicon", "regex", "model", "llm") or "[" in p)))


#: Deepest nesting a codebook or claims file may have; real ones stay under 10 levels.
MAX_YAML_DEPTH = 64
#: Most values a file may expand to once aliases are followed (a "billion laughs" guard).
MAX_YAML_VALUES = 200_000


class YamlLoader(yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML where only true/false are booleans: ``labels: [yes, no]`` stays two strings.

    Nesting deeper than :data:`MAX_YAML_DEPTH` stops the composer before it recurses, and a
    tagged scalar its constructor cannot convert (``!!int abc``) is a ``ConstructorError`` at
    the value's line instead of a bare ``ValueError``.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_YAML_DEPTH} levels deep",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError, AttributeError) as exc:
            value = node.value if isinstance(node, yaml.ScalarNode) else node.id
            raise yaml.constructor.ConstructorError(
                None, None, f"the value {str(value)[:40]!r} cannot be read as {node.tag} ({exc})",
                node.start_mark) from None


YamlLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _expands_ok(root: yaml.Node | None) -> bool:
    """Whether the node tree, aliases followed, holds at most :data:`MAX_YAML_VALUES` nodes."""
    stack: list[yaml.Node] = [root] if root is not None else []
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_YAML_VALUES:
            return False
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += (key, value)
    return True


def load_yaml(text: str, source: str, error: type[CodebookError] | None = None,
              ) -> tuple[Any, yaml.Node | None]:
    """Parsed data and its node tree (for line numbers); YAML errors as CodebookError.

    The file is composed once; its depth is checked before anything is constructed, and a value
    its tag cannot hold (``!!int abc``, ``!!timestamp x``) is a problem at its line, not a crash.
    """
    def fail(line: int | None, message: str) -> CodebookError:
        return (error or CodebookError)(source, [("(file)", line, message)])

    try:
        loader = YamlLoader(text)
        try:
            root = loader.get_single_node()
            if not _expands_ok(root):
                raise fail(None, f"the file expands to more than {MAX_YAML_VALUES} values "
                           "(through aliases); a codebook or claims file never does, so it is "
                           "damaged or not one.")
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except CodebookError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise fail(line, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise fail(None, "nested too deeply to read; a codebook or claims file never is, so "
                   "this file is damaged or not one.") from None
    except (ValueError, TypeError, OverflowError, AttributeError) as exc:
        raise fail(None, f"a value cannot be read as its YAML tag says ({exc}); remove the tag "
                   "or fix the value.") from None
    return data, root


def parse_codebook(text: str, source: str = "<codebook>") -> Codebook:
    """Validate codebook YAML text; raise :class:`CodebookError` listing every problem."""
    data, root = load_yaml(text, source)
    if not isinstance(data, dict):
        raise CodebookError(source, [("(file)", 1, "a codebook is a mapping with name, "
                                      "version, languages and measures")])
    try:
        cb = Codebook.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = _pydantic_loc(tuple(e["loc"]))
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":  # the user's key, even one that looks like a tag
                loc = (*_pydantic_loc(tuple(e["loc"][:-1])), e["loc"][-1])
                msg = f"unknown key {loc[-1]!r}; check its spelling against docs/codebook.md"
            problems.append((_path(loc), _line(root, loc), msg))
        raise CodebookError(source, problems) from None
    semantic = _semantic_problems(cb)
    if semantic:
        raise CodebookError(source, [(_path(loc), _line(root, loc), msg) for loc, msg in semantic])
    return cb


BUILTIN_PREFIX = "builtin:"
#: The package holding the built-in codebooks and claims files.
BUILTIN = "chatlens.codebook.builtin"


def builtin_names() -> list[str]:
    files = resources.files(BUILTIN)
    return sorted(f.name.removesuffix(".yaml") for f in files.iterdir()
                  if f.name.endswith(".yaml") and ".claims" not in f.name)


def load_codebook(ref: str | Path) -> Codebook:
    """Load ``builtin:NAME`` or a YAML file."""
    ref_s = str(ref)
    if ref_s.startswith(BUILTIN_PREFIX):
        name = ref_s.removeprefix(BUILTIN_PREFIX)
        if name not in builtin_names():
            raise ChatlensError(f"No built-in codebook {name!r}; built-ins: "
                                f"{', '.join(builtin_names())}.")
        text = resources.files(BUILTIN).joinpath(f"{name}.yaml").read_text("utf-8")
        return parse_codebook(text, ref_s)
    path = Path(ref_s)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChatlensError(f"{path}: no such codebook file.") from None
    except UnicodeDecodeError as exc:
        raise ChatlensError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8.") \
            from None
    return parse_codebook(text, str(path))


