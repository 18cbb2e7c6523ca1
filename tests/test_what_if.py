"""What-if decisions (asked with `at`): on the rules in force then, marked, and never a page view."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.audit.reader import records
from service.config import Settings
from service.web import create_app
from service.web.openapi import openapi_document
from service.web.runtime import runtime
from tests.audit_support import Clock
from tests.conftest import RULES

T1 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)  # the first rules are loaded
T2 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)  # the second rules are loaded
RU = {"country": "RU"}
RFERL = {"publisher": "rferl"}


@dataclass
class Served:
    app: Flask
    client: FlaskClient
    clock: Clock
    first: str  # ruleset hashes
    second: str

    @property
    def directory(self) -> Path:
        return runtime(self.app).settings.audit_dir

    def decisions(self) -> list[dict[str, Any]]:
        return [r for r in records([self.directory]) if r["kind"] == "decision"]


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Iterator[Served]:
    """A service with a real audit log that loaded one ruleset at T1 and a changed one at T2, and now
    (T2 + 1 day) serves the second: the change gives `hide_comments` instead of `discourage_sharing`."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    clock = Clock(T1)
    app = create_app(settings.model_copy(update={"rules_dir": rules, "reload_interval": 0}), clock=clock)
    rt = runtime(app)
    first = rt.engine.hash
    policy = rules / "policies" / "rferl.yaml"
    policy.write_text(policy.read_text().replace("[discourage_sharing]", "[hide_comments]"))
    clock.now = T2
    assert rt.reloader is not None and rt.reloader.check(force=True).status == "loaded"
    clock.now = T2 + timedelta(days=1)
    yield Served(app, app.test_client(), clock, first, rt.engine.hash)
    rt.audit.stopped()


def post(client: FlaskClient, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == status, response.get_data(as_text=True)
    return dict(response.get_json())


@pytest.mark.parametrize(
    ("at", "ruleset", "effects"),
    [
        ("2025-06-05T00:00:00Z", "first", ["discourage_sharing"]),
        ("2025-06-01T12:00:00Z", "first", ["discourage_sharing"]),  # the instant it was loaded
        ("2025-06-10T11:59:59Z", "first", ["discourage_sharing"]),
        ("2025-06-10T12:00:00Z", "second", ["hide_comments"]),
        ("2030-01-01T00:00:00Z", "second", ["hide_comments"]),  # the future: the rules known now
    ],
)
def test_a_what_if_is_decided_on_the_rules_in_force_then(
    served: Served, at: str, ruleset: str, effects: list[str]
) -> None:
    body = post(served.client, "/v1/decisions", {"article": RFERL, "reader": RU, "at": at})
    assert body["ruleset"] == getattr(served, ruleset) and body["effects"] == effects
    assert body["what_if"] is True
    (record,) = served.decisions()
    assert record["what_if"] is True and record["ruleset"] == body["ruleset"]
    assert datetime.fromisoformat(record["at"]) == datetime.fromisoformat(at)


@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/decisions/batch", "/v1/explain"])
def test_no_archived_rules_for_the_instant_is_a_409(served: Served, path: str) -> None:
    body = {"reader": RU, "at": "2020-01-01"} | (
        {"articles": [RFERL]} if path.endswith("batch") else {"article": RFERL}
    )
    response = served.client.post(path, json=body)
    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    detail = response.get_json()["detail"]
    assert "no ruleset is archived as in force at 2020-01-01T00:00:00.000000Z" in detail
    assert "earliest archived ruleset was loaded at 2025-06-01T12:00:00.000000Z" in detail
    assert served.decisions() == []


def test_an_archived_ruleset_gone_missing_is_a_409(served: Served) -> None:
    (served.directory / "rulesets" / f"{served.first.removeprefix('sha256:')}.json").unlink()
    response = served.client.post("/v1/decisions", json={"article": RFERL, "at": "2025-06-05"})
    assert response.status_code == 409
    detail = response.get_json()["detail"]
    assert served.first in detail and "missing from the archive" in detail
    assert str(served.directory) not in detail  # no path of the server's disk to callers


def test_page_views_are_not_what_ifs(served: Served) -> None:
    one = post(served.client, "/v1/decisions", {"article": RFERL, "reader": RU})
    batch = post(served.client, "/v1/decisions/batch", {"articles": [RFERL, RFERL], "reader": RU})
    assert one["what_if"] is False and [d["what_if"] for d in batch["decisions"]] == [False, False]
    assert [("what_if" in r) for r in served.decisions()] == [False, False, False]


def test_a_batch_with_at_is_a_batch_of_what_ifs(served: Served) -> None:
    body = {"articles": [RFERL, {"publisher": "other"}], "reader": RU, "at": "2025-06-05"}
    batch = post(served.client, "/v1/decisions/batch", body)
    assert [d["what_if"] for d in batch["decisions"]] == [True, True]
    assert batch["ruleset"] == served.first and batch["decisions"][0]["effects"] == ["discourage_sharing"]
    assert [r.get("what_if") for r in served.decisions()] == [True, True]


def test_explain_with_at_explains_the_rules_then(served: Served) -> None:
    body = post(served.client, "/v1/explain", {"article": RFERL, "reader": RU, "at": "2025-06-05"})
    assert body["what_if"] is True and body["ruleset"] == served.first
    assert body["effects"] == ["discourage_sharing"] and served.decisions() == []


@pytest.mark.parametrize("query", ["at=2020-01-01", "at=soon", "at="])
def test_the_browser_form_refuses_at(served: Served, query: str) -> None:
    response = served.client.get(f"/v1/decisions?publisher=rferl&{query}")
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert "POST /v1/decisions" in response.get_json()["detail"]
    assert served.decisions() == []


def test_what_ifs_are_counted_apart_in_metrics(served: Served) -> None:
    post(served.client, "/v1/decisions", {"article": RFERL, "reader": RU, "at": "2025-06-05"})
    post(served.client, "/v1/decisions", {"article": RFERL, "reader": RU})
    text = served.client.get("/metrics").get_data(as_text=True)
    assert "herald_what_if_decisions_total 1.0" in text
    assert 'herald_decisions_total{country="RU",source="explicit"} 1.0' in text


def test_openapi_says_what_if_and_has_no_at_on_the_browser_form() -> None:
    document = openapi_document()
    get = document["paths"]["/v1/decisions"]["get"]
    assert "at" not in {p["name"] for p in get["parameters"]}
    body = document["components"]["schemas"]["DecisionOut"]
    assert "what_if" in body["required"] and body["properties"]["what_if"]["type"] == "boolean"
    assert "409" in document["paths"]["/v1/decisions"]["post"]["responses"]
