"""Problems found in rule files: a stable code, a message and a file:line:column, as data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ProblemLevel = Literal["error", "warning"]  # how bad a problem is (a notice has a `NoticeSeverity`)


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One problem in a rule file. Sorts by file, line, column, so lists read top to bottom."""

    file: str
    line: int
    column: int
    code: str
    message: str
    severity: ProblemLevel = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message} [{self.code}]"

    def as_dict(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


class RulesetInvalid(Exception):
    """A rule directory that does not load; carries every problem found, sorted."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__(tally(self.problems, "error"))

    @property
    def summary(self) -> str:
        """The one line printed after the problems: `2 errors in 2 files`."""
        return str(self.args[0])

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def tally(problems: Iterable[Problem], severity: ProblemLevel) -> str:
    """`2 errors in 2 files`, `1 warning in 1 file`, `0 errors`: the problems of one severity."""
    chosen = [p for p in problems if p.severity == severity]
    files = len({p.file for p in chosen})
    return plural(len(chosen), severity) + (f" in {plural(files, 'file')}" if chosen else "")
