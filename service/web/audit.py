"""Auditors' HTTP endpoints (off unless HERALD_AUDIT_HTTP=1): one decision explained, the summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import orjson
from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from service.audit.logged_verdicts import explain_decision
from service.audit.query import By, WhatIf, bound, end_after
from service.audit.source import Source, open_source
from service.audit.store import StoreError
from service.audit.summary import as_json
from service.config import Settings
from service.web.problems import ApiProblem
from service.web.runtime import runtime

bp = Blueprint("audit", __name__)


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
    """Decisions and notices shown by day x country, as `herald audit summary --format json` counts them."""
    asked = summary_parameters(request.args)
    with _source() as source:
        rows = source.summarize(
            asked.start,
            asked.end,
            by_subdivision=asked.by_subdivision,
            by=asked.by,
            what_if=asked.what_if,
        )
    body = {
        "from": asked.given.get("from"),
        "to": asked.given.get("to"),
        "by": asked.by,
        "what_if": asked.what_if,
        "rows": as_json(rows, asked.by_subdivision),
    }
    return Response(orjson.dumps(body), mimetype="application/json")


@dataclass(frozen=True, slots=True)
class SummaryParameters:
    given: dict[str, str]
    start: str | None  # ISO text, included
    end: str | None  # ISO text, excluded: just after the `to` given, which is included
    by: By
    what_if: WhatIf
    by_subdivision: bool


_CHOICES: dict[str, tuple[str, ...]] = {
    "by": ("logged", "decided"),
    "what_if": ("exclude", "include", "only"),
    "subdivision": ("0", "1", "false", "true"),
}


def summary_parameters(args: MultiDict[str, str]) -> SummaryParameters:
    """The query parameters of /v1/audit/summary, checked as /v1/decisions checks its own: an unknown
    parameter, a repeated one or a bad value is a 400 naming it."""
    unknown = sorted(set(args) - {"from", "to", *_CHOICES})
    if unknown:
        known = ", ".join(["from", "to", *_CHOICES])
        raise ApiProblem(400, "Unknown parameter", f"unknown query parameter {unknown[0]!r}; known: {known}")
    given: dict[str, str] = {}
    for name in args:
        values = args.getlist(name)
        if len(values) > 1:
            raise ApiProblem(400, "Bad parameter", f"{name!r} is given {len(values)} times; give it once")
        given[name] = values[0]
    for name, allowed in _CHOICES.items():
        if name in given and given[name] not in allowed:
            raise ApiProblem(
                400, "Bad parameter", f"{name!r} must be one of {', '.join(allowed)}; got {given[name]!r}"
            )
    bounds: dict[str, str] = {}
    for name in ("from", "to"):
        if name in given:
            try:
                bounds[name] = bound(given[name])
            except ValueError:
                raise ApiProblem(
                    400,
                    "Bad parameter",
                    f"{name!r} must be a date (YYYY-MM-DD) or an RFC 3339 instant; got {given[name]!r}",
                ) from None
    if "from" in bounds and "to" in bounds and bounds["from"] > bounds["to"]:
        raise ApiProblem(400, "Bad parameter", f"'from' ({given['from']}) is after 'to' ({given['to']})")
    return SummaryParameters(
        given,
        bounds.get("from"),
        end_after(bounds["to"]) if "to" in bounds else None,
        cast(By, given.get("by", "logged")),
        cast(WhatIf, given.get("what_if", "exclude")),
        given.get("subdivision") in ("1", "true"),
    )


def _source() -> Source:
    """The log files, or the audit database when HERALD_AUDIT_DB is set (a 503 if it cannot be read)."""
    return open_source_or_503(runtime().settings)


def open_source_or_503(settings: Settings) -> Source:
    try:
        return open_source(settings, threads=1)
    except StoreError as error:
        raise ApiProblem(503, "Audit store unavailable", str(error)) from None
