"""The engine's output: the notices a reader is shown, with the reasons and rules behind them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.inputs import Location


@dataclass(frozen=True, slots=True)
class ShownNotice:
    """One notice with the text chosen for this reader, and every rule that gave it."""

    id: str
    severity: str
    placement: str
    language: str
    title: str
    body: str
    link: str | None
    rules: tuple[str, ...]


POSSIBLY_IN_REGION = "possibly_in_region"
"""The reason a rule matches a reader whose country is known and subdivision is not, in a region
that holds some subdivisions of that country, when the rule shows to unknown locations."""


@dataclass(frozen=True, slots=True)
class Match:
    """Why a rule matched: e.g. region 'russia-controlled-ukraine' by code 'UA-43'."""

    rule: str
    # "region", "possibly_in_region" (the subdivision is unknown: `code` is the country),
    # "unknown_location", "anonymized" or "language"
    reason: str
    region: str | None = None
    code: str | None = None

    def describe(self) -> str:
        """Why, in words: 'in region russia by RU', 'possibly in region … (subdivision unknown)'."""
        if self.reason == "region":
            return f"in region {self.region} by {self.code}"
        if self.reason == POSSIBLY_IN_REGION:
            return f"possibly in region {self.region} (subdivision unknown in {self.code})"
        if self.reason == "language":
            return f"prefers {self.code}"
        return self.reason.replace("_", " ")


@dataclass(frozen=True, slots=True)
class Superseded:
    """A notice that applied but is not shown, because a notice that is shown supersedes it."""

    id: str
    by: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one (article, reader, instant) on one ruleset. Pure data."""

    ruleset: str
    at: datetime
    reader: Location
    languages: tuple[str, ...]
    notices: tuple[ShownNotice, ...]
    effects: tuple[str, ...]
    matches: tuple[Match, ...]
    superseded: tuple[Superseded, ...] = ()

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(m.rule for m in self.matches)
