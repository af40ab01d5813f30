"""Claims files: public statements operationalised as comparisons of measured shares.

A claim names a measure and value, an optional population filter, and a comparison:

* ``share > 0.2`` (or ``>=``, ``<``, ``<=``): the share of messages with the value;
* ``share(after) < share(before)``: two named groups (``groups:``) compared;
* ``trend up`` / ``trend down``: the share over time buckets (``by: week`` or ``month``).

The verdict follows the confidence interval, never the point estimate: *supported* when the whole
interval lies on the claimed side, *contradicted* when it lies wholly on the other side, and
*inconclusive* otherwise (an interval touching the boundary is inconclusive).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chatlens.codebook import (
    Codebook,
    Condition,
    _line,
    _path,
    _pydantic_loc,
    load_yaml,
)
from chatlens.errors import ChatlensError, ClaimsError

Verdict = Literal["supported", "contradicted", "inconclusive"]

_THRESHOLD = re.compile(r"^share\s*(>=|<=|>|<)\s*(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)$")
_GROUPS = re.compile(r"^share\((\w+)\)\s*(<|>)\s*share\((\w+)\)$")
_TREND = re.compile(r"^trend\s+(up|down)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Model):
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] | None = None
    chats: list[str] | None = None
    since: date | None = None
    until: date | None = None
    where: list[Condition] = []


class Claim(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    statement: str = Field(min_length=5)
    measure: str
    value: str
    population: Filter = Filter()
    groups: dict[str, Filter] | None = None
    compare: str
    by: Literal["week", "month"] = "week"
    level: float = Field(0.95, gt=0.5, lt=1)
    method: Literal["auto", "audit", "ppi", "quantify"] = "auto"

    @model_validator(mode="after")
    def _comparison(self) -> Claim:
        parsed = self.comparison()
        if parsed[0] == "groups":
            names = set(self.groups or {})
            missing = [g for g in parsed[2:] if g not in names]
            if missing:
                raise ValueError(f"compare names group(s) {missing} that `groups` does not define")
        return self

    def comparison(self) -> tuple[str, ...]:
        """("threshold", op, value) | ("groups", op, a, b) | ("trend", direction)."""
        text = " ".join(self.compare.split())
        if m := _THRESHOLD.match(text):
            return ("threshold", m.group(1), m.group(2))
        if m := _GROUPS.match(text):
            return ("groups", m.group(2), m.group(1), m.group(3))
        if m := _TREND.match(text):
            return ("trend", m.group(1))
        raise ValueError(f"cannot read compare {self.compare!r}; use `share > 0.2`, "
                         "`share(a) < share(b)` or `trend up`")


class ClaimsFile(_Model):
    codebook: str
    claims: list[Claim] = Field(min_length=1)


def parse_claims(text: str, source: str, codebook: Codebook | None = None) -> ClaimsFile:
    """Validate a claims file; with ``codebook``, also check measures, values and filters."""
    data, root = load_yaml(text, source, ClaimsError)
    try:
        parsed = ClaimsFile.model_validate(data)
    except ValidationError as exc:
        raise ClaimsError(source, [
            (_path(_pydantic_loc(tuple(e["loc"]))), _line(root, _pydantic_loc(tuple(e["loc"]))),
             e["msg"].removeprefix("Value error, ")) for e in exc.errors()]) from None
    if codebook is not None:
        problems = []
        ids = {m.id: m for m in codebook.measures}
        for i, c in enumerate(parsed.claims):
            loc: tuple[str | int, ...] = ("claims", i)
            m = ids.get(c.measure)
            if m is None:
                problems.append(((*loc, "measure"), f"no measure {c.measure!r} in "
                                 f"{codebook.name}"))
            elif c.value not in m.labels:
                problems.append(((*loc, "value"), f"{c.value!r} is not one of {m.labels}"))
            filters = [("population", c.population)] + [
                (f"groups.{g}", f) for g, f in (c.groups or {}).items()]
            for where, f in filters:
                for k, cond in enumerate(f.where):
                    dep = ids.get(cond.measure)
                    if dep is None or cond.value not in dep.labels:
                        problems.append(((*loc, *where.split("."), "where", k),
                                         f"{cond.measure}={cond.value} is not a measure value "
                                         f"of {codebook.name}"))
        if problems:
            raise ClaimsError(source, [(_path(p), _line(root, p), msg) for p, msg in problems])
    return parsed


def claims_text(path: str | Path) -> str:
    """The text of a claims file, or of a built-in one (``builtin:NAME``)."""
    ref = str(path)
    if ref.startswith("builtin:"):
        from importlib import resources

        name = ref.removeprefix("builtin:")
        res = resources.files("chatlens.codebook.builtin").joinpath(f"{name}.claims.yaml")
        if not res.is_file():
            raise ChatlensError(f"No built-in claims file {name!r}.")
        return res.read_text("utf-8")
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChatlensError(f"{path}: no such claims file.") from None


def load_claims(path: str | Path, codebook: Codebook | None = None) -> ClaimsFile:
    return parse_claims(claims_text(path), str(path), codebook)


def verdict_threshold(lower: float, upper: float, op: str, threshold: float) -> Verdict:
    """``share op threshold`` judged by the interval [lower, upper]."""
    if op in (">", ">="):
        if lower > threshold or (op == ">=" and lower >= threshold):
            return "supported"
        return "contradicted" if upper < threshold else "inconclusive"
    if upper < threshold or (op == "<=" and upper <= threshold):
        return "supported"
    return "contradicted" if lower > threshold else "inconclusive"


def verdict_sign(lower: float, upper: float, expect_positive: bool) -> Verdict:
    """A difference or slope claimed to be > 0 (``expect_positive``) or < 0."""
    if expect_positive:
        return "supported" if lower > 0 else ("contradicted" if upper < 0 else "inconclusive")
    return "supported" if upper < 0 else ("contradicted" if lower > 0 else "inconclusive")
