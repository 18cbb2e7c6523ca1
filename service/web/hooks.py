"""Per-request bookkeeping in one hook before and one after each request: timing, CORS and cache
headers, metrics, and the access log. One pair of hooks, resolving the request once, because each
hook and each `request.x` costs a little on every page view."""

from __future__ import annotations

import time
from typing import cast

from flask import Flask, Request, Response, g, request

from service.config import Settings
from service.web.cors import Cors
from service.web.logs import AccessLog
from service.web.metrics import Metrics


def install(app: Flask, settings: Settings, metrics: Metrics) -> None:
    cors = Cors(settings)
    access = AccessLog(settings) if settings.access_log else None

    @app.before_request
    def _before() -> Response | None:
        context = g._get_current_object()
        context.herald_started = time.perf_counter()
        context.herald_decisions = []
        return cors.preflight(cast(Request, request._get_current_object()))  # type: ignore[attr-defined]

    @app.after_request
    def _after(response: Response) -> Response:
        req = cast(Request, request._get_current_object())  # type: ignore[attr-defined]
        context = g._get_current_object()
        started = getattr(context, "herald_started", None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        cors.decorate(req, response)
        endpoint = req.url_rule.rule if req.url_rule is not None else "unmatched"
        metrics.request(endpoint, req.method, response.status_code, seconds)
        if access is not None:
            access.write(req, response.status_code, seconds, getattr(context, "herald_decisions", []))
        return response
