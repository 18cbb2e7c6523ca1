"""Structured JSON logs on stderr: one access line per request with its decision ids, and errors.
Reader addresses are reduced as the audit log reduces them (HERALD_AUDIT_ADDRESS), never full
unless configured so."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Request, request

from service.audit.address import reduce_address
from service.config import Settings

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and every `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body |= {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            body["error"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=str).decode()


def configure(level: int = logging.INFO) -> None:
    """Send the `herald` loggers to stderr as JSON (called by `herald serve` in each worker)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("herald")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def reduced_peer(address: str | None = None) -> str | None:
    """The request's peer address (or `address`) reduced as HERALD_AUDIT_ADDRESS says."""
    from service.web.runtime import runtime

    settings = runtime().settings
    mode = settings.audit_address
    key = settings.audit_address_key_bytes
    try:
        return reduce_address(address if address is not None else request.remote_addr, mode, key)
    except ValueError:
        return None


class AccessLog:
    """One JSON line per request on stderr. Written directly, not through `logging` (which costs
    more than the rest of a decision), with the fields a `herald.access` log record would have."""

    def __init__(self, settings: Settings) -> None:
        self.mode = settings.audit_address
        self.key = settings.audit_address_key_bytes
        self.lock = threading.Lock()
        self.stream = sys.stderr

    def write(self, request: Request, status: int, seconds: float, decision_ids: list[str]) -> None:
        try:
            peer = reduce_address(request.remote_addr, self.mode, self.key)
        except ValueError:
            peer = None
        line = orjson.dumps(
            {
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "info",
                "logger": "herald.access",
                "msg": "request",
                "method": request.method,
                "path": request.path,
                "status": status,
                "ms": round(seconds * 1000, 3),
                "decision_ids": decision_ids,
                "peer": peer,
            }
        )
        with self.lock, contextlib.suppress(OSError, ValueError):  # a closed stderr must not fail a request
            self.stream.write(line.decode() + "\n")
            self.stream.flush()
