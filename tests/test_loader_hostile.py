"""Hostile rule files: refused quickly, in bounded memory, with a clear error at a position."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.loader import MAX_FILE_BYTES, load_ruleset, parse_file
from service.problems import Problem, RulesetInvalid

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (LAUGHS, (2, 8), "YAML aliases (*name) are not allowed"),
        ("rules: !!python/object/apply:os.system [echo hacked]\n", (1, 8), "YAML tags"),
        ("regions:\n  - !!python/name:builtins.eval x\n", (2, 5), "YAML tags"),
        ("x: " + "[" * 200 + "]" * 200 + "\n", (1, 35), "nested more than 32 levels deep"),
        ("x:\n" + "".join("  " * i + "- \n" for i in range(1, 60)), None, "nested more than 32 levels deep"),
    ],
    ids=["billion laughs", "python object", "python name", "deep flow", "deep block"],
)
def test_refused_at_its_position(text: str, where: tuple[int, int] | None, message: str) -> None:
    parsed, problems = parse_file("hostile.yaml", text.encode())
    assert parsed is None
    (problem,) = problems
    assert message in problem.message and problem.code == "yaml"
    if where is not None:
        assert (problem.line, problem.column) == where


def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.write(b"regions:\n")
        file.truncate(50 * 1024 * 1024)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(tmp_path)
    assert time.monotonic() - started < 5  # generous: the point is "not parsed", not a timing
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 2 * MAX_FILE_BYTES / 1024
    (problem,) = caught.value.problems
    assert problem.code == "too-large"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_give_problems_never_an_exception(data: bytes) -> None:
    parsed, problems = parse_file("fuzz.yaml", data)
    assert (parsed is None) == bool(problems)
    assert all(isinstance(p, Problem) and p.line >= 1 and p.column >= 1 for p in problems)


KEYS = [
    "regions",
    "notices",
    "rules",
    "cases",
    "id",
    "countries",
    "subdivisions",
    "include",
    "severity",
    "texts",
    "en",
    "title",
    "body",
    "notice",
    "reader",
    "regions",
    "article",
    "publisher",
    "from",
]
SCALARS = st.one_of(
    st.sampled_from(["RU", "UA-43", "russia", "legal", "2024-02-20", "show", "x", "", "1e999", "~"]),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_any_document_gives_a_model_or_located_problems(document: object) -> None:
    import json

    parsed, problems = parse_file("fuzz.yaml", json.dumps(document, allow_nan=True).encode())
    assert (parsed is None) == bool(problems)
    assert all(p.line >= 1 and p.column >= 1 and p.message for p in problems)
