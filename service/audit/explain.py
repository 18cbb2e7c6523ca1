"""Why each rule in force did or did not match one logged decision: the payload auditors see."""

from __future__ import annotations

from typing import Any

from service.audit.reader import Record
from service.audit.replay import Engines, inputs, replay
from service.engine import CompiledRule


def explain_decision(record: Record, engines: Engines) -> dict[str, Any]:
    """The record's matches, the replay verdict and, per rule of its ruleset, what held.

    This is the seam for a fuller explanation: when the engine offers `explain(article, reader, at)`,
    its per-rule reasons belong in `rules` below, in place of the two facts given now."""
    verdict = replay(record, engines)
    explanation: dict[str, Any] = {
        "matches": record.get("matches", []),
        "replay": {"verdict": verdict.verdict, "differences": list(verdict.differences)},
        "rules": [],
    }
    if verdict.verdict == "unavailable":
        return explanation
    engine = engines.get(str(record["ruleset"]))
    article, _, at = inputs(record)
    matched = {m["rule"]: m for m in record.get("matches", [])}
    for rule in engine.ruleset.rules.values():
        explanation["rules"].append(
            {
                "rule": rule.id,
                "notice": rule.notice,
                "matched": rule.id in matched,
                "match": matched.get(rule.id),
                "in_effect": rule.effective.holds(at),
                "article_fits": CompiledRule.of(rule).fits(article),
            }
        )
    return explanation
