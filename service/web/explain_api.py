"""POST /v1/explain: the decision for one article and reader, and why each rule did or did not apply."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response, request

from service.verdicts import explain
from service.web.decisions import parse, render, rules_at
from service.web.locate import locate
from service.web.runtime import runtime
from service.web.schemas import DecisionRequest
from service.web.status import json_response

bp = Blueprint("explain", __name__)


@bp.post("/v1/explain")
def explain_one() -> Response:
    """Same body as /v1/decisions. A preview, not a page view: nothing is written to the audit log."""
    rt = runtime()
    body = parse(DecisionRequest)
    reader, _ = locate(body.reader, request, rt)
    engine, at = rules_at(rt, body.at)  # with `at`, the rules in force then, as a what-if decision
    explanation = explain(engine, body.article.to_article(), reader, at)
    return json_response(
        {
            **render(explanation.decision, what_if=body.at is not None),
            "rules": [asdict(verdict) for verdict in explanation.verdicts],
        }
    )
