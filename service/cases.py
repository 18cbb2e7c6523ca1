"""Runs the editors' test cases (rules/tests/*.yaml) against an engine and says what failed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from service.decision import POSSIBLY_IN_REGION, Decision
from service.engine import Engine
from service.inputs import Location
from service.model import Case
from service.ruleset import Ruleset, SourcedCase
from service.verdicts import region_path


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: SourcedCase
    decision: Decision | None  # None when the case could not be decided at all
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


Locate = Callable[[str], Location]


def run_case(
    engine: Engine, sourced: SourcedCase, now: datetime | None = None, locate: Locate | None = None
) -> CaseResult:
    """Decide the case and compare with its expectations. `now` is used when the case has no `at`;
    `locate` turns a case's `ip` into a location (the CLI passes a GeoIP lookup)."""
    case = sourced.case
    at = case.at or now or datetime.now(UTC)
    ip = case.reader.ip
    if ip is not None and locate is None:
        return CaseResult(sourced, None, (f"the case gives ip {ip!r}, but no GeoIP database is available",))
    reader = case.reader.to_reader(locate(ip) if ip is not None and locate is not None else None)
    decision = engine.decide(case.article.to_article(), reader, at)
    return CaseResult(sourced, decision, tuple(_compare(case, decision)))


def _compare(case: Case, decision: Decision) -> list[str]:
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
    return failures


def run_cases(engine: Engine, now: datetime | None = None, locate: Locate | None = None) -> list[CaseResult]:
    return [run_case(engine, case, now, locate) for case in engine.ruleset.cases]


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the cases exercise: rules fired, regions matched through, notice texts shown."""

    rules: tuple[str, ...]
    regions: tuple[str, ...]
    texts: tuple[str, ...]  # "notice/language"
    missed_rules: tuple[str, ...]
    missed_regions: tuple[str, ...]
    missed_texts: tuple[str, ...]

    @property
    def percent(self) -> float:
        total = len(self.rules) + len(self.regions) + len(self.texts)
        missed = len(self.missed_rules) + len(self.missed_regions) + len(self.missed_texts)
        return 100.0 if total == 0 else 100.0 * (total - missed) / total


def coverage(ruleset: Ruleset, results: Sequence[CaseResult]) -> Coverage:
    rules: set[str] = set()
    regions: set[str] = set()
    texts: set[str] = set()
    for result in results:
        if result.decision is None:
            continue
        location = result.decision.reader
        for match in result.decision.matches:
            rules.add(match.rule)
            if match.reason == POSSIBLY_IN_REGION and match.region is not None:
                regions.add(match.region)  # the region's subdivisions were weighed, unknown as they are
            elif match.region is not None:
                path = region_path(match.region, ruleset, location)
                regions.update(part for part in path if part in ruleset.regions)
        texts.update(f"{n.id}/{n.language}" for n in result.decision.notices)
    all_texts = [f"{n.id}/{lang}" for n in ruleset.notices.values() for lang in sorted(n.texts)]
    return Coverage(
        rules=tuple(ruleset.rules),
        regions=tuple(ruleset.regions),
        texts=tuple(all_texts),
        missed_rules=tuple(r for r in ruleset.rules if r not in rules),
        missed_regions=tuple(r for r in ruleset.regions if r not in regions),
        missed_texts=tuple(t for t in all_texts if t not in texts),
    )
