"""Which ruleset was in force at an instant, per writer, from the `ruleset_loaded` events of the log."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from service.audit.archive import Load
from service.audit.files import parse_name
from service.audit.reader import records


@dataclass(frozen=True, slots=True)
class InForce:
    ruleset: str
    node: str
    pid: int | None
    since: str


def in_force(directories: Sequence[Path], at: str) -> list[InForce]:
    """For each writer (node and process) running at `at`: the ruleset it last loaded before then."""
    current: dict[tuple[str, int | None], InForce | None] = {}
    for record in records(directories, None, at):
        writer = (str(record.get("node")), _pid(record))
        kind = record.get("kind")
        if kind == "ruleset_loaded":
            current[writer] = InForce(str(record["ruleset"]), writer[0], writer[1], str(record["ts"]))
        elif kind in ("stopped", "started"):
            current[writer] = None
        elif kind == "recovered" and (parts := parse_name(str(record.get("file")))) is not None:
            current[(parts.node, parts.pid)] = None  # that writer had died
    return sorted(
        (f for f in current.values() if f is not None), key=lambda f: (f.ruleset, f.node, f.pid or 0)
    )


def _pid(record: dict[str, object]) -> int | None:
    """The writing process: every event carries it."""
    pid = record.get("pid")
    return pid if isinstance(pid, int) else None


def load_in_force(loads: Sequence[Load], at: str) -> Load | None:
    """The load most recent at `at` (ISO text, compared with `ts`) among `loads` sorted by `ts`: the
    rules in force then. A load at exactly `at` counts (from then on, its rules answered)."""
    index = bisect_right([load.ts for load in loads], at)
    return loads[index - 1] if index else None
