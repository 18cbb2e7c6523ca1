"""Auditors' HTTP endpoints (off unless HERALD_AUDIT_HTTP=1): one decision explained, the summary."""

from __future__ import annotations

import re

import orjson
from flask import Blueprint, Response, request

from service.audit.explain import explain_decision
from service.audit.source import Source, open_source
from service.audit.store import StoreError
from service.audit.summary import as_json
from service.config import Settings
from service.web.problems import ApiProblem
from service.web.runtime import runtime

bp = Blueprint("audit", __name__)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@bp.get("/v1/audit/decisions/<decision_id>")
def decision(decision_id: str) -> Response:
    """The logged record and why each rule did or did not match, with the replay verdict."""
    with _source() as source:
        record = source.find_decision(decision_id)
        if record is None:
            raise ApiProblem(404, "Not Found", f"decision {decision_id!r} is not in the audit log")
        body = {"record": record, "explanation": explain_decision(record, source.engines())}
    return Response(orjson.dumps(body), mimetype="application/json")


@bp.get("/v1/audit/summary")
def summary() -> Response:
    """Decisions and notices shown by day x country; `from`/`to` are dates (to excluded)."""
    bounds = {name: request.args.get(name) for name in ("from", "to")}
    for name, value in bounds.items():
        if value is not None and not _DAY.match(value):
            raise ApiProblem(400, "Bad parameter", f"{name!r} must be a date, YYYY-MM-DD; got {value!r}")
    by_subdivision = request.args.get("subdivision") in ("1", "true")
    with _source() as source:
        rows = source.summarize(bounds["from"], bounds["to"], by_subdivision=by_subdivision)
    body = {"from": bounds["from"], "to": bounds["to"], "rows": as_json(rows, by_subdivision)}
    return Response(orjson.dumps(body), mimetype="application/json")


def _source() -> Source:
    """The log files, or the audit database when HERALD_AUDIT_DB is set (a 503 if it cannot be read)."""
    return open_source_or_503(runtime().settings)


def open_source_or_503(settings: Settings) -> Source:
    try:
        return open_source(settings, threads=1)
    except StoreError as error:
        raise ApiProblem(503, "Audit store unavailable", str(error)) from None
