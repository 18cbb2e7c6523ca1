"""Audit files on disk: names that sort by time, listing many directories, locks, torn tails."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

PATTERN = "audit-*.jsonl"
_NAME = re.compile(r"^audit-(\d{8}T\d{6})-(.+)-(\d+)-(\d+)\.jsonl$")
RULESETS = "rulesets"
# Audit files are the publisher's evidence and hold readers' networks: the owner writes, a group
# (auditors, a log shipper) reads, others nothing.
FILE_MODE = 0o640
DIR_MODE = 0o750


def safe_node(node: str) -> str:
    """A host name fit for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", node) or "node"


def file_name(started: datetime, node: str, pid: int, n: int) -> str:
    """`audit-YYYYMMDDTHHMMSS-<node>-<pid>-<n>.jsonl`: names sort by the time the file was opened."""
    return f"audit-{started.astimezone(UTC):%Y%m%dT%H%M%S}-{safe_node(node)}-{pid}-{n:04d}.jsonl"


@dataclass(frozen=True, slots=True)
class NameParts:
    opened: datetime
    node: str
    pid: int
    n: int


def parse_name(name: str) -> NameParts | None:
    match = _NAME.match(name)
    if match is None:
        return None
    opened = datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return NameParts(opened, match[2], int(match[3]), int(match[4]))


def log_files(directories: Sequence[Path]) -> list[Path]:
    """Every audit file in `directories`, sorted by name (time), then by directory."""
    found = [p for d in directories for p in d.glob(PATTERN) if p.is_file()]
    return sorted(found, key=lambda p: (p.name, str(p)))


@contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Serialises opening, rotating and adopting files among the writers of one directory."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def is_held(path: Path) -> bool:
    """Whether a live writer holds `path` (writers keep an exclusive lock on their open file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we took
    return False


def first_record(path: Path) -> dict[str, Any] | None:
    """The first record of a file, or None when it has no complete, readable first line."""
    with path.open("rb") as f:
        line = f.readline()
    if not line.endswith(b"\n"):
        return None
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def head_records(path: Path, kinds: frozenset[str]) -> list[dict[str, Any]]:
    """The first record of a file and those after it while their kind is one of `kinds`."""
    found: list[dict[str, Any]] = []
    with path.open("rb") as f:
        for line in f:
            try:
                value = orjson.loads(line) if line.endswith(b"\n") else None
            except orjson.JSONDecodeError:
                value = None
            if not isinstance(value, dict):
                break
            found.append(value)
            if value.get("kind") not in kinds:
                break
    return found


def record_ending_at(path: Path, size: int) -> dict[str, Any] | None:
    """The record whose line ends exactly at byte `size` of the file, or None (file shorter, or no
    whole record ends there): how a checkpoint's head is found without reading the whole file."""
    try:
        with path.open("rb") as f:
            if size <= 0 or f.seek(0, os.SEEK_END) < size:
                return None
            start = max(0, size - (1 << 20))
            f.seek(start)
            data = f.read(size - start)
    except OSError:
        return None
    if not data.endswith(b"\n"):
        return None
    line = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class Tail:
    """The end of a file: its last complete record and any bytes after the last newline."""

    last: dict[str, Any] | None
    torn_offset: int
    torn: bytes


def read_tail(path: Path, window: int = 1 << 20) -> Tail:
    """The last complete record and the torn bytes after it (a crash mid-write leaves those)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - window))
        data = f.read()
    cut = data.rfind(b"\n") + 1
    torn = data[cut:]
    lines = data[:cut].splitlines()
    last = None
    if lines:
        try:
            last = orjson.loads(lines[-1])
        except orjson.JSONDecodeError:
            last = None
    return Tail(last, size - len(torn), torn)
