"""Codebook validation: every problem is named with its place and line, nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chatlens import Project
from chatlens.codebook import builtin_names, load_codebook, parse_codebook
from chatlens.errors import CodebookError

GOOD = """
name: test
version: "1"
languages: [ru, uk]
measures:
  - id: border
    question: Is the message about the border?
    labels: [yes, no]
    instructions: Code yes for border talk.
    scorers:
      - type: lexicon
        terms: {ru: [граница], uk: [кордон]}
"""


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(CodebookError) as info:
        parse_codebook(text, "cb.yaml")
    return info.value.problems


def test_builtin_codebook_is_valid_and_complete() -> None:
    assert "exodus-2022" in builtin_names()
    cb = load_codebook("builtin:exodus-2022")
    ids = {m.id for m in cb.measures}
    assert {"border_crossing", "mobilization", "destination", "z_symbol", "war_stance",
            "host_hostility", "advice_request"} <= ids
    for m in cb.measures:
        assert len(m.instructions) > 50 and m.examples, m.id
    assert cb.measure("war_stance").labels == ["supports", "opposes", "unclear"]


def test_shipped_claims_file_refers_to_real_measures() -> None:
    from importlib import resources

    from chatlens.codebook import BUILTIN

    text = resources.files(BUILTIN).joinpath("exodus-2022.claims.yaml").read_text()
    claims = yaml.safe_load(text)
    cb = load_codebook(claims["codebook"])
    for claim in claims["claims"]:
        m = cb.measure(claim["measure"])
        assert claim["value"] in m.labels and claim["statement"] and claim["compare"]


def test_yes_no_labels_stay_strings() -> None:
    assert parse_codebook(GOOD).measures[0].labels == ["yes", "no"]


def test_invalid_yaml_names_the_line() -> None:
    ((path, line, msg),) = problems("name: [oops\nversion: 1\n")
    assert path == "(file)" and line is not None and "not valid YAML" in msg


def test_unknown_key_and_wrong_type_are_located() -> None:
    text = GOOD.replace("    instructions:", "    colour: red\n    instructions:")
    text = text.replace('version: "1"', "version: [1]")
    found = {p: (line, m) for p, line, m in problems(text)}
    assert "unknown key 'colour'" in found["measures[0].colour"][1]
    assert found["measures[0].colour"][0] == 9
    assert "version" in found


def test_unknown_key_that_looks_like_a_validator_tag_is_named() -> None:
    # pydantic's own location tags contain "[" (function-after[...]); a user's key may too
    found = {p: m for p, _, m in problems(GOOD.replace("measures:", "measure[s: 1\nmeasures:"))}
    assert "unknown key 'measure[s'" in found["measure[s"]


def test_lexicon_in_an_undeclared_language_is_located() -> None:
    text = GOOD.replace("uk: [кордон]", "uk: [кордон], be: [мяжа]")
    ((path, line, msg),) = problems(text)
    assert path == "measures[0].scorers[0].terms.be" and line == 12
    assert "does not declare" in msg


def test_regex_that_fails_or_backtracks_is_rejected() -> None:
    text = GOOD + "      - type: regex\n        pattern: '(\\\\w+\\\\s?)*$'\n"
    ((path, _, msg),) = problems(text)
    assert path == "measures[0].scorers[1].pattern" and "nests unbounded repeats" in msg
    text = GOOD + "      - type: regex\n        pattern: '(unclosed'\n"
    ((path, _, msg),) = problems(text)
    assert "does not compile" in msg


def test_semantic_errors_labels_and_population() -> None:
    text = GOOD.replace("    scorers:", "    population: {where: [{measure: nope, value: x}]}\n"
                        "    scorers:").replace("terms: {ru", "label: maybe\n        terms: {ru")
    found = {p: m for p, _, m in problems(text)}
    assert "no measure 'nope'" in found["measures[0].population.where[0].measure"]
    assert "'maybe' is not one of the labels" in found["measures[0].scorers[0].label"]


def test_cli_validate_reports_problems_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("uk: [кордон]", "kk: [шекара]"), encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "chatlens.cli", "codebook", "validate", str(bad)],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "measures[0].scorers[0].terms.kk (line 12)" in res.stderr
    assert "Traceback" not in res.stderr
    with Project.init(tmp_path / "p") as p:
        with pytest.raises(CodebookError):
            p.code(bad)
        assert p.store.con.execute("SELECT count(*) FROM codebooks").fetchone() == (0,)
        assert p.store.con.execute("SELECT count(*) FROM codes").fetchone() == (0,)
