"""The decision endpoints: one article, a batch for one reader, and the browser's GET form."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, Response, request
from pydantic import BaseModel, ValidationError

from service.audit.bounds import named_tags
from service.decision import Decision
from service.engine import Engine
from service.inputs import Article, Location
from service.model import ArticleFields
from service.vocabulary import warnings_for
from service.web.body import read_json
from service.web.locate import locate
from service.web.problems import ApiProblem, from_validation
from service.web.runtime import Answered, Runtime, runtime
from service.web.schemas import BatchRequest, DecisionRequest
from service.web.status import json_response

bp = Blueprint("decisions", __name__)
M = TypeVar("M", bound=BaseModel)


@bp.post("/v1/decisions")
def decide_one() -> Response:
    rt = runtime()
    body = parse(DecisionRequest)
    reader, address = locate(body.reader, request, rt)
    engine, at = rules_at(rt, body.at)  # one ruleset for the whole request, even if a reload happens
    article = body.article.to_article()
    decision = engine.decide(article, reader, at)
    (answer,) = _answers(rt, engine, [(article, decision)], address, what_if=body.at is not None)
    return json_response(answer)


@bp.post("/v1/decisions/batch")
def decide_batch() -> Response:
    rt = runtime()
    body = parse(BatchRequest)
    if len(body.articles) > rt.settings.max_batch:
        raise ApiProblem(
            413,
            "Batch too large",
            f"a batch holds at most {rt.settings.max_batch} articles; got {len(body.articles)}",
        )
    reader, address = locate(body.reader, request, rt)
    engine, at = rules_at(rt, body.at)
    what_if = body.at is not None
    articles = [fields.to_article() for fields in body.articles]
    decided = [(article, engine.decide(article, reader, at)) for article in articles]
    decisions = _answers(rt, engine, decided, address, what_if=what_if)
    return json_response(
        {"reader": _location(reader.location), "ruleset": engine.hash, "decisions": decisions}
    )


@bp.get("/v1/decisions")
def decide_get() -> Response:
    """The browser form: article fields as query parameters, the reader from the request."""
    if request.method == "HEAD":  # a link checker or a cache probing: no page view, so no decision
        return Response(status=200, mimetype="application/json")
    args = request.args
    if "at" in args:
        # Anyone can make a browser fetch this URL (an <img> on any page): a page view is now, and an
        # `at` would log a located reader's "page view" of another instant. What-ifs are POSTs.
        raise ApiProblem(
            400,
            "Parameter not accepted",
            "'at' is not accepted by GET /v1/decisions, which answers page views, decided now; "
            "ask about another instant with POST /v1/decisions and 'at' (a what-if decision)",
        )
    unknown = sorted(set(args) - set(ArticleFields.model_fields))
    if unknown:
        raise ApiProblem(400, "Unknown parameter", f"unknown query parameter {unknown[0]!r}")
    fields: dict[str, Any] = {k: v for k, v in args.items() if k != "tags"}
    if "tags" in args:
        fields["tags"] = [t for t in args["tags"].split(",") if t.strip()]
    try:
        parsed = DecisionRequest.model_validate({"article": fields})
    except ValidationError as error:
        raise from_validation(
            error, strip="article", model=DecisionRequest
        ) from None  # name the query parameter
    rt = runtime()
    reader, address = locate(None, request, rt)
    article = parsed.article.to_article()
    engine = rt.engine
    decision = engine.decide(article, reader, rt.clock())
    (answer,) = _answers(rt, engine, [(article, decision)], address, what_if=False)
    return json_response(answer)


def rules_at(rt: Runtime, at: datetime | None) -> tuple[Engine, datetime]:
    """The engine to decide with and the instant: now on the rules in force, or, for a what-if
    (`at` given), the rules in force at `at` (409 when none is archived for it)."""
    if at is None:
        return rt.engine, rt.clock()
    assert rt.past is not None  # create_app always sets it
    return rt.past.engine_at(at, rt.engine, rt.loaded_at), at


def parse(model: type[M]) -> M:
    """The request body as `model`: 415 unless JSON, 400 if malformed, 422 if it breaks the contract."""
    if not request.is_json:
        raise ApiProblem(
            415,
            "Unsupported Media Type",
            f"send the body as application/json, not {request.mimetype or 'nothing'!r}",
        )
    value = read_json(request.get_data(cache=False))
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise from_validation(error, model=model) from None


def _answers(
    rt: Runtime,
    engine: Engine,
    decided: list[tuple[Article, Decision]],
    address: str | None,
    *,
    what_if: bool,
) -> list[dict[str, Any]]:
    """The decisions of one request with their ids, logged together before any answer leaves."""
    tags = named_tags(engine.ruleset)
    warn = warnings_for(engine.ruleset)
    answered = [
        Answered(rt.new_id(), article, decision, address, what_if, tags) for article, decision in decided
    ]
    rt.log_decisions(answered)
    return [
        {"decision_id": a.decision_id, **render(a.decision, what_if=what_if), "warnings": warn(a.article)}
        for a in answered
    ]


def render(decision: Decision, *, what_if: bool = False) -> dict[str, Any]:
    """The decision as the API shows it (without its id). The editors' preview and `herald explain`
    decide on the rules they are given, at any instant: for them it is never a what-if."""
    return {
        "ruleset": decision.ruleset,
        "what_if": what_if,
        "at": decision.at.isoformat().replace("+00:00", "Z"),
        "reader": _location(decision.reader),
        "notices": [
            {
                "id": n.id,
                "severity": n.severity,
                "placement": n.placement,
                "language": n.language,
                "title": n.title,
                "body": n.body,
                "link": n.link,
                "rules": list(n.rules),
            }
            for n in decision.notices
        ],
        "effects": list(decision.effects),
        "superseded": [{"id": s.id, "by": s.by, "rules": list(s.rules)} for s in decision.superseded],
    }


def _location(location: Location) -> dict[str, Any]:
    return {
        "country": location.country,
        "subdivision": location.subdivision,
        "source": location.source,
        "anonymized": location.anonymized,
        "anonymizers": list(location.anonymizers),
        "said": [said.as_dict() for said in location.said],
    }
