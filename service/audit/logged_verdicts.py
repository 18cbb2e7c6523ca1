"""Why each rule in force did or did not match one logged decision: the payload auditors see."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from service.audit.reader import Record
from service.audit.replay import Engines, inputs, replay
from service.verdicts import explain


def explain_decision(record: Record, engines: Engines) -> dict[str, Any]:
    """The record's matches, the replay verdict and, for every rule of the ruleset then in force,
    each condition with whether it held (as `herald explain` shows it)."""
    verdict = replay(record, engines)
    explanation: dict[str, Any] = {
        "matches": record.get("matches", []),
        "replay": {"verdict": verdict.verdict, "differences": list(verdict.differences)},
        "rules": [],
    }
    if verdict.verdict == "unavailable":
        return explanation
    engine = engines.get(str(record["ruleset"]))
    explanation["rules"] = [asdict(v) for v in explain(engine, *inputs(record)).verdicts]
    return explanation
