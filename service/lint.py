"""Warnings about a valid ruleset: rules that cannot fire, duplicates, and unused parts."""

from __future__ import annotations

from datetime import datetime
from itertools import combinations

from service.languages import covered
from service.model import Rule
from service.problems import Problem
from service.ruleset import Ruleset


def lint(ruleset: Ruleset, now: datetime) -> list[Problem]:
    """Every warning for `ruleset` at instant `now`, sorted by position."""
    warnings = [
        *_missing_texts(ruleset),
        *_ended(ruleset, now),
        *_never_match(ruleset),
        *_duplicates(ruleset),
        *_unused(ruleset),
        *_every_publisher(ruleset),
        *_undated_cases(ruleset),
    ]
    return sorted(warnings)


def _warn(ruleset: Ruleset, section: str, item_id: str, key: str | None, code: str, message: str) -> Problem:
    origin = ruleset.origins.get((section, item_id))
    file, line, column = origin.at(key) if origin else ("<ruleset>", 1, 1)
    return Problem(file, line, column, code, message, "warning")


def _missing_texts(ruleset: Ruleset) -> list[Problem]:
    found = []
    for rule in ruleset.rules.values():
        notice = ruleset.notices[rule.notice]
        missing = [t for t in rule.reader.languages if not covered(t, notice.texts)]
        if missing:
            message = (
                f"rule {rule.id!r} shows notice {notice.id!r} to readers who prefer {missing}, "
                f"but the notice has no text in {'that language' if len(missing) == 1 else 'those languages'}"
            )
            found.append(_warn(ruleset, "rules", rule.id, "reader", "missing-text", message))
    return found


def _ended(ruleset: Ruleset, now: datetime) -> list[Problem]:
    return [
        _warn(
            ruleset,
            "rules",
            rule.id,
            "effective",
            "ended",
            f"rule {rule.id!r} ended on {rule.effective.until.isoformat()}; remove it or extend it",
        )
        for rule in ruleset.rules.values()
        if rule.effective.until is not None and rule.effective.ended(now)
    ]


def _never_match(ruleset: Ruleset) -> list[Problem]:
    found = []
    for rule in ruleset.rules.values():
        r = rule.reader
        empty = [region for region in r.regions if ruleset.areas[region].empty]
        other_paths = r.languages or "show" in (r.unknown_location, r.anonymized)
        if empty and len(empty) == len(r.regions) and not other_paths:
            message = f"rule {rule.id!r} can never match: its regions {empty} are empty after exclusions"
            found.append(_warn(ruleset, "rules", rule.id, "reader", "never-matches", message))
    return found


def _same_readers(a: Rule, b: Rule) -> bool:
    return a.notice == b.notice and a.article == b.article and a.reader == b.reader


def _duplicates(ruleset: Ruleset) -> list[Problem]:
    return [
        _warn(
            ruleset,
            "rules",
            second.id,
            "id",
            "duplicate-rule",
            f"rules {first.id!r} and {second.id!r} give notice {first.notice!r} to the same readers "
            "in overlapping periods",
        )
        for first, second in combinations(ruleset.rules.values(), 2)
        if _same_readers(first, second) and first.effective.overlaps(second.effective)
    ]


def _unused(ruleset: Ruleset) -> list[Problem]:
    used_notices = {rule.notice for rule in ruleset.rules.values()}
    used_regions: set[str] = set()
    pending = [region for rule in ruleset.rules.values() for region in rule.reader.regions]
    while pending:
        region = pending.pop()
        if region not in used_regions:
            used_regions.add(region)
            pending += ruleset.regions[region].include
    return [
        _warn(ruleset, "notices", n, "id", "unused-notice", f"notice {n!r} is not used by any rule")
        for n in ruleset.notices
        if n not in used_notices
    ] + [
        _warn(ruleset, "regions", r, "id", "unused-region", f"region {r!r} is not used by any rule")
        for r in ruleset.regions
        if r not in used_regions
    ]


def _every_publisher(ruleset: Ruleset) -> list[Problem]:
    """A rule without `article.publisher` shows its notice on every publisher's pages, the ones
    added to Herald later included: worth saying, as it is rarely what an editor meant."""
    return [
        _warn(
            ruleset,
            "rules",
            rule.id,
            "article",
            "every-publisher",
            f"rule {rule.id!r} names no article.publisher: it applies to every publisher",
        )
        for rule in ruleset.rules.values()
        if not rule.article.publisher
    ]


def _undated_cases(ruleset: Ruleset) -> list[Problem]:
    """A case without `at` is decided at the clock's instant, so it passes today and may fail once a
    rule's `until` passes: its result changes with the calendar."""
    return [
        Problem(
            sourced.file,
            sourced.line,
            sourced.column,
            "case-without-at",
            f"case {sourced.case.name!r} has no `at`: its result changes with the calendar; "
            "give the instant it is about, e.g. `at: 2025-01-01` (midnight UTC)",
            "warning",
        )
        for sourced in ruleset.cases
        if sourced.case.at is None
    ]
