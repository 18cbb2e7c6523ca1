"""Structured JSON logs on stderr: one access line per request with its decision ids, and errors.
Reader addresses are reduced as the audit log reduces them (HERALD_AUDIT_ADDRESS), never full
unless configured so."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Response, g, request

from service.audit.address import reduce_address

access = logging.getLogger("herald.access")
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


def reduced_peer() -> str | None:
    from service.web.runtime import runtime

    settings = runtime().settings
    mode = settings.audit_address
    key = settings.audit_address_key.get_secret_value().encode() if settings.audit_address_key else None
    try:
        return reduce_address(request.remote_addr, mode, key)
    except ValueError:
        return None


def install(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.herald_log_started = time.perf_counter()
        g.herald_decisions = []

    @app.after_request
    def _log(response: Response) -> Response:
        if access.isEnabledFor(logging.INFO):
            started = g.get("herald_log_started", time.perf_counter())
            access.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 3),
                    "decision_ids": g.get("herald_decisions", []),
                    "peer": reduced_peer(),
                },
            )
        return response
