"""What the views share: the current engine, the GeoIP database, the clock and the id factory."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from flask import Flask, current_app

from service.audit.log import Events, NoAudit
from service.audit.usage import UsageMeter
from service.config import Settings
from service.decision import Decision
from service.engine import Engine
from service.geo import GeoDatabase
from service.inputs import Article
from service.keys import KeyStore
from service.web.metrics import Metrics
from service.web.reload import Rejection, Reloader

if TYPE_CHECKING:  # these two build on a Runtime: they import this module
    from service.web.geodata import GeoFollower
    from service.web.whatif import PastRules


def new_decision_id() -> str:
    """A UUIDv7 (RFC 9562): sorts by time, so log readers can rely on it."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(secrets.token_bytes(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64 | (0b10 << 62) | (rand & (2**62 - 1))
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Answered:
    """One decision as it leaves the service: what the audit log records."""

    decision_id: str
    article: Article
    decision: Decision
    address: str | None  # the reader's address as seen, for the logger to reduce
    what_if: bool = False  # asked with `at`: a question about another instant, not a page view
    named_tags: frozenset[str] = frozenset()  # tags the rules name: the record keeps them whole


DecisionLogger = Callable[[Answered], None]  # one decision (what tests inject)
DecisionsLogger = Callable[[Sequence[Answered]], None]  # the decisions of one request (what views call)


def _discard(_: Sequence[Answered]) -> None:
    return None


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    loaded_at: datetime
    geo: GeoDatabase | None  # the City database; None: readers located by address are unknown
    geo_error: str | None
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = new_decision_id
    log_decisions: DecisionsLogger = _discard
    pid: int = field(default_factory=os.getpid)
    audit: Events = field(default_factory=NoAudit)  # events: ruleset_loaded/_rejected, stopped
    reloader: Reloader | None = None
    metrics: Metrics = field(default_factory=Metrics)
    audit_lost: int = 0  # records not written since the audit log last failed (fail-open)
    audit_lost_since: datetime | None = None
    anonymous: GeoDatabase | None = None  # the Anonymous IP database, when configured
    geo_refused: dict[str, dict[str, str] | None] = field(default_factory=dict)  # by kind: last refusal
    geo_follower: GeoFollower | None = None
    past: PastRules | None = None  # the archived rules in force at past instants, for what-ifs
    usage: UsageMeter | None = None  # free space and growth of the audit log's disk
    keys: KeyStore | None = None  # HERALD_KEYS_FILE, when set

    @property
    def rejected(self) -> Rejection | None:
        """The last rules change that failed to load, while it stands."""
        return self.reloader.rejected if self.reloader is not None else None

    def swap(self, engine: Engine) -> None:
        """Serve `engine` from now on (the reloader's one way in); requests in flight keep theirs."""
        self.engine, self.loaded_at = engine, self.clock()
        self.metrics.serving(engine.hash)


def runtime(app: Flask | None = None) -> Runtime:
    return cast(Runtime, (app or current_app).extensions["herald"])
