"""Every HTTP error as RFC 9457 problem details (application/problem+json), never a stack trace."""

from __future__ import annotations

import difflib
import logging
from typing import Any, get_args

import orjson
from flask import Flask, Response
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("herald.web")


class ApiProblem(Exception):
    """An error to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors = status, title, detail, errors
        self.headers = headers or {}


def problem_response(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:herald:problem:{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return Response(orjson.dumps(body), status=status, mimetype=PROBLEM_JSON)


def pointer(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a JSON Pointer (RFC 6901)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc)


def from_validation(
    error: ValidationError, strip: str | None = None, model: type[BaseModel] | None = None
) -> ApiProblem:
    """A request that does not fit the contract: 400 if it is not JSON at all, else 422.
    `strip` drops a leading location part (query parameters are named without "/article");
    `model`, the contract validated against, lets an unknown field get a "did you mean"."""
    details = error.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in details):
        message = next(e["msg"] for e in details if e["type"] == "json_invalid")
        return ApiProblem(400, "Malformed JSON", f"the request body is not valid JSON: {message}")
    errors = [
        {
            "location": pointer(_location(e["loc"], strip)),
            "message": _message(e, model),
            "type": e["type"],
        }
        for e in details
    ]
    summary = "; ".join(f"{e['location'] or '/'}: {e['message']}" for e in errors[:3])
    return ApiProblem(422, "Invalid request", summary, errors)


# pydantic's wording where it speaks of Python rather than of the JSON the caller sent.
_MESSAGES = {
    "model_type": "expected a JSON object",
    "dict_type": "expected a JSON object",
    "tuple_type": "expected a JSON array",
    "list_type": "expected a JSON array",
    "extra_forbidden": "unknown field: not part of the request contract (see /openapi.json)",
}


def _message(error: Any, model: type[BaseModel] | None) -> str:
    if error["type"] == "extra_forbidden" and model is not None:
        loc = _location(error["loc"], None)
        field = str(loc[-1]) if loc else ""
        # 0.8: close enough for a typo (tag, contry), not for another word (published_at is not publisher)
        close = difflib.get_close_matches(field, _fields_at(model, loc[:-1]), n=1, cutoff=0.8)
        if close:  # as rule files do: a typo names the field it was meant to be
            return f"unknown field {field!r}; did you mean {close[0]!r}?"
        return f"unknown field {field!r}: not part of the request contract (see /openapi.json)"
    if error["type"] == "too_long" and isinstance(error.get("input"), str):  # pydantic says "items"
        return f"at most {error['ctx']['max_length']} characters, not {len(error['input'])}"
    return _MESSAGES.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the object at `loc` in a body validated as `model` (list indexes skipped)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if current is not None else None
        current = _model_in(field.annotation) if field is not None else None
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, through Optional, lists, tuples and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _location(loc: tuple[int | str, ...], strip: str | None) -> tuple[int | str, ...]:
    parts = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
    return parts[1:] if strip is not None and parts[:1] == (strip,) else parts


def install(app: Flask) -> None:
    """Render HTTP errors, our problems and any unexpected exception as problem details."""

    @app.errorhandler(ApiProblem)
    def _problem(error: ApiProblem) -> Response:
        response = problem_response(error.status, error.title, error.detail, error.errors)
        response.headers.update(error.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        response = problem_response(status, error.name, error.description or error.name)
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unexpected error")
        return problem_response(500, "Internal Server Error", InternalServerError.description or "")
