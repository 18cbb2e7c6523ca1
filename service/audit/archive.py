"""Every ruleset ever loaded, kept once by its hash next to the log; never overwritten, verifiable."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from service.audit.files import DIR_MODE, FILE_MODE, RULESETS
from service.ruleset import Ruleset


class ArchiveError(Exception):
    """An archived ruleset that is missing or does not match its hash."""


LOADS = "loads.jsonl"  # in the archive: one line per load, `{"ts", "ruleset", "node", "pid"}`


@dataclass(frozen=True, slots=True)
class Load:
    """A ruleset loaded by a writer at `ts` (the time of its `ruleset_loaded` event)."""

    ts: str
    ruleset: str
    node: str
    pid: int | None


def _hex(ruleset_hash: str) -> str:
    return ruleset_hash.removeprefix("sha256:")


class Archive:
    """`<audit dir>/rulesets/<sha256 hex>.json`: the canonical bytes the hash was computed over."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / RULESETS

    def path(self, ruleset_hash: str) -> Path:
        return self.directory / f"{_hex(ruleset_hash)}.json"

    def store(self, ruleset: Ruleset) -> Path:
        """Stores `ruleset` unless it is already there; marks it as the one most recently loaded."""
        path = self.path(ruleset.hash)
        self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if not path.exists():
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            try:
                os.fchmod(fd, FILE_MODE)
                with os.fdopen(fd, "wb") as f:
                    f.write(ruleset.canonical_bytes())
                    f.flush()
                    os.fsync(f.fileno())
                os.link(temporary, path)  # fails if another worker stored it first: never overwrites
            except FileExistsError:
                pass
            finally:
                os.unlink(temporary)
        os.utime(path)  # the modification time says when it was last loaded (see `latest`)
        return path

    def canonical(self, ruleset_hash: str) -> dict[str, Any]:
        """The archived canonical form, checked against its hash."""
        path = self.path(ruleset_hash)
        try:
            data = path.read_bytes()
        except OSError:
            raise ArchiveError(f"ruleset {ruleset_hash} is not in the archive {self.directory}") from None
        if hashlib.sha256(data).hexdigest() != _hex(ruleset_hash):
            raise ArchiveError(f"{path}: contents do not match the hash in its name")
        value: dict[str, Any] = orjson.loads(data)
        return value

    def load(self, ruleset_hash: str) -> Ruleset:
        return Ruleset.from_canonical(self.canonical(ruleset_hash))

    def note_loaded(self, load: Load) -> None:
        """Appends `load` to the archive's index of loads, so that the ruleset in force at an instant
        is found without reading the log. The `ruleset_loaded` events in the chain stay the record;
        this index is how the service looks them up for what-if decisions."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps(
            {"ts": load.ts, "ruleset": load.ruleset, "node": load.node, "pid": load.pid},
            option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE,
        )
        fd = os.open(self.directory / LOADS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)  # one short write to an O_APPEND file: lines of several workers never mix
        finally:
            os.close(fd)

    def loads(self) -> list[Load]:
        """Every load in the index, oldest first; unreadable lines are skipped."""
        try:
            data = (self.directory / LOADS).read_bytes()
        except OSError:
            return []
        found = []
        for line in data.splitlines():
            try:
                value = orjson.loads(line)
                found.append(Load(str(value["ts"]), str(value["ruleset"]), str(value["node"]), value["pid"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        return sorted(found, key=lambda load: load.ts)

    def latest(self, exclude: str) -> str | None:
        """The hash of the ruleset loaded most recently before, other than `exclude`."""
        if not self.directory.is_dir():
            return None
        others = [p for p in self.directory.glob("*.json") if p.stem != _hex(exclude)]
        if not others:
            return None
        return "sha256:" + max(others, key=lambda p: p.stat().st_mtime_ns).stem


@dataclass(frozen=True, slots=True)
class ArchiveCheck:
    path: Path
    ok: bool
    detail: str = ""  # what is wrong, when not ok


def verify_archive(directory: Path, named: Mapping[str, Sequence[str]] | None = None) -> list[ArchiveCheck]:
    """Each archived ruleset re-hashed against its name, and each ruleset that records name (hash ->
    the files naming it) present: a deleted ruleset leaves its decisions without their rules."""
    folder = directory / RULESETS
    checks = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        ok = hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
        checks.append(ArchiveCheck(path, ok, "" if ok else "modified: contents do not match its hash"))
    present = {c.path.stem for c in checks}
    for ruleset_hash, files in sorted((named or {}).items()):
        if _hex(ruleset_hash) not in present:
            detail = f"missing: named by records in {', '.join(sorted(set(files))[:3])}"
            detail += f" (and {len(set(files)) - 3} more files)" if len(set(files)) > 3 else ""
            checks.append(ArchiveCheck(folder / f"{_hex(ruleset_hash)}.json", False, detail))
    return checks
