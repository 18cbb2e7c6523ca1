"""The HTTP contract at its edges: instants at the ends of the calendar, tag caps, refused fields,
and a decision memo that many unique articles cannot grow past its byte bound."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.engine import DEFAULT_MEMO_BYTES, Engine
from service.inputs import Article, Reader
from service.model import MAX_TAG_LENGTH, MAX_TAGS
from service.web.runtime import runtime
from tests.conftest import NOW

RFERL = {"publisher": "rferl"}
PAST_9999 = "9999-12-31T23:59:59-23:59"
BEFORE_1 = "0001-01-01T00:00:00+00:01"


def call(client: FlaskClient, how: str, article: dict[str, Any], at: str | None = None) -> Any:
    """One request of kind `how` for `article` (and `at`), as each endpoint takes it."""
    timing = {"at": at} if at is not None else {}
    if how == "post":
        return client.post("/v1/decisions", json={"article": article} | timing)
    if how == "batch":
        return client.post("/v1/decisions/batch", json={"articles": [RFERL, article]} | timing)
    if how == "explain":
        return client.post("/v1/explain", json={"article": article} | timing)
    query = {k: ",".join(v) if isinstance(v, list) else v for k, v in article.items()} | timing
    return client.get("/v1/decisions" if how == "get" else "/preview", query_string=query)


ENDPOINTS = ["post", "batch", "explain", "get", "preview"]


@pytest.mark.parametrize("at", [PAST_9999, BEFORE_1, "9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize("how", [e for e in ENDPOINTS if e != "get"])  # the GET form refuses `at`
def test_an_instant_that_leaves_the_calendar_in_utc_is_a_422(client: FlaskClient, how: str, at: str) -> None:
    response = call(client, how, RFERL, at)
    assert response.status_code == 422
    if how != "preview":  # the preview page shows it next to the field
        (error,) = response.get_json()["errors"]
        assert error["location"] == "/at"
        assert "outside the calendar once converted to UTC (years 1 to 9999)" in error["message"]
    else:
        assert "outside the calendar" in response.get_data(as_text=True)


@pytest.mark.parametrize("at", ["2025-03-01T12:00:00", "2025-03-01 12:00:00", "2025-03-01T12:00"])
@pytest.mark.parametrize("how", ["post", "batch", "explain"])
def test_an_instant_without_a_zone_is_a_422_showing_the_fixed_form(
    client: FlaskClient, how: str, at: str
) -> None:
    response = call(client, how, RFERL, at)
    assert response.status_code == 422
    (error,) = response.get_json()["errors"]
    assert error["location"] == "/at" and error["type"] == "no_time_zone"
    assert "has no time zone; write 2025-03-01T12:00:00Z for UTC" in error["message"]


@pytest.mark.parametrize(
    ("at", "expected"),
    [("2100-03-01", "2100-03-01T00:00:00Z"), ("2100-03-01T12:00:00+03:00", "2100-03-01T09:00:00Z")],
)
def test_a_date_is_midnight_utc_and_an_offset_is_converted(
    client: FlaskClient, at: str, expected: str
) -> None:
    response = call(client, "post", RFERL, at)  # the future: a what-if on the rules served now
    assert response.status_code == 200 and response.get_json()["at"] == expected


def test_the_preview_form_reads_its_instant_as_utc(client: FlaskClient) -> None:
    """The form's field is labelled UTC and a browser's datetime-local sends no zone."""
    response = call(client, "preview", RFERL, "2025-03-01T12:00")
    assert response.status_code == 200 and "has no time zone" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("at", "status"),
    [
        ("9999-12-31T23:59:59.999999Z", 200),  # a what-if on the rules served now
        ("0001-01-01T00:00:00Z", 409),  # a what-if before any archived rules: refused, not a 500
        ("0001-01-01T01:00:00+01:00", 409),
    ],
)
def test_the_last_and_first_instants_of_the_calendar_are_answered(
    make_app: Callable[..., Flask], settings: Any, at: str, status: int
) -> None:
    """Through the real audit log too: nothing downstream of the contract overflows either."""
    from service.web import create_app

    client = create_app(settings, clock=lambda: NOW).test_client()
    for how in ("post", "batch", "explain"):
        response = call(client, how, RFERL, at)
        assert response.status_code == status, response.get_data(as_text=True)
        if status == 409:
            assert "in force at 0001-01-01T00:00:00.000000Z" in response.get_json()["detail"]


@pytest.mark.parametrize("how", ["post", "batch", "explain", "get"])
def test_published_at_is_refused(client: FlaskClient, how: str) -> None:
    """No rule can use it and the audit log does not keep it: refused, not silently dropped."""
    response = call(client, how, RFERL | {"published_at": "2025-01-01T00:00:00Z"})
    assert response.status_code == (400 if how == "get" else 422)
    body = response.get_json()
    if how == "get":
        assert body["detail"] == "unknown query parameter 'published_at'"
    else:
        (error,) = body["errors"]
        pointer = "/articles/1/published_at" if how == "batch" else "/article/published_at"
        assert error["location"] == pointer and error["type"] == "extra_forbidden"
        assert error["message"].startswith("unknown field")


@pytest.mark.parametrize(
    ("tags", "pointer", "kind"),
    [
        ([f"t{i}" for i in range(MAX_TAGS + 1)], "/tags", "too_long"),
        (["ok", "x" * (MAX_TAG_LENGTH + 1)], "/tags/1", "too_long"),
    ],
    ids=["too many tags", "a tag too long"],
)
@pytest.mark.parametrize("how", ["post", "batch", "explain", "get"])
def test_tags_are_capped(client: FlaskClient, how: str, tags: list[str], pointer: str, kind: str) -> None:
    response = call(client, how, RFERL | {"tags": tags})
    assert response.status_code == 422
    (error,) = response.get_json()["errors"]
    prefix = {"post": "/article", "explain": "/article", "batch": "/articles/1", "get": ""}[how]
    assert (error["location"], error["type"]) == (prefix + pointer, kind)
    at_cap = RFERL | {"tags": [f"{i}".rjust(MAX_TAG_LENGTH, "t") for i in range(MAX_TAGS)]}
    assert call(client, how, at_cap).status_code == 200


def test_the_caps_are_in_the_openapi_document(client: FlaskClient) -> None:
    tags = client.get("/openapi.json").get_json()["components"]["schemas"]["ArticleFields"]["properties"][
        "tags"
    ]
    assert (tags["maxItems"], tags["items"]["maxLength"]) == (MAX_TAGS, MAX_TAG_LENGTH)


def unique_tags(batch: int, article: int) -> list[str]:
    return [f"b{batch}-a{article}-{i}-".ljust(MAX_TAG_LENGTH, "x") for i in range(MAX_TAGS)]


def test_unique_tag_batches_cannot_grow_the_memo_past_its_byte_bound(client: FlaskClient) -> None:
    """The reproduction (batches of 60 articles, each with its own long tags), at the caps: the
    memo evicts instead of growing; it held every entry before (16,384 of them, ~500 MB)."""
    engine = runtime(client.application).engine
    for batch in range(30):
        articles = [RFERL | {"id": str(i), "tags": unique_tags(batch, i)} for i in range(60)]
        response = client.post(
            "/v1/decisions/batch", json={"articles": articles, "reader": {"country": "RU"}}
        )
        assert response.status_code == 200
    info = engine.memo_info()["decisions"]
    assert info["misses"] == 1800 and info["maxbytes"] == DEFAULT_MEMO_BYTES
    assert info["currsize"] < 1800 and info["bytes"] <= DEFAULT_MEMO_BYTES  # type: ignore[operator]


def test_the_memo_estimate_is_close_to_the_memory_it_keeps(client: FlaskClient) -> None:
    """The byte bound is an estimate: measured, a full memo keeps about what it says."""
    ruleset = runtime(client.application).engine.ruleset
    bound = 2 * 1024 * 1024
    reader = Reader()
    tracemalloc.start()
    try:
        engine = Engine(ruleset, memo_bytes=bound)
        before = tracemalloc.get_traced_memory()[0]
        for n in range(2000):
            tags = frozenset(unique_tags(n, 0))
            engine.decide(Article("rferl", tags=tags), reader, NOW)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert engine.memo_info()["decisions"]["bytes"] <= bound  # type: ignore[operator]
    assert bound / 2 < kept < bound * 1.5, kept
