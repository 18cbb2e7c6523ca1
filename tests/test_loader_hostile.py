"""Hostile rule files: refused quickly, in bounded memory, with a clear error at a position."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import loader
from service.loader import MAX_FILE_BYTES, MAX_REGION_DEPTH, load_ruleset, parse_file
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


# ---- rule files that used to crash the loader: every failure is a RulesetInvalid --------------

NOTICE_AND_RULE = """\
notices:
  - id: n
    severity: legal
    default_language: en
    texts: {en: {title: T, body: B}}
rules:
  - id: r
    notice: n
    reader: {regions: [r0]}
    effective: {from: 2024-01-01}
"""


def chain(length: int) -> str:
    """Regions r0 .. r{length-1}, each including the next."""
    lines = ["regions:"]
    for i in range(length - 1):
        lines.append(f"  - {{id: r{i}, include: [r{i + 1}]}}")
    lines.append(f"  - {{id: r{length - 1}, countries: [RU]}}")
    return "\n".join(lines) + "\n"


def problems_of(directory: Path, files: dict[str, str], **limits: int) -> list[Problem]:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(directory, **limits)
    return caught.value.problems


@pytest.mark.parametrize("length", [17, 1200, 5000])
def test_region_nesting_is_bounded_with_an_error_at_the_outermost_region(tmp_path: Path, length: int) -> None:
    (problem,) = problems_of(tmp_path / "rules", {"regions.yaml": chain(length), "r.yaml": NOTICE_AND_RULE})
    assert (problem.file.endswith("regions.yaml"), problem.line, problem.code) == (True, 2, "region-too-deep")
    assert f"region 'r0' nests regions {length} levels deep, more than {MAX_REGION_DEPTH}" in problem.message


def test_regions_as_deep_as_allowed_load(tmp_path: Path) -> None:
    (tmp_path / "regions.yaml").write_text(chain(MAX_REGION_DEPTH))
    (tmp_path / "r.yaml").write_text(NOTICE_AND_RULE)
    assert load_ruleset(tmp_path).areas["r0"].countries.keys() == {"RU"}


@pytest.mark.parametrize(
    "written",
    [
        '"9999-12-31T23:59:59-23:59"',
        "9999-12-31T23:59:59-23:59",
        "9999-12-31 23:59:59 -5",
        '"0001-01-01T00:00:00+01:00"',
        "0001-01-01T00:00:00+23:59",
    ],
)
def test_dates_past_the_calendar_in_utc_are_an_error_at_their_line(tmp_path: Path, written: str) -> None:
    text = chain(1) + NOTICE_AND_RULE.replace("from: 2024-01-01", f"from: {written}")
    (problem,) = problems_of(tmp_path / "rules", {"r.yaml": text})
    assert (problem.line, problem.code) == (12, "value-error")
    assert "outside the calendar once converted to UTC (years 1 to 9999)" in problem.message


def test_the_rules_directory_has_a_total_size_limit(tmp_path: Path) -> None:
    files = {f"part{i}.yaml": f"# {'x' * 3000}\nregions: [{{id: r{i}, countries: [RU]}}]\n" for i in range(4)}
    directory = tmp_path / "rules"
    (problem,) = problems_of(directory, files, max_total_bytes=10_000)
    assert (problem.file, problem.code) == (str(directory), "too-large")
    assert "more than 10000 (HERALD_RULES_MAX_BYTES)" in problem.message
    (directory / "part3.yaml").unlink()
    assert set(load_ruleset(directory, max_total_bytes=10_000).regions) == {"r0", "r1", "r2"}


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (RecursionError("maximum recursion depth exceeded"), "nested too deeply to load (recursion limit)"),
        (MemoryError(), "too large to load (out of memory)"),
        (OverflowError("date value out of range"), "OverflowError: date value out of range"),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    ],
)
def test_any_failure_while_loading_is_a_problem_at_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, message: str
) -> None:
    """Whatever a future bug or the machine throws while a file is read, the caller gets only
    RulesetInvalid, so every shell keeps serving its last good rules."""

    def explode(name: str, data: bytes) -> object:
        raise error

    monkeypatch.setattr(loader, "parse_file", explode)
    (problem,) = problems_of(tmp_path / "rules", {"r.yaml": chain(1)})
    assert problem.file.endswith("r.yaml") and problem.code == "load-failed"
    assert problem.message == f"the rules could not be loaded: {message}"


def test_a_failure_after_reading_is_a_problem_at_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(loader.Ruleset, "build", explode)
    directory = tmp_path / "rules"
    (problem,) = problems_of(directory, {"r.yaml": chain(1)})
    assert (problem.file, problem.code) == (str(directory), "load-failed")


# ---- fuzz: generated rule directories -----------------------------------------------------------

EDGE_DATES = st.sampled_from(
    [
        "0001-01-01",
        "9999-12-31",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31 23:59:59 -5",
        "0000-01-01",
        "10000-01-01",
        "2024-02-30",
        "2024-02-29T24:00:00Z",
        "1e999",
        "-1",
    ]
) | st.datetimes().map(lambda d: d.isoformat())
IDS = st.sampled_from([f"r{i}" for i in range(6)])


@st.composite
def rule_directories(draw: st.DrawFn) -> dict[str, str]:
    """Files of regions (chains, cycles, huge lists), notices and rules with dates at the edges."""
    chain_length = draw(st.sampled_from([0, 1, 2, MAX_REGION_DEPTH, MAX_REGION_DEPTH + 1, 1200]))
    regions = [{"id": f"c{i}", "include": [f"c{i + 1}"]} for i in range(chain_length - 1)]
    regions += [{"id": f"c{chain_length - 1}", "countries": ["RU"]}] if chain_length else []
    for region_id in draw(st.lists(IDS, max_size=6, unique=True)):
        region: dict[str, object] = {"id": region_id, "include": draw(st.lists(IDS, max_size=3))}
        region["countries"] = draw(st.sampled_from([[], ["RU"], ["RU", "UA"] * 500, ["XX"]]))
        regions.append(region)
    rule_regions = draw(st.lists(IDS | st.just("c0"), min_size=1, max_size=3))
    tags = draw(st.sampled_from([["russia"], [f"t{i}" for i in range(2_000)], ["x" * 300]]))
    start, until = draw(EDGE_DATES), draw(EDGE_DATES)
    quote = draw(st.sampled_from(['"', ""]))
    rules = (
        "rules:\n  - id: r\n    notice: n\n"
        f"    reader: {{regions: {json.dumps(rule_regions)}}}\n"
        f"    article: {{tags: {{any: {json.dumps(tags)}}}}}\n"
        f"    effective: {{from: {quote}{start}{quote}, until: {quote}{until}{quote}}}\n"
    )
    notices = (
        "notices:\n  - {id: n, severity: legal, default_language: en, texts: {en: {title: T, body: B}}}\n"
    )
    return {"regions.yaml": "regions: " + json.dumps(regions) + "\n", "rules.yaml": notices + rules}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_directories())
def test_any_rule_directory_loads_or_is_refused_with_problems(files: dict[str, str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        for name, text in files.items():
            (Path(directory) / name).write_text(text, encoding="utf-8")
        try:
            load_ruleset(Path(directory))
        except RulesetInvalid as invalid:  # the only exception allowed out
            assert invalid.problems and all(p.line >= 1 and p.column >= 1 for p in invalid.problems)
