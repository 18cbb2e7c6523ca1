"""Sends checkpoints to a witness (another Herald's POST /v1/audit/checkpoints) in the background.

A witness elsewhere keeps a copy of each checkpoint, so even root on this node cannot cut the log
and its checkpoints together unseen. Sending never slows or fails a decision: checkpoints wait in a
bounded queue for a thread of their own; when the queue is full or the witness does not answer,
they are dropped and counted (`herald_audit_witness_total`), and the next checkpoint covers them."""

from __future__ import annotations

import logging
import queue
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger("herald.audit")

QUEUE = 256  # checkpoints waiting; at the default 10 s, 40 minutes of a witness being away
BATCH = 64  # most checkpoints in one POST
TIMEOUT = 5.0  # seconds for one POST


class Witness:
    """One per writer process; `submit` returns at once."""

    def __init__(
        self, url: str, key: str | None = None, *, count: Callable[[str, int], None] | None = None
    ) -> None:
        self.url = url
        self.key = key
        self.counts: Counter[str] = Counter()  # sent, failed, dropped
        self.count = count  # also told of each outcome (the service's metrics)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, checkpoint: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(checkpoint)
        except queue.Full:
            self._tally("dropped", 1)
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="herald-audit-witness", daemon=True)
                self._thread.start()

    def close(self, wait: float = 2.0) -> None:
        """Sends what waits, for at most `wait` seconds (a worker's exit must not hang on a witness)."""
        with self._lock:
            thread = self._thread
        if thread is None:
            return
        try:
            self._queue.put(None, timeout=wait)
        except queue.Full:
            return
        thread.join(wait)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._send(batch)
            if stop:
                return

    def _send(self, batch: list[dict[str, Any]]) -> None:
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=orjson.dumps(batch), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                answer.read()
        except (OSError, urllib.error.URLError, ValueError) as error:
            if not self.counts["failed"]:
                log.warning("audit witness %s did not take checkpoints: %s", self.url, error)
            self._tally("failed", len(batch))
            return
        self._tally("sent", len(batch))

    def _tally(self, outcome: str, n: int) -> None:
        self.counts[outcome] += n
        if self.count is not None:
            try:
                self.count(outcome, n)
            except Exception:  # noqa: BLE001 - a lost count must not stop the sender
                log.debug("witness count not recorded", exc_info=True)
