"""Status endpoints: liveness, readiness, the ruleset in force, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response

from service.web.auth import operator_key
from service.web.geodata import geo_warnings
from service.web.openapi import openapi_document
from service.web.paths import hide_paths
from service.web.runtime import Runtime, runtime

bp = Blueprint("status", __name__)
metrics_bp = Blueprint("metrics", __name__)  # its own blueprint: keys with the role `metrics` read it
MIB = 1024 * 1024


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers. Nothing else is checked: a load balancer restarts on failure."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when rules and GeoIP data are loaded: 503 with the reasons otherwise. Degraded (still 200)
    while audit records are lost or the audit disk is low. Paths only to an operator's key."""
    rt = runtime()
    reasons = [] if rt.geo is not None else [rt.geo_error or "GeoIP database not loaded"]
    degraded = (
        [f"audit log not writable since {rt.audit_lost_since.isoformat()}: {rt.audit_lost} records lost"]
        if rt.audit_lost_since is not None
        else []
    )
    audit = _audit_disk(rt)
    if audit is not None and audit["low"]:
        degraded.append(_low_disk(audit, rt.settings.audit_min_free_mb))
    body = {
        # Degraded still answers 200: decisions go on (HERALD_AUDIT_FAILURE=open); the reason says why.
        "status": "not ready" if reasons else "degraded" if degraded else "ready",
        "reasons": reasons + degraded,
        # Warnings leave the service ready: stale GeoIP data, a refused replacement file.
        "warnings": geo_warnings(rt),
        "ruleset": rt.engine.hash,
        **geo_status(rt),
        # A rejected change does not make the service unready: it still serves the last good rules.
        "rejected": rt.rejected.as_dict() if rt.rejected is not None else None,
        "worker": rt.pid,
        "audit": audit,
    }
    if not operator_key(rt.keys):
        body = hide_paths(body, rt.settings)
    return json_response(body, 200 if not reasons else 503)


def _audit_disk(rt: Runtime) -> dict[str, Any] | None:
    """The audit log's disk: free space, growth, the threshold and whether it is crossed."""
    if rt.settings.audit == "off" or rt.usage is None:
        return None
    usage = rt.usage.measure()
    minimum = rt.settings.audit_min_free_mb * MIB
    return {
        "free_bytes": usage.free_bytes,
        "bytes_per_minute": None if usage.bytes_per_minute is None else round(usage.bytes_per_minute),
        "minutes_left": None if (left := usage.minutes_left()) is None else round(left, 1),
        "min_free_bytes": minimum,
        "low": usage.low(minimum),
    }


def _low_disk(audit: dict[str, Any], min_free_mb: int) -> str:
    text = (
        f"audit disk low: {audit['free_bytes'] / MIB:.0f} MiB free, "
        f"under HERALD_AUDIT_MIN_FREE_MB={min_free_mb}"
    )
    if audit["minutes_left"] is not None:
        rate = audit["bytes_per_minute"] / MIB
        text += f"; full in about {audit['minutes_left']:.0f} minutes at {rate:.1f} MiB a minute"
    return text


@bp.get("/v1/ruleset")
def ruleset() -> Response:
    """The ruleset in force; paths, as in /readyz, only to an operator's key."""
    rt = runtime()
    rules = rt.engine.ruleset
    body = {
        "hash": rules.hash,
        "loaded_at": rt.loaded_at.isoformat().replace("+00:00", "Z"),
        "counts": {
            "regions": len(rules.regions),
            "notices": len(rules.notices),
            "rules": len(rules.rules),
            "cases": len(rules.cases),
        },
        "files": [{"path": f.path, "sha256": f.sha256} for f in rules.files],
        **geo_status(rt),
        "rejected": rt.rejected.as_dict() if rt.rejected is not None else None,
    }
    return json_response(body if operator_key(rt.keys) else hide_paths(body, rt.settings))


def geo_status(rt: Runtime) -> dict[str, Any]:
    """The GeoIP data served: type, build date and age of each database, and refused files."""
    now = rt.clock()
    return {
        "geoip": rt.geo.info(now) if rt.geo is not None else None,
        "anonymous_ip": rt.anonymous.info(now) if rt.anonymous is not None else None,
        "geoip_refused": {kind: refused for kind, refused in rt.geo_refused.items() if refused} or None,
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(openapi_document())


@metrics_bp.get("/metrics")
def metrics_view() -> Response:
    """Prometheus exposition of this worker's metrics (of every worker's, under `herald serve`)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    rt = runtime()
    if rt.geo_follower is not None:
        rt.geo_follower.report()
    if rt.usage is not None and rt.settings.audit == "on":
        rt.metrics.audit_disk(rt.usage.measure(), rt.settings.audit_min_free_mb * 1024 * 1024)
    body: Any = rt.metrics.exposition()
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)
