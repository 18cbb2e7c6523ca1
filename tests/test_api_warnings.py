"""Publishers' typos: `warnings` for what no rule names, and "did you mean" for an unknown field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.config import Settings
from service.web.schemas import BatchOut, DecisionOut
from tests.conftest import RULES

# A rule that also conditions on a section, a type and tags, beside the bundled pack.
EXTRA = """
rules:
  - id: rferl-war-video
    notice: rferl-undesirable
    article:
      publisher: [rferl]
      section: [news]
      type: [video]
      tags: {any: [russia, ukraine]}
    reader: {regions: [russia]}
"""


@pytest.fixture
def client(make_app: Callable[..., Flask], settings: Settings, tmp_path: Path) -> FlaskClient:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "policies" / "extra.yaml").write_text(EXTRA)
    return make_app(settings.model_copy(update={"rules_dir": rules})).test_client()


def _decide(client: FlaskClient, article: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/decisions", json={"article": article, "reader": {"country": "RU"}})
    assert response.status_code == 200, response.get_data(as_text=True)
    return DecisionOut.model_validate(response.get_json()).model_dump()


@pytest.mark.parametrize(
    ("article", "warnings"),
    [
        ({"publisher": "rferl"}, []),
        ({"publisher": "rfrl"}, ["publisher 'rfrl' appears in no rule; did you mean 'rferl'?"]),
        ({"publisher": "example-news"}, ["publisher 'example-news' appears in no rule"]),
        (
            {
                "publisher": "rferl",
                "section": "nwes",
                "type": "vidoe",
                "tags": ["rusia", "culture", "ukraine"],
            },
            [
                "section 'nwes' appears in no rule; did you mean 'news'?",
                "type 'vidoe' appears in no rule; did you mean 'video'?",
                "tag 'rusia' appears in no rule; did you mean 'russia'?",
            ],
        ),
        # Sections, types and tags that no rule names and are close to none: a site's own words.
        ({"publisher": "rferl", "section": "culture", "type": "podcast", "tags": ["economy"]}, []),
    ],
)
def test_what_no_rule_names_is_warned_about(
    client: FlaskClient, article: dict[str, Any], warnings: list[str]
) -> None:
    assert _decide(client, article)["warnings"] == warnings


def test_warnings_do_not_change_the_decision(client: FlaskClient) -> None:
    typo = _decide(client, {"publisher": "rferl", "tags": ["rusia"]})
    plain = _decide(client, {"publisher": "rferl", "tags": ["economy"]})
    assert typo["warnings"] and not plain["warnings"]
    drop = {"decision_id", "warnings"}
    assert {k: v for k, v in typo.items() if k not in drop} == {
        k: v for k, v in plain.items() if k not in drop
    }


def test_each_decision_of_a_batch_and_the_browser_form_have_warnings(client: FlaskClient) -> None:
    batch = client.post(
        "/v1/decisions/batch",
        json={"reader": {"country": "RU"}, "articles": [{"publisher": "rferl"}, {"publisher": "rfrl"}]},
    )
    decisions = BatchOut.model_validate(batch.get_json()).decisions
    assert [d.warnings for d in decisions] == [
        [],
        ["publisher 'rfrl' appears in no rule; did you mean 'rferl'?"],
    ]
    form = client.get("/v1/decisions?publisher=rferl&section=nwes").get_json()
    assert form["warnings"] == ["section 'nwes' appears in no rule; did you mean 'news'?"]


def test_openapi_lists_warnings(client: FlaskClient) -> None:
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert schemas["DecisionOut"]["properties"]["warnings"]["type"] == "array"
    assert "warnings" in schemas["DecisionOut"]["required"]


@pytest.mark.parametrize(
    ("path", "body", "location", "message"),
    [
        (
            "/v1/decisions",
            {"article": {"publisher": "rferl", "tag": ["russia"]}},
            "/article/tag",
            "unknown field 'tag'; did you mean 'tags'?",
        ),
        (
            "/v1/decisions",
            {"article": {"publisher": "rferl"}, "reader": {"contry": "RU"}},
            "/reader/contry",
            "unknown field 'contry'; did you mean 'country'?",
        ),
        (
            "/v1/decisions",
            {"artcle": {"publisher": "rferl"}},
            "/artcle",
            "unknown field 'artcle'; did you mean 'article'?",
        ),
        (
            "/v1/decisions/batch",
            {"articles": [{"publisher": "rferl"}, {"publisher": "rferl", "sectoin": "news"}]},
            "/articles/1/sectoin",
            "unknown field 'sectoin'; did you mean 'section'?",
        ),
        (
            "/v1/decisions",
            {"article": {"publisher": "rferl", "published_at": "2025-01-01"}},
            "/article/published_at",
            "unknown field 'published_at': not part of the request contract (see /openapi.json)",
        ),
    ],
)
def test_an_unknown_field_gets_a_did_you_mean(
    client: FlaskClient, path: str, body: dict[str, Any], location: str, message: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422
    problem = response.get_json()
    assert {"location": location, "message": message, "type": "extra_forbidden"} in problem["errors"]
    assert message in problem["detail"]
