"""The OpenAPI 3.1 document, generated from the contract's pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service import __doc__ as summary
from service.model import ArticleFields
from service.web.schemas import (
    BatchOut,
    BatchRequest,
    DecisionOut,
    DecisionRequest,
    ExplanationOut,
    Health,
    Problem,
    RulesetOut,
)
from service.web.witness import CheckpointsIn, CheckpointsStored

_REF = "#/components/schemas/{model}"
_PROBLEM = {"application/problem+json": {"schema": {"$ref": _REF.format(model="Problem")}}}

# (path, method, summary, request model, response model, error statuses)
_OPERATIONS: list[tuple[str, str, str, type[BaseModel] | None, type[BaseModel], tuple[int, ...]]] = [
    (
        "/v1/decisions",
        "post",
        "Decide the notices for one article",
        DecisionRequest,
        DecisionOut,
        (400, 409, 413, 415, 422),
    ),
    (
        "/v1/decisions/batch",
        "post",
        "Decide for many articles and one reader",
        BatchRequest,
        BatchOut,
        (400, 409, 413, 415, 422),
    ),
    ("/v1/decisions", "get", "Decide for the calling reader (browser form)", None, DecisionOut, (400, 422)),
    (
        "/v1/explain",
        "post",
        "Explain why each rule did or did not apply (not logged)",
        DecisionRequest,
        ExplanationOut,
        (400, 409, 413, 415, 422),
    ),
    ("/v1/ruleset", "get", "The ruleset in force", None, RulesetOut, ()),
    ("/healthz", "get", "Liveness", None, Health, ()),
    ("/readyz", "get", "Readiness: rules and GeoIP data loaded", None, Health, (503,)),
    (
        "/v1/audit/checkpoints",
        "post",
        "As a witness: keep other nodes' audit checkpoints (role audit; answers 202)",
        CheckpointsIn,
        CheckpointsStored,
        (400, 401, 403, 404, 413, 415, 422),  # 404: this node serves no audit endpoints
    ),
]


def _query_parameters() -> list[dict[str, Any]]:
    """The article's fields as query parameters, each with its own schema (tags: comma-separated)."""
    properties = ArticleFields.model_json_schema()["properties"]
    params = []
    for name, field in ArticleFields.model_fields.items():
        schema = properties[name]
        schema = next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)
        if name == "tags":
            schema = {"type": "string", "description": "comma-separated tags"}
        schema = {k: v for k, v in schema.items() if k not in ("title", "default")}
        params.append({"name": name, "in": "query", "required": field.is_required(), "schema": schema})
    return params  # no `at`: the browser form answers page views, now (what-ifs are POSTs)


@cache
def openapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        DecisionRequest,
        BatchRequest,
        DecisionOut,
        BatchOut,
        ExplanationOut,
        RulesetOut,
        Health,
        Problem,
        CheckpointsIn,
        CheckpointsStored,
    ]
    _, schemas = models_json_schema(
        [
            (m, "validation" if m in (DecisionRequest, BatchRequest, CheckpointsIn) else "serialization")
            for m in models
        ],
        ref_template=_REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for path, method, title, request_model, response_model, errors in _OPERATIONS:
        operation: dict[str, Any] = {
            "summary": title,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model=response_model.__name__)}}
                    },
                },
                **{str(status): {"description": "Problem", "content": _PROBLEM} for status in errors},
            },
        }
        if request_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(model=request_model.__name__)}}
                },
            }
        if path == "/v1/decisions" and method == "get":
            operation["parameters"] = _query_parameters()
        if path == "/v1/audit/checkpoints":
            operation["responses"]["202"] = operation["responses"].pop("200")
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Herald", "version": "1", "description": (summary or "").strip()},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }
