"""Checkpoints: each writer's chain head, logged apart from the records in a hash chain of their own.

As in Certificate Transparency, a checkpoint is a signed statement "file F had records up to seq N,
whose hash is H, in S bytes, at time T". Writers log one at least every HERALD_AUDIT_CHECKPOINT_S
seconds and when they close a file; `verify` then finds a file cut below its checkpoint, a file
that is gone, and a writer's files deleted whole. The checkpoint log is one chain per directory,
shared by every writer (under a lock), in daily files `checkpoints-YYYYMMDD.jsonl`; a witness keeps
what it receives in `witnessed-YYYYMMDD.jsonl`, a chain of its own."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from service.audit.chain import GENESIS, Chain
from service.audit.files import DIR_MODE, FILE_MODE, read_tail
from service.audit.reader import file_records
from service.audit.records import SCHEMA, iso

CHECKPOINTS = "checkpoints"  # own writers' checkpoints; also the default directory's name
WITNESSED = "witnessed"  # checkpoints other nodes sent to this one
STATES = ("open", "closed")  # open: the writer goes on writing; closed: the file is complete


@dataclass(frozen=True, slots=True)
class Head:
    """The end of one audit file as its writer last stated it."""

    file: str
    seq: int  # seq of its last record
    hash: str  # hash of its last record
    size: int  # bytes up to and including that record's newline
    first: int  # seq of its first record

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "seq": self.seq, "hash": self.hash, "size": self.size, "first": self.first}


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One checkpoint as read back: who stated which head, when, and whether the file was still open."""

    node: str
    pid: int
    state: str
    ts: str
    every: float
    head: Head
    seq: int  # the checkpoint's own seq in its log
    source: Path  # the checkpoint file it was read from

    @property
    def open(self) -> bool:
        return self.state == "open"


def parse_checkpoint(record: dict[str, Any], source: Path) -> Checkpoint | None:
    """A checkpoint record (or the checkpoint inside a `witnessed` one), or None if it is not one."""
    if record.get("kind") == "witnessed" and isinstance(record.get("checkpoint"), dict):
        record = record["checkpoint"]
    head = record.get("head")
    if record.get("kind") != "checkpoint" or not isinstance(head, dict):
        return None
    try:
        return Checkpoint(
            node=str(record["node"]),
            pid=int(record["pid"]),
            state=str(record["state"]),
            ts=str(record["ts"]),
            every=float(record.get("every", 10.0)),
            head=Head(
                str(head["file"]),
                int(head["seq"]),
                str(head["hash"]),
                int(head["size"]),
                int(head.get("first", 0)),
            ),
            seq=int(record["seq"]),
            source=source,
        )
    except (KeyError, TypeError, ValueError):
        return None


def log_names(directory: Path, prefix: str) -> list[Path]:
    """The files of one checkpoint chain, oldest first."""
    return sorted(p for p in directory.glob(f"{prefix}-*.jsonl") if p.is_file())


class CheckpointLog:
    """Appends to one checkpoint chain. Any process may append: each append happens under a lock on
    the directory and continues from the chain's last record on disk."""

    def __init__(
        self, directory: Path, chain: Chain, *, node: str, prefix: str = CHECKPOINTS, sync: bool = True
    ) -> None:
        self.directory = directory
        self.chain = chain
        self.node = node
        self.prefix = prefix
        self.sync = sync

    def append(self, kind: str, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Seals and appends one record; returns it. Raises OSError if it cannot be written."""
        self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        with _locked(self.directory / f".{self.prefix}.lock"):
            files = log_names(self.directory, self.prefix)
            seq, prev, follows, torn = 0, GENESIS, None, None
            target = self.directory / f"{self.prefix}-{now:%Y%m%d}.jsonl"
            if files:
                latest = files[-1]
                tail = read_tail(latest, window=1 << 16)  # a checkpoint is ~500 bytes
                if tail.torn:
                    # A crash (power cut, full disk) while appending: the torn bytes are described in
                    # the next record and taken back, so the chain goes on from its last whole record.
                    torn = {
                        "offset": tail.torn_offset,
                        "bytes": len(tail.torn),
                        "sha256": hashlib.sha256(tail.torn).hexdigest(),
                    }
                    os.truncate(latest, tail.torn_offset)
                if tail.last is not None:
                    seq, prev = int(tail.last["seq"]) + 1, str(tail.last["hash"])
                if latest != target:
                    follows = latest.name
            record: dict[str, Any] = {
                **fields,
                "v": SCHEMA,
                "seq": seq,
                "ts": iso(now),
                "kind": kind,
                "node": self.node,
                "prev": prev,
            }
            if follows is not None:
                record["follows"] = follows
            if torn is not None:
                record["torn"] = torn
            line = self.chain.seal(record)
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            try:
                size = os.fstat(fd).st_size
                try:
                    os.write(fd, line)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
                if self.sync:
                    os.fdatasync(fd)
            finally:
                os.close(fd)
            return record


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_checkpoints(directory: Path, prefix: str = CHECKPOINTS, since: str = "") -> Iterator[Checkpoint]:
    """Every readable checkpoint of one chain, in order (verify checks the chain itself); `since`
    (YYYYMMDD) skips the files of earlier days."""
    for path in log_names(directory, prefix):
        if path.name[len(prefix) + 1 : len(prefix) + 9] < since:
            continue
        for record in file_records(path):
            if (found := parse_checkpoint(record, path)) is not None:
                yield found


def latest_by_file(checkpoints: Iterator[Checkpoint]) -> dict[str, Checkpoint]:
    """The last checkpoint of each audit file (the one furthest along, if clocks disagree)."""
    latest: dict[str, Checkpoint] = {}
    for found in checkpoints:
        before = latest.get(found.head.file)
        if before is None or (found.head.seq, not found.open) >= (before.head.seq, not before.open):
            latest[found.head.file] = found
    return latest
