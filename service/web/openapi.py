"""The OpenAPI 3.1 document, generated from the contract's pydantic models: every endpoint, its role."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service import __doc__ as summary
from service.model import ArticleFields
from service.web.schemas import (
    AuditDecisionOut,
    AuditSummaryOut,
    BatchOut,
    BatchRequest,
    DecisionOut,
    DecisionRequest,
    ExplanationOut,
    Health,
    Problem,
    ReloadOut,
    RulesetOut,
)
from service.web.witness import CheckpointsIn, CheckpointsStored

_REF = "#/components/schemas/{model}"
_PROBLEM = {"application/problem+json": {"schema": {"$ref": _REF.format(model="Problem")}}}
_REQUESTS = (DecisionRequest, BatchRequest, CheckpointsIn)

# Who may call what. OpenAPI 3.1 lets an http scheme's requirement name roles: the roles of
# `herald keys add --role`. Keys are only asked for when HERALD_KEYS_FILE is set (see each scheme).
Security = tuple[dict[str, list[str]], ...]
OPEN: Security = ()
DECIDE: Security = ({}, {"bearer": ["decide"]})  # open; a `decide` key with HERALD_DECISIONS_NEED_KEY=1
AUDIT = ({"bearer": ["audit"]},)
DASHBOARD = ({"basic": ["audit"]}, {"bearer": ["audit"]})
ADMIN = ({"bearer": ["admin"]},)
METRICS = ({"bearer": ["metrics"]}, {"bearer": ["audit"]})
_GUARDED = (401, 403, 404)  # 404: this node serves no such endpoint (no keys file, no *_HTTP=1)

SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A key made by `herald keys add NAME --role R`, sent as `Authorization: Bearer "
        "<key>`. Asked for only when HERALD_KEYS_FILE is set: without a keys file, audit endpoints "
        "are served to anyone with HERALD_AUDIT_HTTP=1 (else 404), the reload with HERALD_ADMIN_HTTP=1, "
        "and /metrics is open. Decision endpoints need a `decide` key only with "
        "HERALD_DECISIONS_NEED_KEY=1. A missing or unknown key is a 401, a key without the role a 403.",
    },
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "For the dashboard in a browser: the browser asks for a user name and password; "
        "any user name, the key (role audit) as the password. Scripts may send it as Bearer.",
    },
}


@dataclass(frozen=True)
class Operation:
    """One endpoint of the contract: what it takes, what it answers, and who may call it."""

    path: str
    method: str
    summary: str
    answer: type[BaseModel] | str  # a model (JSON) or a media type (HTML, JavaScript, text)
    errors: tuple[int, ...] = ()
    security: Security = OPEN
    body: type[BaseModel] | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    status: int = 200
    page_errors: tuple[int, ...] = ()  # statuses a page answers as itself (HTML), with the errors shown


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _article_parameters() -> tuple[dict[str, Any], ...]:
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
    return tuple(params)  # no `at`: the browser form answers page views, now (what-ifs are POSTs)


_SUMMARY_PARAMETERS = (
    _query("from", "First day or instant, included (YYYY-MM-DD or RFC 3339).", type="string"),
    _query("to", "Last day or instant, included.", type="string"),
    _query(
        "by", "Which time counts: when logged (default) or the instant decided.", enum=["logged", "decided"]
    ),
    _query("what_if", "What-if decisions: left out by default.", enum=["exclude", "include", "only"]),
    _query("subdivision", "1: count by subdivision too.", enum=["0", "1", "false", "true"]),
)
# A form: every field is text a person typed, empty when not filled in (the page shows the errors).
_PREVIEW_PARAMETERS = tuple(
    _query(name, text, type="string")
    for name, text in (
        ("publisher", "The article's publisher; empty: the blank form."),
        ("section", "The article's section."),
        ("tags", "The article's tags, comma- or space-separated."),
        ("language", "The article's language."),
        ("type", "The article's type."),
        ("country", "The reader's country (ISO 3166-1 alpha-2)."),
        ("subdivision", "The reader's subdivision (ISO 3166-2)."),
        ("ip", "An address to look up in the GeoIP database."),
        ("languages", "The reader's languages, best first, comma- or space-separated."),
        ("at", "The instant, UTC (a datetime-local value; empty: now)."),
    )
)
_DECISION_ID = {
    "name": "decision_id",
    "in": "path",
    "required": True,
    "description": "The decision_id of an answer (a UUIDv7).",
    "schema": {"type": "string", "maxLength": 100},
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "/v1/decisions",
        "post",
        "Decide the notices for one article",
        DecisionOut,
        (400, 401, 403, 409, 413, 415, 422),
        DECIDE,
        DecisionRequest,
    ),
    Operation(
        "/v1/decisions/batch",
        "post",
        "Decide for many articles and one reader",
        BatchOut,
        (400, 401, 403, 409, 413, 415, 422),
        DECIDE,
        BatchRequest,
    ),
    Operation(
        "/v1/decisions",
        "get",
        "Decide for the calling reader (browser form)",
        DecisionOut,
        (400, 401, 403, 422),
        DECIDE,
        parameters=_article_parameters(),
    ),
    Operation(
        "/v1/explain",
        "post",
        "Explain why each rule did or did not apply (not logged)",
        ExplanationOut,
        (400, 401, 403, 409, 413, 415, 422),
        DECIDE,
        DecisionRequest,
    ),
    Operation("/v1/ruleset", "get", "The ruleset in force", RulesetOut),
    Operation(
        "/v1/ruleset/reload",
        "post",
        "Load the rules now (role admin; or HERALD_ADMIN_HTTP=1 without keys). Body: {} or none",
        ReloadOut,
        (400, *_GUARDED, 413, 415, 422),
        ADMIN,
    ),
    Operation("/healthz", "get", "Liveness", Health),
    Operation("/readyz", "get", "Readiness: rules and GeoIP data loaded", Health, (503,)),
    Operation(
        "/metrics",
        "get",
        "Prometheus text format, summed over the workers (role metrics or audit, with keys)",
        "text/plain",
        (401, 403),
        METRICS,
    ),
    Operation(
        "/v1/audit/decisions/{decision_id}",
        "get",
        "One logged decision, explained and replayed (role audit)",
        AuditDecisionOut,
        _GUARDED,
        AUDIT,
        parameters=(_DECISION_ID,),
    ),
    Operation(
        "/v1/audit/summary",
        "get",
        "Decisions and notices shown by day and country (role audit)",
        AuditSummaryOut,
        (400, *_GUARDED),
        AUDIT,
        parameters=_SUMMARY_PARAMETERS,
    ),
    Operation(
        "/v1/audit/checkpoints",
        "post",
        "As a witness: keep other nodes' audit checkpoints (role audit; answers 202)",
        CheckpointsStored,
        (400, *_GUARDED, 413, 415, 422),
        AUDIT,
        CheckpointsIn,
        status=202,
    ),
    Operation(
        "/audit",
        "get",
        "The auditors' dashboard, HTML (role audit: the browser asks for the key as a password)",
        "text/html",
        _GUARDED,
        DASHBOARD,
        parameters=(
            _query("first", "First day shown (YYYY-MM-DD); default: 13 days before the last.", type="string"),
            _query("last", "Last day shown (YYYY-MM-DD); default: today.", type="string"),
            _query("decision", "A decision id to look up (404 when not in the log).", type="string"),
            _query("what_if", "What-if decisions: left out by default.", enum=["exclude", "include", "only"]),
            _query(
                "by",
                "Which time counts: when logged (default) or the instant decided.",
                enum=["logged", "decided"],
            ),
        ),
        page_errors=(400, 404),
    ),
    Operation(
        "/preview",
        "get",
        "The editors' preview, HTML (a form; 422 shows the form with its errors)",
        "text/html",
        (401, 403),
        DECIDE,
        parameters=_PREVIEW_PARAMETERS,
        page_errors=(422,),
    ),
    Operation("/widget.js", "get", "The publishers' widget (plain JavaScript)", "text/javascript"),
    Operation("/openapi.json", "get", "This document", "application/json"),
)


def _content(answer: type[BaseModel] | str) -> dict[str, Any]:
    if isinstance(answer, str):
        return {
            answer: {"schema": {"type": "string"} if answer != "application/json" else {"type": "object"}}
        }
    return {"application/json": {"schema": {"$ref": _REF.format(model=answer.__name__)}}}


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {str(op.status): {"description": "OK", "content": _content(op.answer)}}
    for status in op.errors:
        responses[str(status)] = {"description": "Problem", "content": dict(_PROBLEM)}
    for status in op.page_errors:
        entry = responses.setdefault(str(status), {"description": "The page, with the errors", "content": {}})
        entry["content"] |= _content("text/html")
    operation: dict[str, Any] = {"summary": op.summary, "responses": responses}
    if op.security:
        operation["security"] = list(op.security)
    if op.body is not None:
        operation["requestBody"] = {
            "required": op.body is not None,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=op.body.__name__)}}},
        }
    elif op.path == "/v1/ruleset/reload":
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}},
        }
    if op.parameters:
        operation["parameters"] = list(op.parameters)
    return operation


@cache
def openapi_document() -> dict[str, Any]:
    models = {m for op in OPERATIONS for m in (op.answer, op.body) if isinstance(m, type)} | {Problem}
    _, schemas = models_json_schema(
        [
            (m, "validation" if m in _REQUESTS else "serialization")
            for m in sorted(models, key=lambda m: m.__name__)
        ],
        ref_template=_REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Herald", "version": "1", "description": (summary or "").strip()},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {}), "securitySchemes": SECURITY_SCHEMES},
    }
