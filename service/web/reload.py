"""Reload in one app: load the rules directory off the request path and swap it in whole.

Under `herald serve` the gunicorn master watches the directory and forks workers on a change
(service/serve.py); this is what POST /v1/ruleset/reload runs, in the worker that answers.

A ruleset that fails to load is never served: the last good one stays, and the rejection is
kept for /readyz and /v1/ruleset and written to the audit log (once per content)."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from service.audit.log import Events
from service.engine import Engine
from service.loader import failure, load_ruleset, rule_files
from service.problems import Problem, RulesetInvalid
from service.web.metrics import Metrics

log = logging.getLogger("herald.reload")


@dataclass(frozen=True, slots=True)
class Rejection:
    """The last ruleset that failed to load: its problems, and a hash of the files as they were."""

    files: str
    at: datetime
    problems: tuple[Problem, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "errors": [str(p) for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # "loaded", "unchanged" or "rejected"
    ruleset: str  # the hash served after the check
    rejection: Rejection | None = None


def fingerprint(directory: Path) -> str:
    """sha256 over the rule files' names and contents: changes when any file changes."""
    digest = hashlib.sha256()
    try:
        paths = rule_files(directory)
    except RulesetInvalid:
        return "missing"
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            data = b"\0unreadable"
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + hashlib.sha256(data).digest())
    return "sha256:" + digest.hexdigest()


class Served(Protocol):
    """All the reloader knows of the app whose rules it reloads (the app's `Runtime`): the
    engine in force, how to put another in force, and the audit log that records both."""

    @property
    def engine(self) -> Engine: ...

    @property
    def audit(self) -> Events: ...

    def swap(self, engine: Engine) -> None: ...


class Reloader:
    """Loads one app's rules directory again when asked (POST /v1/ruleset/reload). Under
    `herald serve` the gunicorn master watches the directory and restarts the workers on a
    change (service/serve.py), so a change is parsed once, not once per worker."""

    def __init__(
        self,
        served: Served,
        directory: Path,
        max_bytes: int,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.served = served
        self.directory = directory
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.clock = clock
        # The fingerprint of the files the served rules were loaded from (create_app sets it);
        # None: unknown, so the first check loads the directory.
        self.seen: str | None = None
        self.rejected: Rejection | None = None  # the last rules change that failed, while it stands
        self._lock = threading.Lock()

    def check(self, force: bool = False) -> Outcome:
        """Load the directory if its files changed since the last check (or always, with `force`).
        Never raises: whatever goes wrong is a rejection, and the last good rules keep serving."""
        with self._lock:
            try:
                return self._check(force)
            except Exception as error:  # a bug or the machine (memory): still not a 500, not a dead poller
                log.exception("rules check failed")
                problem = failure(str(self.directory), error)
                return self.reject(self.seen or "unknown", RulesetInvalid([problem]))

    def _check(self, force: bool) -> Outcome:
        current = fingerprint(self.directory)
        old = self.served.engine
        if current == self.seen and not force:
            return Outcome("unchanged", old.hash, self.rejected)
        self.seen = current
        try:
            ruleset = load_ruleset(self.directory, max_total_bytes=self.max_bytes, positions=False)
            # Compiled here, before the swap: requests never wait for it.
            engine = Engine(ruleset) if ruleset.hash != old.hash else old
        except RulesetInvalid as invalid:
            return self.reject(current, invalid)
        self.rejected = None
        if engine is old:
            return Outcome("unchanged", old.hash)
        try:  # archived and logged first: no decision is made on rules an auditor cannot replay
            self.served.audit.ruleset_loaded(ruleset, previous=old.ruleset)
        except (OSError, RuntimeError) as error:
            self.seen = None  # try again at the next check
            problem = Problem(str(self.directory), 1, 1, "not-archived", f"the audit log refused it: {error}")
            return self.reject(current, RulesetInvalid([problem]))
        self.served.swap(engine)  # requests in flight keep `old`
        self.metrics.reload("loaded")
        log.info("rules reloaded: %s -> %s", old.hash, engine.hash)
        return Outcome("loaded", engine.hash)

    def reject(self, files: str, invalid: RulesetInvalid) -> Outcome:
        """Keep serving the rules in force; show the rejection and log it (once per content)."""
        already = self.rejected is not None and self.rejected.files == files
        if not already:
            self.rejected = Rejection(files, self.clock(), tuple(invalid.problems))
            try:
                self.served.audit.ruleset_rejected([str(p) for p in invalid.problems])
            except (OSError, RuntimeError) as error:  # a full disk: /readyz still shows the rejection
                log.error("rules rejection not written to the audit log: %s", error)
            self.metrics.reload("rejected")
            log.warning("rules rejected, still serving %s:\n%s", self.served.engine.hash, invalid)
        return Outcome("rejected", self.served.engine.hash, self.rejected)
