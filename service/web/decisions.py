"""The decision endpoints: one article, a batch for one reader, and the browser's GET form."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Blueprint, Response, request
from pydantic import BaseModel, ValidationError

from service.decision import Decision
from service.inputs import Article, Location
from service.model import ArticleFields
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
    engine = rt.engine  # one ruleset for the whole request, even if a reload happens meanwhile
    article = body.article.to_article()
    decision = engine.decide(article, reader, body.at or rt.clock())
    return json_response(_answer(rt, article, decision, address))


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
    at = body.at or rt.clock()
    engine = rt.engine
    articles = [fields.to_article() for fields in body.articles]
    decisions = [_answer(rt, article, engine.decide(article, reader, at), address) for article in articles]
    return json_response(
        {"reader": _location(reader.location), "ruleset": engine.hash, "decisions": decisions}
    )


@bp.get("/v1/decisions")
def decide_get() -> Response:
    """The browser form: article fields as query parameters, the reader from the request."""
    if request.method == "HEAD":  # a link checker or a cache probing: no page view, so no decision
        return Response(status=200, mimetype="application/json")
    args = request.args
    unknown = sorted(set(args) - set(ArticleFields.model_fields) - {"at"})
    if unknown:
        raise ApiProblem(400, "Unknown parameter", f"unknown query parameter {unknown[0]!r}")
    fields: dict[str, Any] = {k: v for k, v in args.items() if k not in ("tags", "at")}
    if "tags" in args:
        fields["tags"] = [t for t in args["tags"].split(",") if t.strip()]
    body = {"article": fields} | ({"at": args["at"]} if "at" in args else {})
    try:
        parsed = DecisionRequest.model_validate(body)
    except ValidationError as error:
        raise from_validation(error, strip="article") from None  # name the query parameter
    rt = runtime()
    reader, address = locate(None, request, rt)
    article = parsed.article.to_article()
    decision = rt.engine.decide(article, reader, parsed.at or rt.clock())
    return json_response(_answer(rt, article, decision, address))


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
        raise from_validation(error) from None


def _answer(rt: Runtime, article: Article, decision: Decision, address: str | None) -> dict[str, Any]:
    decision_id = rt.new_id()
    rt.log_decision(Answered(decision_id, article, decision, address))
    return {"decision_id": decision_id, **render(decision)}


def render(decision: Decision) -> dict[str, Any]:
    """The decision as the API shows it (without its id)."""
    return {
        "ruleset": decision.ruleset,
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
