"""Problems found in rule files: a stable code, a message and a file:line:column, as data."""

from __future__ import annotations

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
        count = sum(p.severity == "error" for p in self.problems)
        super().__init__(f"{count} error(s) in rule files")

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
