"""Runs the editors' test cases (rules/tests/*.yaml) against an engine and says what failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from service.decision import Decision
from service.engine import Engine
from service.ruleset import SourcedCase


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: SourcedCase
    decision: Decision
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def run_case(engine: Engine, sourced: SourcedCase, now: datetime | None = None) -> CaseResult:
    """Decide the case and compare with its expectations. `now` is used when the case has no `at`."""
    case = sourced.case
    at = case.at or now or datetime.now(UTC)
    decision = engine.decide(case.article.to_article(), case.reader.to_reader(), at)
    shown = [n.id for n in decision.notices]
    expect = case.expect
    failures: list[str] = []
    if expect.notices is not None and shown != list(expect.notices):
        failures.append(f"expected notices {list(expect.notices)}, got {shown}")
    failures += [f"expected notice {n!r} to be shown, it was not" for n in expect.includes if n not in shown]
    failures += [f"expected notice {n!r} not to be shown, it was" for n in expect.excludes if n in shown]
    if expect.effects is not None and sorted(expect.effects) != list(decision.effects):
        failures.append(f"expected effects {sorted(expect.effects)}, got {list(decision.effects)}")
    languages = {n.id: n.language for n in decision.notices}
    for notice_id, language in expect.languages.items():
        if notice_id not in languages:
            failures.append(f"expected notice {notice_id!r} in {language!r}, it was not shown")
        elif languages[notice_id] != language:
            failures.append(f"expected notice {notice_id!r} in {language!r}, got {languages[notice_id]!r}")
    return CaseResult(sourced, decision, tuple(failures))


def run_cases(engine: Engine, now: datetime | None = None) -> list[CaseResult]:
    return [run_case(engine, case, now) for case in engine.ruleset.cases]
