"""Appends chained records to this process's own audit file: flushed, rotated, checkpointed, recovered."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from service.audit.adoption import adoption
from service.audit.chain import GENESIS, Chain
from service.audit.checkpoint import CHECKPOINTS, CheckpointLog, Head
from service.audit.files import DIR_MODE, FILE_MODE, directory_lock, file_name, safe_node
from service.audit.records import SCHEMA, Fields, iso
from service.audit.witness import Witness

log = logging.getLogger("herald.audit")

Fsync = float | None  # None: never; 0: every record; N > 0: at most N seconds of records at risk


def parse_fsync(value: str) -> Fsync:
    """`none`, `always`, or a number of seconds between fsyncs (e.g. `1`, `0.5`)."""
    text = value.strip().lower()
    if text == "none":
        return None
    if text == "always":
        return 0.0
    seconds = float(text.removesuffix("s"))
    if not seconds > 0:
        raise ValueError(f"{value!r}: give none, always or a number of seconds > 0")
    return seconds


class AuditWriter:
    """One writer per process. Thread-safe: gthread workers answer on several threads."""

    def __init__(
        self,
        directory: Path,
        *,
        node: str,
        chain: Chain,
        fsync: Fsync = None,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        checkpoint_dir: Path | None = None,
        checkpoint_every: float = 10.0,
        witness: Witness | None = None,
    ) -> None:
        self.directory = directory
        self.node = safe_node(node)
        self.chain = chain
        self.fsync = fsync
        self.max_bytes = max_bytes
        self.clock = clock
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._fd = -1
        self._n = 0
        self._seq = 0
        self._prev = GENESIS
        self._follows: str | None = None
        self._pending: list[tuple[str, Fields]] = []  # events for the head of a new file
        self._size = 0
        self._day: date | None = None
        self._dirty = False  # records written since the last fsync
        self._syncer: threading.Thread | None = None
        self._closing = threading.Event()
        self.path: Path | None = None
        self._broken: Path | None = None
        self.checkpoints = CheckpointLog(
            checkpoint_dir or directory / CHECKPOINTS, chain, node=self.node, sync=fsync is not None
        )
        self.checkpoint_every = checkpoint_every
        self.witness = witness
        self.checkpoint_errors = 0  # checkpoints that could not be written (the records were)
        self._ck_lock = threading.Lock()  # taken after `_lock` when both are held
        self._generation = 0  # bumped when the open file changes: a late periodic checkpoint is dropped
        self._announce = False  # the open file has no checkpoint yet
        self._first_seq = 0  # seq of the open file's first record
        self._checkpointer: threading.Thread | None = None

    # -- opening ------------------------------------------------------------------------------------

    def open(self, prefer: Path | None = None) -> None:
        """Opens a new file. Continues the chain of a file whose writer died, if that file matches its
        last checkpoint; a file that does not (cut, or changed) is refused, and the refusal recorded."""
        self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        with directory_lock(self.directory):
            found = adoption(self.directory, self.node, self.pid, self.checkpoints.directory, prefer)
            self._pending += found.events
            if found.orphan is not None:
                self._follows = found.orphan.name
            if found.seq is not None and found.prev is not None:
                self._seq, self._prev = found.seq, found.prev
            self._close_fd(self._new_file(self.clock()))
        if self._checkpointer is None:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_every, name="herald-audit-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _new_file(self, now: datetime) -> int:
        """Opens the next file (under the directory lock), locks it for as long as it is ours, writes
        the pending events at its head; returns the previous file's descriptor for the caller to close
        once the new file holds its first record (until then a starting writer could adopt the old)."""
        while True:
            path = self.directory / file_name(now, self.node, self.pid, self._n)
            self._n += 1
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, FILE_MODE)
                break
            except FileExistsError:
                continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        if self.fsync is not None:
            _sync_directory(self.directory)
        old = self._fd
        self._fd, self.path, self._size, self._day = fd, path, 0, now.date()
        self._generation += 1
        self._announce = True
        pending, self._pending = self._pending, []
        for kind, fields in pending:
            self._append(kind, (fields,), now)
        return old

    def _close_fd(self, fd: int) -> None:
        if fd >= 0:
            self._sync(fd)
            os.close(fd)

    # -- writing ------------------------------------------------------------------------------------

    def write(self, kind: str, fields: Fields) -> dict[str, Any]:
        """Appends one record and flushes it to the OS before returning; raises if it cannot."""
        return self.write_many(kind, (fields,))[0]

    def write_many(self, kind: str, many: Sequence[Fields]) -> list[dict[str, Any]]:
        """Appends records of one kind (a batch's decisions) under one lock, chained in order, in one
        `write` (group commit): all of them are in the file, or none is, and the caller is told."""
        with self._lock:
            if self._broken is not None:  # a write failed: continue in a new file, saying so
                self.open(prefer=self._broken)
                self._broken = None
            if self._fd < 0:
                raise RuntimeError("audit writer is closed")
            now = self.clock()
            if self._size < self.max_bytes and now.date() == self._day:
                return self._append(kind, many, now)
            with directory_lock(self.directory):
                self._follows = self.path.name if self.path else None
                finished = self._head()
                old = self._new_file(now)
                records = self._append(kind, many, now)
                self._close_fd(old)
            if finished is not None:
                self._checkpoint("closed", finished, now)
            return records

    def _append(self, kind: str, many: Sequence[Fields], now: datetime) -> list[dict[str, Any]]:
        ts = iso(now)
        seq, prev, follows = self._seq, self._prev, self._follows
        records: list[dict[str, Any]] = []
        lines: list[bytes] = []
        for fields in many:
            record: dict[str, Any] = {
                **fields,
                "v": SCHEMA,
                "seq": seq,
                "ts": ts,
                "kind": kind,
                "node": self.node,
                "prev": prev,
            }
            if follows is not None:
                record["follows"] = follows
                follows = None
            if self._size == 0 and not lines and self.path is not None:
                # A file names itself, its node and its writer in its first record: a renamed file is seen.
                record["opened"] = {
                    "file": self.path.name,
                    "node": self.node,
                    "pid": self.pid,
                    "checkpoint_s": self.checkpoint_every,
                }
            lines.append(self.chain.seal(record))
            records.append(record)
            seq, prev = seq + 1, record["hash"]
        data = b"".join(lines)
        try:
            _write_all(self._fd, data)
        except OSError:
            try:
                # A full disk or a file size limit: take back any part of the lines, so the file stays
                # whole and the next record simply follows (the caller counts what was lost).
                os.ftruncate(self._fd, self._size)
            except OSError:
                # Maybe a part of the line is on disk: leave it as a torn tail for the next file to report.
                self._broken = self.path
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = -1
            raise
        if self._size == 0:
            self._first_seq = self._seq
        self._follows = None
        self._seq, self._prev = seq, prev
        self._size += len(data)
        if self._announce:
            self._announce = False
            self._sync(self._fd)
            self._checkpoint("open", self._head(), now)
        if self.fsync == 0:
            self._sync(self._fd)
        elif self.fsync is not None:
            # Every N seconds a thread of its own syncs, so no request waits on the disk (an fsync can
            # take milliseconds, and the writer's lock would hold every thread of the worker meanwhile).
            self._dirty = True
            if self._syncer is None:
                self._syncer = threading.Thread(
                    target=self._sync_every, name="herald-audit-sync", daemon=True
                )
                self._syncer.start()
        return records

    def _sync(self, fd: int) -> None:
        if self.fsync is not None:
            try:
                os.fdatasync(fd)
            except OSError as error:  # the record is written; only its durability is in doubt
                log.warning("audit fsync failed: %s", error)

    def _sync_every(self) -> None:
        interval = self.fsync or 1.0
        while not self._closing.wait(interval):
            if self._dirty:
                self._dirty = False
                fd = self._fd
                if fd >= 0:
                    with contextlib.suppress(OSError):  # closed meanwhile: closing synced it
                        os.fdatasync(fd)

    def close(self) -> None:
        """Closes the file, with a last checkpoint saying it is complete."""
        self._closing.set()
        with self._lock:
            head = self._head()
            self._close_fd(self._fd)
            self._fd = -1
            self._generation += 1
            if head is not None:
                self._checkpoint("closed", head, self.clock())
        if self.witness is not None:
            self.witness.close()

    # -- checkpoints --------------------------------------------------------------------------------

    def _head(self) -> Head | None:
        """The open file's last record, or None when it has none."""
        if self.path is None or self._size == 0:
            return None
        return Head(self.path.name, self._seq - 1, self._prev, self._size, self._first_seq)

    def _checkpoint(
        self, state: str, head: Head | None, now: datetime, generation: int | None = None
    ) -> None:
        """Logs `head` as a checkpoint (and hands it to the witness). A failure is counted and logged:
        the records themselves are written, and a checkpoint missing is what verify then reports."""
        if head is None:
            return
        with self._ck_lock:
            if generation is not None and generation != self._generation:
                return  # the file was rotated or closed meanwhile: its own checkpoint says so
            fields = {"pid": self.pid, "state": state, "every": self.checkpoint_every, "head": head.as_json()}
            try:
                record = self.checkpoints.append("checkpoint", fields, now)
            except OSError as error:
                self.checkpoint_errors += 1
                log.warning("audit checkpoint not written: %s", error)
                return
        if self.witness is not None:
            self.witness.submit(record)

    def _checkpoint_every(self) -> None:
        """Every `checkpoint_every` seconds, the open file's head, even when nothing was written: a
        fresh checkpoint is how verify tells a live writer from a file cut at its end."""
        while not self._closing.wait(self.checkpoint_every):
            with self._lock:
                head, fd, generation = self._head(), self._fd, self._generation
            if head is None or fd < 0:
                continue
            if self.fsync is not None:
                with contextlib.suppress(OSError):  # closed meanwhile: closing synced it
                    os.fdatasync(fd)  # the checkpoint never names records the disk may not have
            self._checkpoint("open", head, self.clock(), generation)


def _write_all(fd: int, data: bytes) -> None:
    """One `write` for the whole line in practice (O_APPEND); loops on a short write."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
