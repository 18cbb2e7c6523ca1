"""Auditors' HTTP endpoints (off unless HERALD_AUDIT_HTTP=1): one decision explained, the summary."""

from __future__ import annotations

import re

import orjson
from flask import Blueprint, Response, request

from service.audit.explain import explain_decision
from service.audit.reader import find_decision
from service.audit.replay import Engines
from service.audit.summary import as_json, summarize
from service.web.problems import ApiProblem
from service.web.runtime import runtime

bp = Blueprint("audit", __name__)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@bp.get("/v1/audit/decisions/<decision_id>")
def decision(decision_id: str) -> Response:
    """The logged record and why each rule did or did not match, with the replay verdict."""
    directories = [runtime().settings.audit_dir]
    record = find_decision(directories, decision_id)
    if record is None:
        raise ApiProblem(404, "Not Found", f"decision {decision_id!r} is not in the audit log")
    body = {"record": record, "explanation": explain_decision(record, Engines(directories))}
    return Response(orjson.dumps(body), mimetype="application/json")


@bp.get("/v1/audit/summary")
def summary() -> Response:
    """Decisions and notices shown by day x country; `from`/`to` are dates (to excluded)."""
    bounds = {name: request.args.get(name) for name in ("from", "to")}
    for name, value in bounds.items():
        if value is not None and not _DAY.match(value):
            raise ApiProblem(400, "Bad parameter", f"{name!r} must be a date, YYYY-MM-DD; got {value!r}")
    by_subdivision = request.args.get("subdivision") in ("1", "true")
    rows = summarize(
        [runtime().settings.audit_dir],
        bounds["from"],
        bounds["to"],
        by_subdivision=by_subdivision,
        threads=1,
    )
    body = {"from": bounds["from"], "to": bounds["to"], "rows": as_json(rows, by_subdivision)}
    return Response(orjson.dumps(body), mimetype="application/json")
