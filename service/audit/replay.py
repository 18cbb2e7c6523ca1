"""Re-runs logged decisions on the archived ruleset then in force, and says whether they agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from service.audit.archive import Archive, ArchiveError
from service.audit.reader import Record
from service.decision import Decision
from service.engine import Engine
from service.inputs import Article, Location, Reader
from service.ruleset import Ruleset


class RulesetArchive(Protocol):
    """Where archived rulesets are loaded from: a log directory's archive, or the audit database."""

    def load(self, ruleset_hash: str) -> Ruleset: ...


@dataclass(frozen=True, slots=True)
class Replayed:
    record: Record
    verdict: str  # "same", "different", or "unavailable" (the ruleset is not in any archive)
    differences: tuple[str, ...] = ()

    @property
    def decision_id(self) -> str:
        return str(self.record.get("decision_id"))


class Engines:
    """Engines over archived rulesets, built once per hash, looked up in every directory's archive
    (or in the archives given)."""

    def __init__(self, directories: Sequence[Path], archives: Sequence[RulesetArchive] = ()) -> None:
        self.archives: list[RulesetArchive] = [Archive(d) for d in directories] + list(archives)
        self._engines: dict[str, Engine] = {}

    def get(self, ruleset_hash: str) -> Engine:
        if ruleset_hash not in self._engines:
            self._engines[ruleset_hash] = Engine(self._load(ruleset_hash))
        return self._engines[ruleset_hash]

    def _load(self, ruleset_hash: str) -> Any:
        errors = []
        for archive in self.archives:
            try:
                return archive.load(ruleset_hash)
            except ArchiveError as error:
                errors.append(str(error))
        raise ArchiveError("; ".join(errors) or f"ruleset {ruleset_hash}: no archive given")


def inputs(record: Record) -> tuple[Article, Reader, datetime]:
    """The engine's inputs as the record keeps them."""
    a, r = record["article"], record["reader"]
    article = Article(
        publisher=a["publisher"],
        id=a.get("id"),
        url=a.get("url"),
        section=a.get("section"),
        tags=frozenset(a.get("tags") or ()),
        language=a.get("language"),
        type=a.get("type"),
    )
    location = Location(
        r.get("country"), r.get("subdivision"), r.get("source", "unknown"), bool(r.get("anonymized"))
    )
    at = datetime.fromisoformat(record["at"].replace("Z", "+00:00"))
    return article, Reader(location, tuple(r.get("languages") or ())), at


def answer(decision: Decision) -> dict[str, Any]:
    """What a replay compares: notices (id, language, rules), effects and rules."""
    return {
        "notices": [{"id": n.id, "language": n.language, "rules": list(n.rules)} for n in decision.notices],
        "effects": list(decision.effects),
        "rules": list(decision.rules),
    }


def replay(record: Record, engines: Engines) -> Replayed:
    try:
        engine = engines.get(str(record["ruleset"]))
    except ArchiveError as error:
        return Replayed(record, "unavailable", (str(error),))
    again = answer(engine.decide(*inputs(record)))
    differences = tuple(
        f"{field}: logged {record.get(field)!r}, replayed {again[field]!r}"
        for field in ("notices", "effects", "rules")
        if record.get(field) != again[field]
    )
    return Replayed(record, "different" if differences else "same", differences)
