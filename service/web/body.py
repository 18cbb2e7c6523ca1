"""Request bodies read as strict JSON (RFC 8259): one clear 400 for what other parsers let by."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from service.web.problems import ApiProblem, from_validation

M = TypeVar("M", bound=BaseModel)
# Every JSON string, from its opening quote (outside strings, a quote only ever opens one), and the
# colon that makes it a key. On a body pydantic has parsed as JSON, this counts its keys exactly.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"(\s*:)?')


def _malformed(detail: str) -> ApiProblem:
    return ApiProblem(400, "Malformed JSON", detail)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (most parsers keep the last one silently)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _malformed(f"the key {key!r} appears twice in one object")
        found[key] = value
    return found


def _constant(name: str) -> Any:
    raise _malformed(f"{name} is not a JSON number")


def read_json(data: bytes) -> Any:
    """The body's JSON value. Refuses invalid UTF-8, syntax errors, NaN and Infinity, duplicate
    keys and runaway nesting, each with a message that says which. (The contract itself nests
    three levels; deeper values fail validation with their location.)"""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _malformed(f"the body is not UTF-8 (byte {error.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_constant)
    except json.JSONDecodeError as error:
        raise _malformed(
            f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:  # the parser's own guard, at Python's recursion limit
        raise _malformed("the body nests too deeply") from None


def read_model(model: type[M], data: bytes) -> M:
    """The body validated as `model`: 400 if it is not strict JSON, 422 if it breaks the contract.

    Parsed and validated in one step by pydantic (`model_validate_json`), whose parser refuses
    invalid UTF-8, NaN as a field's value, and deep nesting, but keeps the last of two equal keys:
    so the keys are counted too, against the fields the models were given. Anything else, a body
    that fails or a key given twice, is read again by `read_json` and validated from its value,
    which gives the precise 400 (or the 422) that body always got."""
    try:
        value = model.model_validate_json(data)
    except ValidationError:
        pass
    else:
        found = _STRING.findall(data)
        if len(found) - found.count(b"") == _fields_given(value):
            return value
    try:
        return model.model_validate(read_json(data))
    except ValidationError as error:
        raise from_validation(error, model=model) from None


def _fields_given(value: Any) -> int:
    """How many keys the JSON held for `value`: every field set on it and on the models within."""
    if isinstance(value, BaseModel):
        given = value.model_fields_set
        return len(given) + sum(_fields_given(getattr(value, name)) for name in given)
    if isinstance(value, list | tuple):
        return sum(_fields_given(item) for item in value if isinstance(item, BaseModel))
    return 0
