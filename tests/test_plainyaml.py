"""The fast reader of plain rule files gives what the positional reader gives, or steps aside."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import plainyaml
from service.loader import _yaml, parse_file, rule_files, to_plain

RULES = Path(__file__).resolve().parent.parent / "rules"
BLOCK = """\
regions:
  - id: ua
    countries: [UA]
    exclude: {subdivisions: [UA-43]}
notices:
  - id: n
    severity: legal
    default_language: en
    texts:
      en: {title: "T", body: 'B'}
rules:
  - id: r
    notice: n
    reader:
      regions: ua
    effective:
      from: 2024-03-01
      until: 2025-01-01T12:00:00+02:00
cases:
  - name: a case
    article: {publisher: p}
    expect: {notices: [n]}
"""


@pytest.mark.parametrize(
    "data",
    [BLOCK.encode(), *(p.read_bytes() for p in rule_files(RULES))],
    ids=["block", *(p.name for p in rule_files(RULES))],
)
def test_fast_and_positional_readers_agree(data: bytes) -> None:
    fast, problems = parse_file("f.yaml", data)
    slow, _ = parse_file("f.yaml", data, fast=False)
    assert fast is not None and slow is not None, problems
    assert fast.tree is None and slow.tree is not None  # the fast way was taken
    assert fast.model == slow.model
    for section in ("regions", "notices", "rules", "cases"):
        for i in range(len(getattr(fast.model, section))):
            assert fast.item(section, i) == slow.item(section, i), (section, i)


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "'quoted'",
        '"2024"',
        "12",
        "-3",
        "1.5",
        "true",
        "False",
        "~",
        "null",
        "",
        "2024-03-01",
        "2024-03-01T12:00:00Z",
        "2024-03-01 12:00:00.5+05:30",
        "yes",
        "no",
        "on",
    ],
)
def test_plain_scalars_read_as_the_positional_reader_reads_them(value: str) -> None:
    text = f"key: {value}\n"
    assert plainyaml.read(text).data == to_plain(_yaml().load(text))


@pytest.mark.parametrize(
    "text",
    [
        "a: 0x1F\n",
        "a: 0o17\n",  # octal, 012, 1_000, .inf, 1e3: left to the positional reader
        "a: 012\n",
        "a: 1_000\n",
        "a: .inf\n",
        "a: 1e3\n",
        "a: 2024-02-30\n",  # an impossible date: kept as text there, for validation to report
        "a: !!str 5\n",
        "a: &x 1\nb: *x\n",
        "a: 1\na: 2\n",
        "a: {b: 1}\n<<: {c: 2}\n",
        "a: [\n",
        "---\na: 1\n---\nb: 2\n",
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 40)),
    ],
)
def test_anything_unusual_is_left_to_the_positional_reader(text: str) -> None:
    with pytest.raises(plainyaml.NotPlain):
        plainyaml.read(text)
