"""Appends chained records to this process's own audit file: flushed per record, rotated, recovered."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from service.audit.chain import GENESIS, Chain
from service.audit.files import (
    directory_lock,
    file_name,
    first_record,
    is_held,
    log_files,
    parse_name,
    read_tail,
    safe_node,
)
from service.audit.records import SCHEMA, Fields, iso

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

    # -- opening ------------------------------------------------------------------------------------

    def open(self, prefer: Path | None = None) -> None:
        """Opens a new file. Continues the chain of a file whose writer died, if there is one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with directory_lock(self.directory):
            orphan = self._orphan(prefer)
            if orphan is not None:
                self._adopt(orphan)
            self._close_fd(self._new_file(self.clock()))

    def _orphan(self, prefer: Path | None) -> Path | None:
        """The oldest file of this node that nobody continues, that did not stop and whose writer is gone."""
        mine = [
            p
            for p in log_files([self.directory])
            if (parts := parse_name(p.name)) and parts.node == self.node
        ]
        continued = {
            str(r.get("follows")) for p in mine if (r := first_record(p)) is not None and "follows" in r
        }
        if prefer is not None and prefer in mine:
            mine.remove(prefer)
            mine.insert(0, prefer)
        for path in mine:
            if path.name in continued or is_held(path):
                continue
            tail = read_tail(path)
            if tail.last is None or tail.last.get("kind") != "stopped" or tail.torn:
                return path
        return None

    def _adopt(self, orphan: Path) -> None:
        tail = read_tail(orphan)
        if tail.last is not None:
            self._seq = int(tail.last["seq"]) + 1
            self._prev = str(tail.last["hash"])
        self._follows = orphan.name
        torn = (
            {
                "offset": tail.torn_offset,
                "bytes": len(tail.torn),
                "sha256": hashlib.sha256(tail.torn).hexdigest(),
            }
            if tail.torn
            else None
        )
        reason = "torn last line (crash mid-write)" if torn else "ended without a stopped event (crash)"
        self._pending.append(
            (
                "recovered",
                {
                    "file": orphan.name,
                    "last_seq": tail.last.get("seq") if tail.last else None,
                    "last_hash": tail.last.get("hash") if tail.last else None,
                    "torn": torn,
                    "reason": reason,
                    "pid": self.pid,
                },
            )
        )

    def _new_file(self, now: datetime) -> int:
        """Opens the next file (under the directory lock), locks it for as long as it is ours, writes
        the pending events at its head; returns the previous file's descriptor for the caller to close
        once the new file holds its first record (until then a starting writer could adopt the old)."""
        while True:
            path = self.directory / file_name(now, self.node, self.pid, self._n)
            self._n += 1
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        if self.fsync is not None:
            _sync_directory(self.directory)
        old = self._fd
        self._fd, self.path, self._size, self._day = fd, path, 0, now.date()
        pending, self._pending = self._pending, []
        for kind, fields in pending:
            self._append(kind, fields, now)
        return old

    def _close_fd(self, fd: int) -> None:
        if fd >= 0:
            self._sync(fd)
            os.close(fd)

    # -- writing ------------------------------------------------------------------------------------

    def write(self, kind: str, fields: Fields) -> dict[str, Any]:
        """Appends one record and flushes it to the OS before returning; raises if it cannot."""
        with self._lock:
            if self._broken is not None:  # a write failed: continue in a new file, saying so
                self.open(prefer=self._broken)
                self._broken = None
            if self._fd < 0:
                raise RuntimeError("audit writer is closed")
            now = self.clock()
            if self._size < self.max_bytes and now.date() == self._day:
                return self._append(kind, fields, now)
            with directory_lock(self.directory):
                self._follows = self.path.name if self.path else None
                old = self._new_file(now)
                record = self._append(kind, fields, now)
                self._close_fd(old)
                return record

    def _append(self, kind: str, fields: Fields, now: datetime) -> dict[str, Any]:
        record: dict[str, Any] = {
            **fields,
            "v": SCHEMA,
            "seq": self._seq,
            "ts": iso(now),
            "kind": kind,
            "node": self.node,
            "prev": self._prev,
        }
        if self._follows is not None:
            record["follows"] = self._follows
        line = self.chain.seal(record)
        try:
            _write_all(self._fd, line)
        except OSError:
            try:
                # A full disk or a file size limit: take back any part of the line, so the file stays
                # whole and the next record simply follows (the caller counts what was lost).
                os.ftruncate(self._fd, self._size)
            except OSError:
                # Maybe a part of the line is on disk: leave it as a torn tail for the next file to report.
                self._broken = self.path
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = -1
            raise
        self._follows = None
        self._seq += 1
        self._prev = record["hash"]
        self._size += len(line)
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
        return record

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
        self._closing.set()
        with self._lock:
            self._close_fd(self._fd)
            self._fd = -1


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
