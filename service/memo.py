"""A least-recently-used memo of a function, bounded by an estimate of its bytes, not its entries.

Entries differ in size by orders of magnitude (a decision for an article with no tags, or with a
hundred long ones), so a bound on their number bounds nothing: callers sending unique large keys
would grow a worker by hundreds of megabytes. Here every entry is weighed when it is stored and the
least recently used go first until the estimate fits; an entry heavier than the whole bound is
answered and not stored."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteBoundedMemo(Generic[K, V]):
    """`memo(key)` is `function(key)`, remembered while the estimated bytes stay within `max_bytes`."""

    def __init__(self, function: Callable[[K], V], max_bytes: int, weigh: Callable[[K, V], int]) -> None:
        self._function = function
        self._weigh = weigh
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()  # a worker's threads share the memo: one writer at a time

    def __call__(self, key: K) -> V:
        # A hit takes no lock: `get` and `move_to_end` are each atomic under the GIL, and an
        # entry evicted between them only loses its place. Counts may miss a concurrent hit.
        found = self._entries.get(key)
        if found is not None:
            try:
                self._entries.move_to_end(key)
            except KeyError:
                pass
            self.hits += 1
            return found[0]
        self.misses += 1
        value = self._function(key)  # threads may compute the same key at once; one is kept
        weight = self._weigh(key, value)
        if weight > self.max_bytes:
            return value
        entry = (value, weight)
        with self._lock:
            if self._entries.setdefault(key, entry) is entry:  # one hash of the key, not two
                self.bytes += weight
                while self.bytes > self.max_bytes:
                    _, (_, gone) = self._entries.popitem(last=False)
                    self.bytes -= gone
        return value

    def info(self) -> dict[str, int | None]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "maxbytes": self.max_bytes,
            "bytes": self.bytes,
            "currsize": len(self._entries),
        }
