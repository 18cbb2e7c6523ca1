"""What-if decisions (asked with `at`): the engine of the rules in force at that instant, from the archive."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from service.audit.archive import LOADS, Archive, ArchiveError, Load
from service.audit.history import load_in_force
from service.audit.records import iso
from service.engine import Engine
from service.web.problems import ApiProblem

KEEP = 4  # archived rulesets kept compiled per worker: what-ifs tend to ask about a few past moments


class PastRules:
    """Engines over archived rulesets, found by the instant they were in force (the archive's index
    of loads), built once and a few of them kept."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self._loads: list[Load] = []
        self._stamp: tuple[int, int] | None = None
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()
        self._building = threading.Lock()

    def engine_at(self, at: datetime, current: Engine, since: datetime) -> Engine:
        """The engine of the rules in force at `at`: `current` from `since` (when it was loaded) on,
        and for every later instant (the future is decided on the rules known now); before that, the
        ruleset loaded most recently before `at` according to the archive. 409 when there is none."""
        if at >= since:
            return current
        text = iso(at)
        load = load_in_force(self._read(), text)
        if load is None:
            first = self._loads[0].ts if self._loads else None
            raise ApiProblem(
                409,
                "No rules archived for that instant",
                f"no ruleset is archived as in force at {text}: a decision with 'at' is made on the rules "
                "in force then, and "
                + (
                    f"the earliest archived ruleset was loaded at {first}"
                    if first
                    else "the archive is empty"
                ),
            )
        if load.ruleset == current.hash:
            return current
        return self._engine(load, text)

    def _read(self) -> list[Load]:
        """The index of loads, read again when it changed (it grows by a line per load)."""
        try:
            stat = (self.archive.directory / LOADS).stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = (-1, 0)
        with self._lock:
            if stamp != self._stamp:
                self._loads, self._stamp = self.archive.loads(), stamp
            return self._loads

    def _engine(self, load: Load, at: str) -> Engine:
        engine = self._kept(load.ruleset)
        if engine is not None:
            return engine
        # One build at a time: threads asking for the same ruleset wait for the first build instead of
        # each compiling it (a big ruleset takes seconds of CPU).
        with self._building:
            engine = self._kept(load.ruleset)
            if engine is None:
                engine = self._build(load, at)
        return engine

    def _kept(self, ruleset: str) -> Engine | None:
        with self._lock:
            engine = self._engines.get(ruleset)
            if engine is not None:
                self._engines.move_to_end(ruleset)
            return engine

    def _build(self, load: Load, at: str) -> Engine:
        try:
            engine = Engine(self.archive.load(load.ruleset))
        except ArchiveError:  # its message names the archive's path: not for callers
            raise ApiProblem(
                409,
                "No rules archived for that instant",
                f"the ruleset in force at {at} ({load.ruleset}, loaded at {load.ts}) is missing from "
                "the archive or does not match its hash (herald audit verify says which)",
            ) from None
        with self._lock:
            self._engines[load.ruleset] = engine
            while len(self._engines) > KEEP:
                self._engines.popitem(last=False)
        return engine
