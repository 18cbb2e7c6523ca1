"""Request bodies read as strict JSON (RFC 8259): one clear 400 for what other parsers let by."""

from __future__ import annotations

import json
from typing import Any

from service.web.problems import ApiProblem


def _malformed(detail: str) -> ApiProblem:
    return ApiProblem(400, "Malformed JSON", detail)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (most parsers keep the last one silently)."""
    found = dict(pairs)
    if len(found) < len(pairs):  # rare: find the first key given twice, for the message
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _malformed(f"the key {key!r} appears twice in one object")
            seen.add(key)
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
