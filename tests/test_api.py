"""The HTTP contract end to end through Flask's test client, on the bundled rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.config import Settings
from service.web import create_app
from service.web.runtime import Answered
from service.web.schemas import BatchOut, DecisionOut, Problem
from tests.conftest import NOW

NOTICE = "rferl-undesirable"
RFERL = {"publisher": "rferl"}


def decide(client: FlaskClient, body: Any, **kwargs: Any) -> dict[str, Any]:
    response = client.post("/v1/decisions", json=body, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    DecisionOut.model_validate(response.get_json())
    return dict(response.get_json())


@pytest.mark.parametrize(
    ("reader", "notices", "location"),
    [
        ({"ip": "77.88.8.8"}, [NOTICE], ("RU", None, "geoip")),
        ({"ip": "2a02:6b8::feed:0ff"}, [NOTICE], ("RU", "RU-MOW", "geoip")),
        ({"ip": "::ffff:5.59.104.1"}, [NOTICE], ("UA", "UA-43", "geoip")),
        ({"ip": "5.149.208.9"}, [NOTICE], ("UA", "UA-40", "geoip")),
        ({"ip": "93.72.0.1"}, [], ("UA", "UA-30", "geoip")),
        ({"ip": "8.8.8.8"}, [], ("US", None, "geoip")),
        ({"ip": "10.0.0.1"}, [NOTICE], (None, None, "unknown")),
        ({"ip": "127.0.0.1"}, [NOTICE], (None, None, "unknown")),
        ({"ip": "1.1.1.1"}, [NOTICE], (None, None, "unknown")),  # not in the database
        ({"country": "ru"}, [NOTICE], ("RU", None, "explicit")),
        ({"country": "RU", "subdivision": "UA-43"}, [NOTICE], ("RU", "UA-43", "explicit")),
        ({"subdivision": "UA-43"}, [NOTICE], ("UA", "UA-43", "explicit")),
        ({"country": "UA", "subdivision": "UA-30"}, [], ("UA", "UA-30", "explicit")),
        ({"country": "US", "ip": "77.88.8.8"}, [], ("US", None, "explicit")),
    ],
)
def test_reader_location_decides(
    client: FlaskClient, reader: dict[str, str], notices: list[str], location: tuple[Any, ...]
) -> None:
    body = decide(client, {"article": RFERL, "reader": reader})
    assert [n["id"] for n in body["notices"]] == notices
    got = body["reader"]
    assert (got["country"], got["subdivision"], got["source"]) == location


def test_anonymizer_is_reported_and_shown(client: FlaskClient) -> None:
    body = decide(client, {"article": RFERL, "reader": {"ip": "185.220.101.7"}})
    assert body["reader"] == {
        "country": None,
        "subdivision": None,
        "source": "unknown",
        "anonymized": True,
        "anonymizers": ["anonymous_proxy"],
        "said": [
            {
                "source": "geoip",
                "country": None,
                "subdivision": None,
                "anonymizers": ["anonymous_proxy"],
                "data": "GeoLite2-City 2019-12-24",
            }
        ],
    }
    assert [n["id"] for n in body["notices"]] == [NOTICE]


def test_full_answer_for_a_russian_reader(client: FlaskClient, logged: list[Answered]) -> None:
    body = decide(
        client, {"article": {**RFERL, "id": "a1"}, "reader": {"ip": "77.88.8.8", "languages": ["ru"]}}
    )
    assert body["at"] == "2025-06-01T12:00:00Z"
    assert body["ruleset"].startswith("sha256:")
    assert body["effects"] == ["discourage_sharing"]
    (notice,) = body["notices"]
    assert notice["language"] == "ru"
    assert notice["severity"] == "legal"
    assert "нежелательной" in notice["title"]
    assert notice["rules"] == ["rferl-undesirable-russia"]
    assert [a.decision_id for a in logged] == [body["decision_id"]]
    assert logged[0].article.id == "a1" and logged[0].address == "77.88.8.8"


@pytest.mark.parametrize(
    ("body_languages", "accept", "expected"),
    [
        (None, "uk-UA,uk;q=0.9,en;q=0.5", "uk"),
        (None, "de, ru;q=0.8", "ru"),
        (["ru-RU"], "uk", "ru"),  # the body wins over the header
        (None, None, "en"),
    ],
)
def test_text_language(
    client: FlaskClient, body_languages: list[str] | None, accept: str | None, expected: str
) -> None:
    reader: dict[str, Any] = {"country": "RU"}
    if body_languages is not None:
        reader["languages"] = body_languages
    headers = {"Accept-Language": accept} if accept else {}
    body = decide(client, {"article": RFERL, "reader": reader}, headers=headers)
    assert body["notices"][0]["language"] == expected


def test_no_reader_uses_the_peer_address_and_accept_language(client: FlaskClient) -> None:
    body = decide(
        client,
        {"article": RFERL},
        headers={"Accept-Language": "ru"},
        environ_base={"REMOTE_ADDR": "77.88.8.8"},
    )
    assert body["reader"]["source"] == "geoip" and body["reader"]["country"] == "RU"
    assert body["notices"][0]["language"] == "ru"


@pytest.mark.parametrize(
    ("at", "notices"),
    [
        ("2024-02-19T23:59:59Z", []),
        ("2024-02-20T00:00:00Z", [NOTICE]),
        ("2024-02-20T03:00:00+03:00", [NOTICE]),
    ],
)
def test_at_is_honoured(settings: Settings, logged: list[Answered], at: str, notices: list[str]) -> None:
    # Rules loaded before every `at` asked: the rules in force then are the ones served now.
    early = datetime(2024, 1, 1, tzinfo=UTC)
    client = create_app(settings, log_decision=logged.append, clock=lambda: early).test_client()
    body = decide(client, {"article": RFERL, "reader": {"country": "RU"}, "at": at})
    assert [n["id"] for n in body["notices"]] == notices
    assert body["what_if"] is True and logged[-1].what_if is True


def test_other_publisher_gets_nothing(client: FlaskClient) -> None:
    assert (
        decide(client, {"article": {"publisher": "example-news"}, "reader": {"country": "RU"}})["notices"]
        == []
    )


def test_browser_form(client: FlaskClient) -> None:
    response = client.get(
        "/v1/decisions?publisher=rferl&tags=russia,kosovo&section=news",
        headers={"Accept-Language": "uk"},
        environ_base={"REMOTE_ADDR": "5.59.104.1"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["reader"]["subdivision"] == "UA-43"
    assert body["notices"][0]["language"] == "uk"


def test_batch_keeps_order_and_logs_each(client: FlaskClient, logged: list[Answered]) -> None:
    articles = [
        {"publisher": "rferl", "id": "1"},
        {"publisher": "other", "id": "2"},
        {"publisher": "rferl", "id": "3"},
    ]
    response = client.post("/v1/decisions/batch", json={"reader": {"ip": "77.88.8.8"}, "articles": articles})
    assert response.status_code == 200
    body = BatchOut.model_validate(response.get_json())
    assert [len(d.notices) for d in body.decisions] == [1, 0, 1]
    assert body.reader.country == "RU"
    assert [a.article.id for a in logged] == ["1", "2", "3"]
    assert len({d.decision_id for d in body.decisions}) == 3


def test_batch_limit(make_app: Callable[..., Flask], settings: Settings) -> None:
    client = make_app(settings.model_copy(update={"max_batch": 2})).test_client()
    response = client.post("/v1/decisions/batch", json={"articles": [RFERL] * 3})
    assert response.status_code == 413
    assert response.get_json()["detail"] == "a batch holds at most 2 articles; got 3"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "location"),
    [
        ("post", "/v1/decisions", {"data": '{"article":', "content_type": "application/json"}, 400, None),
        ("post", "/v1/decisions", {"data": "publisher=rferl"}, 415, None),
        ("post", "/v1/decisions", {"json": []}, 422, ""),
        ("post", "/v1/decisions", {"json": {"article": {}}}, 422, "/article/publisher"),
        ("post", "/v1/decisions", {"json": {"article": RFERL, "reader": {"ip": "1.2.3"}}}, 422, "/reader/ip"),
        (
            "post",
            "/v1/decisions",
            {"json": {"article": RFERL, "reader": {"ip": "fe80::1%eth0"}}},
            422,
            "/reader/ip",
        ),
        (
            "post",
            "/v1/decisions",
            {"json": {"article": RFERL, "reader": {"country": "RUS"}}},
            422,
            "/reader/country",
        ),
        (
            "post",
            "/v1/decisions",
            {"json": {"article": RFERL, "reader": {"subdivision": "UA-99"}}},
            422,
            "/reader/subdivision",
        ),
        ("post", "/v1/decisions", {"json": {"article": RFERL, "at": "yesterday"}}, 422, "/at"),
        ("post", "/v1/decisions", {"json": {"article": RFERL, "extra": 1}}, 422, "/extra"),
        (
            "post",
            "/v1/decisions",
            {"json": {"article": {"publisher": "rferl", "tags": [1]}}},
            422,
            "/article/tags/0",
        ),
        ("post", "/v1/decisions/batch", {"json": {"articles": []}}, 422, "/articles"),
        ("post", "/v1/decisions", {"data": "x" * 2_000_000, "content_type": "application/json"}, 413, None),
        ("get", "/v1/decisions", {}, 422, "/publisher"),
        ("get", "/v1/decisions?publisher=rferl&colour=red", {}, 400, None),
        ("get", "/v1/decisions?publisher=rferl&at=soon", {}, 400, None),
        ("get", "/v1/decisions?publisher=rferl&at=2020-01-01", {}, 400, None),
        ("get", "/nowhere", {}, 404, None),
        ("delete", "/v1/decisions", {}, 405, None),
    ],
)
def test_errors_are_problem_details(
    client: FlaskClient, method: str, path: str, kwargs: dict[str, Any], status: int, location: str | None
) -> None:
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = Problem.model_validate(response.get_json())
    assert problem.status == status and problem.detail
    if location is not None:
        assert problem.errors is not None and location in [e.location for e in problem.errors]


def test_unknown_country_message_suggests(client: FlaskClient) -> None:
    response = client.post("/v1/decisions", json={"article": RFERL, "reader": {"country": "RUS"}})
    assert "ISO 3166-1 alpha-2 is 'RU'" in response.get_json()["errors"][0]["message"]


def test_unexpected_error_is_a_problem_without_trace(
    make_app: Callable[..., Flask], settings: Settings
) -> None:
    def broken(_: Answered) -> None:
        raise RuntimeError("secret internals")

    from service.web import create_app

    client = create_app(settings, log_decision=broken).test_client()
    response = client.post("/v1/decisions", json={"article": RFERL})
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "secret" not in response.get_data(as_text=True)


def test_status_endpoints(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["geoip"]["type"] == "GeoLite2-City"
    ruleset = client.get("/v1/ruleset").get_json()
    assert ruleset["counts"] == {"regions": 2, "notices": 1, "rules": 1, "cases": ruleset["counts"]["cases"]}
    assert ruleset["hash"] == ready.get_json()["ruleset"]
    assert ruleset["loaded_at"] == NOW.isoformat().replace("+00:00", "Z")
    assert {f["path"].rsplit("/", 1)[-1] for f in ruleset["files"]} >= {"regions.yaml", "rferl.yaml"}


def test_missing_geoip_database_is_not_ready_but_answers(
    make_app: Callable[..., Flask], settings: Settings, tmp_path: Path
) -> None:
    client = make_app(settings.model_copy(update={"geoip_db": tmp_path / "gone.mmdb"})).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "HERALD_GEOIP_DB" in ready.get_json()["reasons"][0]
    body = decide(client, {"article": RFERL, "reader": {"ip": "8.8.8.8"}})
    assert body["reader"]["source"] == "unknown"


def test_openapi_is_generated_from_the_models(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) >= {"/v1/decisions", "/v1/decisions/batch", "/v1/ruleset", "/readyz"}
    schemas = doc["components"]["schemas"]
    assert set(schemas["DecisionOut"]["properties"]) == set(DecisionOut.model_fields)
    assert "publisher" in schemas["ArticleFields"]["required"]
    post = doc["paths"]["/v1/decisions"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("DecisionRequest")


@pytest.mark.parametrize(
    "spoofed",
    [
        {"X-Forwarded-For": "77.88.8.8"},
        {"Forwarded": "for=77.88.8.8"},
        {"CF-IPCountry": "RU"},
        {"X-Forwarded-For": "77.88.8.8", "Forwarded": 'for="77.88.8.8"', "CF-IPCountry": "RU"},
    ],
)
def test_untrusted_proxy_headers_change_nothing(
    make_app: Callable[..., Flask], settings: Settings, spoofed: dict[str, str]
) -> None:
    from service.network import parse_networks

    # Herald trusts a proxy at 10.0.0.0/8 and reads CF-IPCountry, but this call comes from elsewhere.
    trusting = settings.model_copy(
        update={"trusted_proxies": parse_networks("10.0.0.0/8"), "country_header": "CF-IPCountry"}
    )
    client = make_app(trusting).test_client()
    body = decide(client, {"article": RFERL}, headers=spoofed, environ_base={"REMOTE_ADDR": "8.8.8.8"})
    assert (body["reader"]["country"], body["reader"]["source"]) == ("US", "geoip")
    assert body["notices"] == []


def test_trusted_proxy_and_country_header(make_app: Callable[..., Flask], settings: Settings) -> None:
    from service.network import parse_networks

    trusting = settings.model_copy(
        update={"trusted_proxies": parse_networks("10.0.0.0/8"), "country_header": "CF-IPCountry"}
    )
    client = make_app(trusting).test_client()
    via_proxy = {"REMOTE_ADDR": "10.1.2.3"}
    body = decide(
        client, {"article": RFERL}, headers={"X-Forwarded-For": "77.88.8.8"}, environ_base=via_proxy
    )
    assert (body["reader"]["country"], body["reader"]["source"]) == ("RU", "geoip")
    forwarded = {"Forwarded": 'for="[2a02:6b8::feed:ff]:443"'}
    body = decide(client, {"article": RFERL}, headers=forwarded, environ_base=via_proxy)
    assert body["reader"]["source"] == "unknown"  # HERALD_PROXY_HEADER=x-forwarded-for reads no other
    behind_forwarded = make_app(trusting.model_copy(update={"proxy_header": "forwarded"})).test_client()
    body = decide(
        behind_forwarded,
        {"article": RFERL},
        headers={**forwarded, "X-Forwarded-For": "77.88.8.8"},  # the reader's own XFF: not believed
        environ_base=via_proxy,
    )
    assert (body["reader"]["subdivision"], body["reader"]["source"]) == ("RU-MOW", "geoip")
    body = decide(client, {"article": RFERL}, headers={"CF-IPCountry": "RU"}, environ_base=via_proxy)
    assert (body["reader"]["country"], body["reader"]["source"]) == ("RU", "header")
    body = decide(
        client, {"article": RFERL}, headers={"CF-IPCountry": "RU"}, environ_base={"REMOTE_ADDR": "8.8.8.8"}
    )
    assert (body["reader"]["country"], body["reader"]["source"]) == ("US", "geoip")


def test_explain_says_why_and_is_not_logged(client: FlaskClient, logged: list[Answered]) -> None:
    response = client.post(
        "/v1/explain",
        json={"article": RFERL, "reader": {"country": "RU", "subdivision": "UA-43"}},
    )
    assert response.status_code == 200 and response.get_json()["what_if"] is False
    body = response.get_json()
    assert [n["id"] for n in body["notices"]] == [NOTICE]
    (verdict,) = body["rules"]
    assert verdict["applies"] is True
    reader_check = next(c for c in verdict["checks"] if c["condition"] == "reader")
    assert reader_check["held"] is True
    assert "in region russia-controlled-ukraine > subdivision UA-43" in reader_check["detail"]
    assert logged == []


def test_explain_validates_like_decisions(client: FlaskClient) -> None:
    response = client.post("/v1/explain", json={"article": {}})
    assert (
        response.status_code == 422 and response.get_json()["errors"][0]["location"] == "/article/publisher"
    )


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (
            b'{"article": {"publisher": "rferl", "publisher": "other"}}',
            400,
            "the key 'publisher' appears twice",
        ),
        (
            b'{"article": {"publisher": "rferl"}, "reader": {"country": "RU", "country": "US"}}',
            400,
            "the key 'country' appears twice",
        ),
        (
            b'{"article": {"publisher": "rferl"}, "article": {"publisher": "x"}}',
            400,
            "'article' appears twice",
        ),
        (b'\xef\xbb\xbf{"article": {"publisher": "rferl"}}', 400, "the body is not valid JSON"),
        (b'{"article": {"publisher": "rf\x01rl"}}', 400, "the body is not valid JSON"),
        (b'{"article": {"publisher": "rferl"}, "at": NaN}', 400, "NaN is not a JSON number"),
        (b'{"article": {"publisher": "rferl", "id": NaN}}', 400, "NaN is not a JSON number"),
        (b'{"article": {"publisher": "rferl"}, "x": Infinity}', 400, "Infinity is not a JSON number"),
        (b'{"article": {"publisher": "rf\xffrl"}}', 400, "the body is not UTF-8 (byte 29)"),
        (b'{"article": {"publisher": "rferl"},}', 400, "the body is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nests too deeply"),
        (b'"just a string"', 422, "expected a JSON object"),
        (b'{"article": {"publisher": "rferl"}, "at": 1e999}', 422, "not a number"),
        (b'{"article": {"publisher": "rferl", "tags": [[["deep"]]]}}', 422, "/article/tags/0"),
        (b'{"article": {"publisher": "' + b"x" * 101 + b'"}}', 422, "/article/publisher"),
        (b'{"article": {"publisher": "rferl", "tags": [' + b'"t",' * 100 + b'"t"]}}', 422, "/article/tags"),
        (b'{"article": {"publisher": "rferl"}, "reader": {"ip": "010.1.1.1"}}', 422, "is not an IP address"),
        (
            b'{"article": {"publisher": "rferl"}, "reader": {"ip": "fe80::1%eth0"}}',
            422,
            "is not an IP address",
        ),
        (b'{"article": {"publisher": "rferl"}, "reader": {"country": "rus"}}', 422, "alpha-2 is 'RU'"),
        (b'{"article": {"publisher": "rferl"}, "reader": {"country": "R"}}', 422, "unknown country code 'R'"),
    ],
)
def test_hostile_bodies_get_a_precise_4xx(client: FlaskClient, body: bytes, status: int, says: str) -> None:
    response = client.post("/v1/decisions", data=body, content_type="application/json")
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert says in response.get_data(as_text=True)


def test_lower_case_codes_are_accepted(client: FlaskClient) -> None:
    body = decide(client, {"article": RFERL, "reader": {"country": "ru", "subdivision": "ua-43"}})
    assert (body["reader"]["country"], body["reader"]["subdivision"]) == ("RU", "UA-43")


def test_head_of_the_browser_form_decides_nothing(client: FlaskClient, logged: list[Answered]) -> None:
    assert client.head("/v1/decisions?publisher=rferl").status_code == 200
    assert logged == []


def test_a_made_up_method_does_not_grow_the_metrics(client: FlaskClient) -> None:
    for n in range(20):
        assert client.open("/v1/decisions", method=f"BREW{n}").status_code == 405
    text = client.get("/metrics").get_data(as_text=True)
    assert "BREW" not in text
    count = 'herald_request_duration_seconds_count{endpoint="unmatched",method="other",status="405"}'
    assert f"{count} 20.0" in text

