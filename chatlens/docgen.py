"""Reference pages generated from the code, so the docs cannot drift from it.

The documentation site's build hook (``docs/hooks/chatlens_docs.py``) replaces a marker
``<!-- chatlens:generate NAME -->`` in a page with :func:`generate` ``(NAME)``; the tests of the
docs render the same text. Generators:

* ``cli``: every command's ``--help`` (:func:`chatlens.cli.reference.cli_reference`);
* ``codebook-fields`` / ``claims-fields``: every field of the typed models with its type,
  default and constraints (from their JSON schema);
* ``store-schema``: every table and column of a freshly created project (DuckDB and
  ``labels.sqlite``);
* ``settings``: the environment variables of :data:`chatlens.settings.ENVIRONMENT`;
* ``api``: a mkdocstrings entry for every name of ``chatlens.__all__``;
* ``exodus-2022``: the measures and claims of the built-in study.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MARKER = "<!-- chatlens:generate {name} -->"


def generate(name: str) -> str:
    """The Markdown of the generated reference ``name`` (see the module docstring)."""
    try:
        fn = GENERATORS[name]
    except KeyError:
        known = ", ".join(sorted(GENERATORS))
        raise KeyError(f"no generated reference {name!r}; known: {known}") from None
    return fn()


def expand(markdown: str) -> str:
    """``markdown`` with every generator marker replaced by its generated text."""
    for name in GENERATORS:
        marker = MARKER.format(name=name)
        if marker in markdown:
            markdown = markdown.replace(marker, generate(name))
    return markdown


# -- CLI ----------------------------------------------------------------------------------------

def cli_text() -> str:
    from chatlens.cli.reference import cli_reference

    return cli_reference()


def cli_commands() -> Iterator[tuple[str, Any]]:
    """``("chatlens label import", command)`` for every command and subcommand."""
    import click

    from chatlens.cli import cli

    def walk(cmd: click.Command, path: str, parent: click.Context | None) -> Iterator[
            tuple[str, click.Command]]:
        ctx = click.Context(cmd, info_name=path.split()[-1], parent=parent)
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from walk(sub, f"{path} {name}", ctx)

    yield from walk(cli, "chatlens", None)


# -- typed models -------------------------------------------------------------------------------

def _type(node: dict[str, Any], defs: dict[str, Any]) -> tuple[str, list[str]]:
    """A short type and the constraints of a JSON-schema node."""
    cons: list[str] = []
    if "anyOf" in node:
        parts = [p for p in node["anyOf"] if p.get("type") != "null"]
        types = []
        for p in parts:
            t, c = _type(p, defs)
            types.append(t)
            cons += c
        return " or ".join(types) + (" or null" if len(parts) < len(node["anyOf"]) else ""), cons
    if "$ref" in node:
        return f"[{node['$ref'].rsplit('/', 1)[-1]}](#{_anchor(node['$ref'])})", cons
    if "oneOf" in node:
        names = [f"[{p['$ref'].rsplit('/', 1)[-1]}](#{_anchor(p['$ref'])})"
                 for p in node["oneOf"]]
        disc = node.get("discriminator", {}).get("propertyName")
        if disc:
            cons.append(f"chosen by `{disc}`")
        return " or ".join(names), cons
    if "const" in node:
        return f"`{node['const']}`", cons
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"]), cons
    kind = node.get("type", "any")
    if kind == "array":
        inner, inner_cons = _type(node.get("items", {}), defs)
        cons += [f"each item: {c}" for c in inner_cons]
        t = f"list of {inner}"
    elif kind == "object":
        if "patternProperties" in node:
            (pat, val), = node["patternProperties"].items()
            inner, inner_cons = _type(val, defs)
            cons.append(f"keys match `{pat}`")
            cons += [f"each value: {c}" for c in inner_cons]
            t = f"mapping to {inner}"
        elif isinstance(node.get("additionalProperties"), dict):
            inner, inner_cons = _type(node["additionalProperties"], defs)
            cons += [f"each value: {c}" for c in inner_cons]
            t = f"mapping to {inner}"
        else:
            t = "mapping"
    else:
        t = {"string": "text", "integer": "integer", "number": "number",
             "boolean": "`true`/`false`"}.get(kind, kind)
        if node.get("format") == "date":
            t = "date (YYYY-MM-DD)"
    for key, text in (("pattern", "matches `{}`"), ("minLength", "at least {} character(s)"),
                      ("maxLength", "at most {} characters"), ("minItems", "at least {} item(s)"),
                      ("maxItems", "at most {} item(s)"), ("minimum", "≥ {}"),
                      ("maximum", "≤ {}"), ("exclusiveMinimum", "> {}"),
                      ("exclusiveMaximum", "< {}")):
        if key in node:
            cons.append(text.format(node[key]))
    return t, cons


def _anchor(ref: str) -> str:
    return ref.rsplit("/", 1)[-1].lower()


def _default(value: Any) -> str:
    import json

    if value is None:
        return "none"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


#: What a field means, for fields whose model gives no ``description``. Keys are
#: ``Model.field``; a test checks that every field has a meaning and every key is a real field.
FIELD_MEANINGS: dict[str, str] = {
    "Codebook.name": "the codebook's name; samples, labels and codes belong to it, so keep it "
    "when you revise a codebook",
    "Codebook.version": "any string; change it whenever you change the codebook",
    "Codebook.description": "what the codebook measures, for people",
    "Codebook.languages": "languages whose lexicons the codebook carries (ISO 639 codes)",
    "Codebook.measures": "the measures, each one question a coder answers",
    "Measure.id": "identifier used on the command line, in samples, labels and claims",
    "Measure.question": "the question a human coder answers about one message",
    "Measure.type": "binary: two labels; categorical: one of several",
    "Measure.labels": "the answers a coder can give",
    "Measure.instructions": "coder instructions, shown with every item in the labelling page",
    "Measure.population": "which messages the question applies to",
    "Measure.scorers": "how messages are coded automatically, in order",
    "Measure.combine": "how several scorers' results make one value (see How scoring works)",
    "Population.languages": "detected language of the message",
    "Population.chats": "chat keys (`telegram:123`, `whatsapp:name`)",
    "Population.kinds": "message kinds; service messages are left out by default",
    "Population.since": "first UTC date, inclusive",
    "Population.until": "last UTC date, inclusive",
    "Population.where": "other measures' values, which are coded first",
    "Condition.measure": "another measure of the codebook",
    "Condition.value": "one of that measure's labels",
    "LexiconScorer.type": "`lexicon`",
    "LexiconScorer.id": "names the scorer in codes and evidence",
    "LexiconScorer.label": "categorical: the value assigned when it fires (binary: the positive "
    "label)",
    "LexiconScorer.terms": "words and phrases per language, matched in any inflected form",
    "LexiconScorer.negation": "ignore matches preceded by a negation word",
    "LexiconScorer.min_matches": "distinct matches needed to fire",
    "RegexScorer.type": "`regex`",
    "RegexScorer.id": "names the scorer in codes and evidence",
    "RegexScorer.label": "categorical: the value assigned when it matches",
    "RegexScorer.pattern": "a Python regular expression; nested unbounded repeats are refused",
    "RegexScorer.ignore_case": "match regardless of case",
    "RegexScorer.field": "text: as written; norm: normalised (lowercase, ё→е, homoglyphs "
    "folded)",
    "LlmScorer.type": "`llm`",
    "LlmScorer.id": "names the scorer in codes and evidence",
    "LlmScorer.label": "binary: the label the model's answer is scored for (default: the "
    "measure's positive label)",
    "LlmScorer.temperature": "sampling temperature sent to the server (0: the most likely "
    "answer)",
    "LlmScorer.max_tokens": "longest answer the server may give",
    "LlmScorer.response_format": "how a JSON answer is requested: a JSON schema limited to the "
    "labels, any JSON object, or plain text",
    "LlmScorer.requests_per_minute": "rate limit of the calls (default: none)",
    "LlmScorer.max_retries": "times a failed or malformed answer is asked again before it is "
    "recorded as missing",
    "ModelScorer.type": "`model`",
    "ModelScorer.id": "names the scorer in codes and evidence",
    "ModelScorer.label": "categorical: the label whose probability is kept as the score "
    "(default the first); binary: if given, the positive label",
    "ModelScorer.threshold": "binary: probability of the positive label at which it fires",
    "ClaimsFile.codebook": "the codebook the claims are stated against (file or builtin:NAME)",
    "ClaimsFile.claims": "the claims",
    "Claim.id": "identifier shown with the verdict",
    "Claim.statement": "the claim as stated in public",
    "Claim.measure": "the measure the claim is about",
    "Claim.value": "the label whose share the claim is about (quote yes/no)",
    "Claim.population": "which messages the share is taken over",
    "Claim.groups": "named filters compared by `share(a) < share(b)`",
    "Claim.compare": "`share > x` (>=, <, <=), `share(a) < share(b)` (or >), `trend up`, "
    "`trend down`",
    "Claim.by": "time buckets of a trend",
    "Claim.level": "confidence level of the intervals",
    "Claim.method": "estimator; auto picks ppi when an audit sample exists",
    "Filter.languages": "detected language of the message",
    "Filter.chats": "chat keys",
    "Filter.since": "first UTC date, inclusive",
    "Filter.until": "last UTC date, inclusive",
    "Filter.where": "measures' values",
}


def model_reference(root: Any, title: str) -> str:
    """A table per model reachable from the pydantic model ``root``, every field with its type,
    default and constraints."""
    schema = root.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})
    models = {root.__name__: schema, **defs}
    places = _places(root.__name__, models)
    out = [title, ""]
    for name, node in models.items():
        where = ", ".join(f"`{p}`" for p in places.get(name, [])) or "the top level of the file"
        out += [f"### {name}", "", f"Where: {where}. Unknown keys are an error.", ""]
        if node.get("description"):
            out += [" ".join(node["description"].split()), ""]
        out += ["| field | type | required / default | constraints | meaning |",
                "|---|---|---|---|---|"]
        required = set(node.get("required", []))
        for field, prop in node.get("properties", {}).items():
            t, cons = _type(prop, defs)
            req = "**required**" if field in required else _default(prop.get("default"))
            meaning = " ".join(prop.get("description", "").split()) or FIELD_MEANINGS.get(
                f"{name}.{field}", "")
            out.append(f"| `{field}` | {t} | {req} | {'; '.join(cons) or '—'} | {meaning} |")
        out.append("")
    return "\n".join(out)


def _places(root: str, models: dict[str, Any]) -> dict[str, list[str]]:
    """Where in the file each model appears, e.g. ``measures[].population``."""
    places: dict[str, list[str]] = {}

    def refs(node: Any) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            if "$ref" in node:
                yield "", node["$ref"].rsplit("/", 1)[-1]
            for key, val in node.items():
                suffix = "[]" if key == "items" else ".*" if key in (
                    "additionalProperties", "patternProperties") else ""
                for s, r in refs(val):
                    yield suffix + s, r
        elif isinstance(node, list):
            for val in node:
                yield from refs(val)

    def visit(name: str, prefix: str, depth: int) -> None:
        if depth > 6:
            return
        for field, prop in models[name].get("properties", {}).items():
            for suffix, ref in refs(prop):
                if ref.endswith(".*"):
                    continue
                place = f"{prefix}{field}{suffix.replace('.*[]', '.*[]')}"
                if place not in places.setdefault(ref, []):
                    places[ref].append(place)
                    visit(ref, place + ".", depth + 1)

    visit(root, "", 0)
    return places


def codebook_fields() -> str:
    from chatlens.codebook import Codebook

    return model_reference(Codebook, "Generated from the typed models in `chatlens/codebook/`.")


def claims_fields() -> str:
    from chatlens.codebook.claims import ClaimsFile

    return model_reference(ClaimsFile,
                           "Generated from the typed models in `chatlens/codebook/claims.py`.")


def model_fields() -> dict[str, str]:
    """``{"Model.field": meaning}`` for every field of the codebook and claims models; the
    meaning is the model's description, else :data:`FIELD_MEANINGS`, else empty."""
    from chatlens.codebook import Codebook
    from chatlens.codebook.claims import ClaimsFile

    fields: dict[str, str] = {}
    for root in (Codebook, ClaimsFile):
        schema = root.model_json_schema()
        models = {root.__name__: schema, **schema.get("$defs", {})}
        for model, node in models.items():
            for field, prop in node.get("properties", {}).items():
                fields[f"{model}.{field}"] = prop.get("description") or FIELD_MEANINGS.get(
                    f"{model}.{field}", "")
    return fields


def model_field_names() -> set[str]:
    """Every field name of the codebook and claims models (for the completeness test)."""
    return {key.split(".", 1)[1] for key in model_fields()}


# -- store --------------------------------------------------------------------------------------

def store_tables() -> dict[str, list[tuple[str, str, bool]]]:
    """``{table: [(column, type, nullable)]}`` of a freshly created project; the label tables
    of ``labels.sqlite`` are named ``labels.sqlite: TABLE``."""
    from chatlens.project import Project

    with tempfile.TemporaryDirectory() as tmp, Project.init(Path(tmp) / "p") as project:
        tables = project.store.columns()
        for table, cols in project.labels().columns().items():
            tables[f"labels.sqlite: {table}"] = cols
    return tables


def store_schema() -> str:
    out = ["Generated from a freshly created project (the declared DuckDB and SQLite schemas).",
           "", "| table | columns (type; * = never null) |", "|---|---|"]
    for table, cols in store_tables().items():
        listed = ", ".join(f"`{c}` {t}{'' if null else '*'}" for c, t, null in cols)
        out.append(f"| `{table}` | {listed} |")
    out.append("")
    return "\n".join(out)


# -- settings -----------------------------------------------------------------------------------

def settings_text() -> str:
    from chatlens.settings import ENVIRONMENT

    out = ["Generated from `chatlens/settings.py`.", "",
           "| variable | default | what it changes |", "|---|---|---|"]
    for s in ENVIRONMENT:
        out.append(f"| `{s.name}` | {s.default} | {s.meaning} |")
    out.append("")
    return "\n".join(out)


# -- the built-in study -------------------------------------------------------------------------

def builtin_study() -> str:
    """The measures of ``builtin:exodus-2022`` and its claims, as tables."""
    from chatlens.codebook import load_codebook
    from chatlens.codebook.claims import load_claims

    cb = load_codebook("builtin:exodus-2022")
    out = [f"Generated from `builtin:exodus-2022` (codebook version {cb.version}).", "",
           "| measure | question a coder answers | labels | population | scorers |",
           "|---|---|---|---|---|"]
    for m in cb.measures:
        pop = m.population
        parts = []
        if pop.languages:
            parts.append("languages " + ", ".join(pop.languages))
        parts += [f"{c.measure} = {c.value}" for c in pop.where]
        if pop.since or pop.until:
            parts.append(f"{pop.since or '…'} to {pop.until or '…'}")
        kinds = [s.type for s in m.scorers]
        scorers = ", ".join(f"{k} ×{kinds.count(k)}" if kinds.count(k) > 1 else k
                            for k in dict.fromkeys(kinds))
        labels = ", ".join(f"`{lab}`" for lab in m.labels)
        out.append(f"| `{m.id}` | {m.question} | {labels} | {'; '.join(parts) or 'all'} | "
                   f"{scorers} |")
    claims = load_claims("builtin:exodus-2022", cb)
    out += ["", "| claim | statement | measured as | compare |", "|---|---|---|---|"]
    for c in claims.claims:
        scope = "; ".join(f"{w.measure} = {w.value}" for w in c.population.where)
        if c.groups:
            scope = "; ".join(f"{g}: {f.since or '…'} to {f.until or '…'}"
                              for g, f in c.groups.items())
        elif c.population.since or c.population.until:
            scope = f"{c.population.since or '…'} to {c.population.until or '…'}"
        scope = f" among {scope}" if scope else ""
        out.append(f"| `{c.id}` | {c.statement} | share of `{c.measure}` = `{c.value}`{scope} | "
                   f"`{c.compare}` |")
    out.append("")
    return "\n".join(out)


# -- Python API ---------------------------------------------------------------------------------

def api_text() -> str:
    """A mkdocstrings ``:::`` entry for every name of ``chatlens.__all__`` (classes first, errors
    in the order of their tree), rendered from the docstrings when the site is built."""
    import chatlens

    names = [n for n in chatlens.__all__ if not n.startswith("_")]
    errors = [n for n in names if isinstance(getattr(chatlens, n), type)
              and issubclass(getattr(chatlens, n), chatlens.ChatlensError)]
    order = {"ChatlensError": 0, "UsageError": 1, "ProjectError": 2, "ProjectLockedError": 3,
             "InputError": 4}
    errors.sort(key=lambda n: (order.get(n, 5), n))
    others = [n for n in names if n not in errors]
    out = []
    for n in others:
        out += [f"## {n}", "", f"::: chatlens.{n}", "    options:",
                "      show_root_heading: false", "      heading_level: 3", ""]
    out += ["## Errors", "",
            "Every error derives from `ChatlensError` and from the matching builtin, so callers "
            "can catch either; the messages are full sentences that say what to do next. The "
            "common ones, with their fixes: [FAQ](../faq.md).", ""]
    for n in errors:
        out += [f"::: chatlens.{n}", ""]
    return "\n".join(out)


GENERATORS: dict[str, Callable[[], str]] = {
    "api": api_text,
    "exodus-2022": builtin_study,
    "cli": cli_text,
    "codebook-fields": codebook_fields,
    "claims-fields": claims_fields,
    "store-schema": store_schema,
    "settings": settings_text,
}
