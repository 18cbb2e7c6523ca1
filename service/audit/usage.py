"""How full the audit log's disk is: free space, and how fast the log grows (bytes a minute)."""

from __future__ import annotations

import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.audit.reader import files_between

WINDOW = 60.0  # seconds the growth rate is measured over
FRESH = 1.0  # seconds a measure is reused: /readyz and /metrics may be polled often


@dataclass(frozen=True, slots=True)
class Usage:
    free_bytes: int | None  # None: the directory's disk cannot be read
    total_bytes: int | None
    bytes_per_minute: float | None  # None until two measures some seconds apart

    def low(self, min_free_bytes: int) -> bool:
        return self.free_bytes is not None and self.free_bytes < min_free_bytes

    def minutes_left(self) -> float | None:
        """At the current rate, minutes until the disk is full (None when it does not grow)."""
        if self.free_bytes is None or not self.bytes_per_minute:
            return None
        return self.free_bytes / self.bytes_per_minute


class UsageMeter:
    """Measures an audit directory: free space from the file system, growth from the sizes of the log
    files of today and yesterday (the only ones writers still append to, as they rotate daily),
    compared with a measure about a minute older. It sees every writer of the directory, not only this
    process, so any worker answers for the whole node."""

    def __init__(
        self,
        directory: Path,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = directory
        self.clock = clock
        self.wall = wall  # the writers' clock, which names their files
        self._samples: deque[tuple[float, dict[str, int]]] = deque()
        self._last: tuple[float, Usage] | None = None
        self._lock = threading.Lock()

    def measure(self) -> Usage:
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last[0] < FRESH:
                return self._last[1]
            usage = Usage(*self._disk(), self._rate(now, self._sizes()))
            self._last = (now, usage)
            return usage

    def _disk(self) -> tuple[int | None, int | None]:
        try:
            disk = shutil.disk_usage(self.directory)
        except OSError:  # not created yet, or unreadable
            return None, None
        return disk.free, disk.total

    def _sizes(self) -> dict[str, int]:
        yesterday = (self.wall() - timedelta(days=1)).strftime("%Y-%m-%d")
        sizes = {}
        for path in files_between([self.directory], yesterday, None):
            try:
                sizes[path.name] = path.stat().st_size
            except OSError:  # removed meanwhile
                continue
        return sizes

    def _rate(self, now: float, sizes: dict[str, int]) -> float | None:
        """Bytes a minute since the newest measure at least WINDOW old (else the oldest kept)."""
        self._samples.append((now, sizes))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW:
            self._samples.popleft()  # the second is old enough to compare with: drop the first
        then, before = self._samples[0]
        elapsed = now - then
        if elapsed < FRESH:
            return None
        grown = sum(max(0, size - before.get(name, 0)) for name, size in sizes.items())
        return grown * 60.0 / elapsed
