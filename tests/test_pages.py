"""The widget's file, CORS and cache headers, the editors' preview and the auditors' dashboard
through Flask's test client, on the bundled rules."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.audit.files import log_files
from service.audit.summary import Key, Row
from service.config import Settings, SettingsError, load_settings
from service.web import chart, create_app
from service.web.runtime import Answered, runtime

RFERL = {"publisher": "rferl"}
ORIGIN = "https://www.rferl.org"


# ---- widget.js --------------------------------------------------------------------------------


def test_widget_is_served_as_a_cacheable_script(client: FlaskClient) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=300" and response.headers["ETag"]
    assert client.get("/widget.js", headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    script = response.get_data(as_text=True)
    assert "[data-herald-publisher]" in script and "window.Herald" in script
    assert "import " not in script and "require(" not in script  # no module system, no dependencies
    assert "Access-Control-Allow-Origin" not in response.headers


# ---- CORS and cache headers on the decision endpoints -----------------------------------------


def cors_client(make_app: Callable[..., Flask], settings: Settings, origins: str, **more: str) -> FlaskClient:
    """An app on `settings` with these settings given as the environment gives them (text)."""
    raw = {"allowed_origins": origins, **more}
    parsed = Settings(**raw)  # type: ignore[arg-type]
    return make_app(settings.model_copy(update={k: getattr(parsed, k) for k in raw})).test_client()


@pytest.mark.parametrize(
    ("origins", "origin", "allowed"),
    [
        ("", ORIGIN, None),  # default: no CORS headers at all
        (ORIGIN, ORIGIN, ORIGIN),
        (ORIGIN, "https://evil.example", None),
        (ORIGIN, None, None),  # same origin or a server: nothing to say
        ("https://a.example, https://www.rferl.org", ORIGIN, ORIGIN),
        ("*", "https://anyone.example", "*"),
    ],
)
def test_cors_allows_the_configured_origins(
    make_app: Callable[..., Flask], settings: Settings, origins: str, origin: str | None, allowed: str | None
) -> None:
    client = cors_client(make_app, settings, origins)
    headers = {"Origin": origin} if origin else {}
    answers = [
        client.get("/v1/decisions?publisher=rferl", headers=headers),
        client.post("/v1/decisions", json={"article": RFERL}, headers=headers),
        client.post("/v1/decisions/batch", json={"articles": [RFERL]}, headers=headers),
        client.get("/v1/decisions?publisher=RFERL!", headers=headers),  # errors too, so the widget reads them
    ]
    assert [a.headers.get("Access-Control-Allow-Origin") for a in answers] == [allowed] * 4
    assert "Origin" in answers[0].vary


@pytest.mark.parametrize(
    ("path", "methods"), [("/v1/decisions", "GET, POST"), ("/v1/decisions/batch", "POST")]
)
def test_a_preflight_from_an_allowed_origin(
    make_app: Callable[..., Flask], settings: Settings, path: str, methods: str
) -> None:
    client = cors_client(make_app, settings, ORIGIN)
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    response = client.options(path, headers={"Origin": ORIGIN, **asked})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == methods
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Cache-Control" not in response.headers
    refused = client.options(path, headers={"Origin": "https://evil.example", **asked})
    assert "Access-Control-Allow-Origin" not in refused.headers


@pytest.mark.parametrize("path", ["/v1/explain", "/v1/ruleset", "/preview", "/widget.js"])
def test_cors_is_for_the_decision_endpoints_only(
    make_app: Callable[..., Flask], settings: Settings, path: str
) -> None:
    client = cors_client(make_app, settings, "*")
    preflight = client.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    answer = client.get(path, headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "private" not in answer.headers.get("Cache-Control", "")


def test_cache_headers_suit_a_per_reader_answer(make_app: Callable[..., Flask], settings: Settings) -> None:
    client = cors_client(make_app, settings, "", country_header="CF-IPCountry")
    got = client.get("/v1/decisions?publisher=rferl")
    assert got.headers["Cache-Control"] == "private, max-age=60"
    assert list(got.vary) == ["Accept-Language", "X-Forwarded-For", "CF-IPCountry", "Origin"]
    posted = client.post("/v1/decisions", json={"article": RFERL})
    batch = client.post("/v1/decisions/batch", json={"articles": [RFERL]})
    error = client.get("/v1/decisions?publisher=rferl&tag=x")
    assert error.status_code == 400
    assert [r.headers["Cache-Control"] for r in (posted, batch, error)] == ["no-store"] * 3
    plain = cors_client(make_app, settings, "").get("/v1/decisions?publisher=rferl")
    assert list(plain.vary) == ["Accept-Language", "X-Forwarded-For", "Origin"]


def test_the_batch_takes_the_callers_own_address_when_no_reader_is_given(
    make_app: Callable[..., Flask], settings: Settings
) -> None:
    """The widget's batch names no reader: Herald locates the browser, through a trusted proxy."""
    client = cors_client(make_app, settings, "", trusted_proxies="127.0.0.1")
    body = {"articles": [RFERL, {"publisher": "example-news"}]}
    answer = client.post(
        "/v1/decisions/batch", json=body, headers={"X-Forwarded-For": "77.88.8.8", "Accept-Language": "ru"}
    ).get_json()
    assert answer["reader"] == {
        "country": "RU",
        "subdivision": None,
        "source": "geoip",
        "anonymized": False,
        "anonymizers": [],
        "said": [
            {"source": "geoip", "country": "RU", "subdivision": None, "data": "GeoLite2-City 2019-12-24"}
        ],
    }
    assert [[(n["id"], n["language"]) for n in d["notices"]] for d in answer["decisions"]] == [
        [("rferl-undesirable", "ru")],
        [],
    ]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("", ()),
        ("https://WWW.rferl.org/", ("https://www.rferl.org",)),
        (
            "https://www.rferl.org:443, http://localhost:8000",
            ("https://www.rferl.org", "http://localhost:8000"),
        ),
        ("http://127.0.0.1:80 http://[::1]:8080", ("http://127.0.0.1", "http://[::1]:8080")),
        ("*", ("*",)),
        ("https://a.example,https://a.example", ("https://a.example",)),
    ],
)
def test_allowed_origins_are_read_as_browsers_send_them(
    monkeypatch: pytest.MonkeyPatch, value: str, parsed: tuple[str, ...]
) -> None:
    monkeypatch.setenv("HERALD_ALLOWED_ORIGINS", value)
    assert load_settings().allowed_origins == parsed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("www.rferl.org", "HERALD_ALLOWED_ORIGINS: 'www.rferl.org' is not an origin"),
        ("https://www.rferl.org/news", "'https://www.rferl.org/news' is not an origin"),
        ("ftp://files.example", "is not an origin"),
        ("*, https://a.example", "HERALD_ALLOWED_ORIGINS: * allows every origin: give it alone"),
    ],
)
def test_a_bad_origin_names_the_setting(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("HERALD_ALLOWED_ORIGINS", value)
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings()


# ---- the editors' preview ---------------------------------------------------------------------


def embedded(response: TestResponse) -> dict[str, Any]:
    """The decision the preview hands to widget.js."""
    page = response.get_data(as_text=True)
    match = re.search(r'<script type="application/json" id="herald-decision">(.*?)</script>', page)
    assert match is not None, page
    return dict(json.loads(match.group(1)))


def test_the_preview_form_alone(client: FlaskClient) -> None:
    response = client.get("/preview")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert '<form method="get" action="/preview"' in page and 'name="publisher"' in page
    assert '<option value="rferl"' in page and '<option value="UA-43"' in page  # what the rules name
    assert "herald-decision" not in page and "/widget.js" not in page
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_preview_shows_what_explain_answers(client: FlaskClient, logged: list[Answered]) -> None:
    query = "publisher=rferl&section=news&tags=russia,+kosovo&country=UA&subdivision=UA-43&languages=uk,+ru"
    response = client.get("/preview?" + query)
    assert response.status_code == 200
    body = {
        "article": {"publisher": "rferl", "section": "news", "tags": ["russia", "kosovo"]},
        "reader": {"country": "UA", "subdivision": "UA-43", "languages": ["uk", "ru"]},
    }
    explained = client.post("/v1/explain", json=body).get_json()
    assert embedded(response) == explained | {"languages": ["uk", "ru"]}
    page = response.get_data(as_text=True)
    assert '<script src="/widget.js"></script>' in page  # the widget renders the notices
    assert 'data-rule="rferl-undesirable-russia"' in page and "✓ applies" in page
    assert "in region russia-controlled-ukraine &gt; subdivision UA-43" in page
    assert logged == []  # a preview is not a page view


def test_the_preview_says_a_reader_known_only_as_ukraine_is_possibly_in_the_region(
    client: FlaskClient,
) -> None:
    response = client.get("/preview?publisher=rferl&country=UA")
    assert response.status_code == 200
    assert [n["id"] for n in embedded(response)["notices"]] == ["rferl-undesirable"]
    assert (
        "possibly in region russia-controlled-ukraine (subdivision unknown in UA), "
        "and the rule shows to unknown locations" in response.get_data(as_text=True)
    )


@pytest.mark.parametrize(
    ("query", "where", "notices"),
    [
        ("", (None, None, "unknown"), ["rferl-undesirable"]),  # not the editor's own address
        ("&ip=77.88.8.8", ("RU", None, "geoip"), ["rferl-undesirable"]),
        ("&ip=8.8.8.8", ("US", None, "geoip"), []),
        ("&country=US&at=2024-01-01T00:00", ("US", None, "explicit"), []),
        ("&country=RU&at=2024-01-01T00:00", ("RU", None, "explicit"), []),  # before the rule took effect
        ("&country=RU&at=2024-02-20", ("RU", None, "explicit"), ["rferl-undesirable"]),
    ],
)
def test_the_preview_reader(
    client: FlaskClient, query: str, where: tuple[Any, ...], notices: list[str]
) -> None:
    decision = embedded(client.get("/preview?publisher=rferl" + query, headers={"Accept-Language": "de"}))
    reader = decision["reader"]
    assert (reader["country"], reader["subdivision"], reader["source"]) == where
    assert [n["id"] for n in decision["notices"]] == notices
    assert decision["languages"] == []  # the editor's browser does not count


def test_the_preview_names_the_bad_fields(client: FlaskClient) -> None:
    response = client.get("/preview?publisher=rferl&country=RUS&languages=en_GB&at=yesterday")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "unknown country code &#39;RUS&#39;; ISO 3166-1 alpha-2 is &#39;RU&#39;" in page
    for name in ("country", "languages", "at"):
        assert re.search(rf'id="f-{name}"[^>]*aria-invalid="true"', page), name
    assert "herald-decision" not in page


# ---- the auditors' dashboard ------------------------------------------------------------------

READERS = [{"ip": "77.88.8.8"}, {"country": "RU"}, {"ip": "8.8.8.8"}, {"subdivision": "UA-43"}, {}]


@pytest.fixture
def audited(settings: Settings) -> Iterator[tuple[FlaskClient, list[str]]]:
    """An app that writes a real audit log, after five decisions."""
    app = create_app(settings.model_copy(update={"audit_http": True}))
    client = app.test_client()
    ids = [
        client.post("/v1/decisions", json={"article": RFERL, "reader": reader}).get_json()["decision_id"]
        for reader in READERS
    ]
    # A what-if (an instant asked for) is logged but is no page view: the counts leave it out.
    what_if = {"article": RFERL, "reader": {"country": "RU"}, "at": "2100-01-01"}
    assert client.post("/v1/decisions", json=what_if).get_json()["what_if"] is True
    yield client, ids
    runtime(app).audit.stopped()


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_the_dashboard_is_off_unless_audit_http(client: FlaskClient) -> None:
    assert client.get("/audit").status_code == 404
    assert "Auditors' dashboard" not in client.get("/preview").get_data(as_text=True)


def test_the_dashboard_charts_and_counts(audited: tuple[FlaskClient, list[str]]) -> None:
    client, _ = audited
    response = client.get(f"/audit?first={today()}&last={today()}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    bars = re.findall(r'<g class="bar" data-day="([\d-]+)" data-series="(\w+)" data-total="(\d+)"', page)
    assert bars == [(today(), "decisions", "5"), (today(), "notices", "4")]
    segments = re.findall(r'<rect class="segment" data-country="(\w+)" data-value="(\d+)"', page)
    assert segments == [
        *[("RU", "2"), ("UA", "1"), ("US", "1"), ("unknown", "1")],  # decisions, most first, then by name
        *[("RU", "2"), ("UA", "1"), ("unknown", "1")],  # notices shown
    ]
    assert "5 page views,\n      4 notices shown" in page
    assert "The log: intact" in page and "<script" not in page  # drawn on the server
    days = f"first={today()}&last={today()}"
    with_what_ifs = client.get(f"/audit?{days}&what_if=include").get_data(as_text=True)
    assert "6 decisions (page views and what-ifs),\n      5 notices shown" in with_what_ifs
    only = client.get(f"/audit?{days}&what_if=only").get_data(as_text=True)
    assert "1 what-if decisions,\n      1 notices shown" in only
    # By the instant decided for, the what-if is in 2100, and a page view is on the day it was logged.
    future = client.get("/audit?first=2100-01-01&last=2100-01-01&what_if=include&by=decided")
    assert "1 decisions (page views and what-ifs)" in future.get_data(as_text=True)


def test_the_dashboard_looks_a_decision_up(audited: tuple[FlaskClient, list[str]]) -> None:
    client, ids = audited
    page = client.get(f"/audit?decision={ids[3]}").get_data(as_text=True)
    assert "Replay on the rules then in force: <strong>same</strong>" in page
    assert "in region russia-controlled-ukraine &gt; subdivision UA-43" in page
    missing = client.get("/audit?decision=0190d5d0-0000-7000-8000-000000000000")
    assert missing.status_code == 404 and "is not in the audit log" in missing.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("first=yesterday", "first: &#39;yesterday&#39; is not a date"),
        ("first=2025-06-02&last=2025-06-01", "the first day (2025-06-02) is after the last (2025-06-01)"),
        ("first=2020-01-01&last=2025-06-01", "at most 366 days at once"),
        ("last=9999-12-31", "last: &#39;9999-12-31&#39; is outside 2000-01-01..9000-01-01"),
        ("first=0001-01-03", "first: &#39;0001-01-03&#39; is outside 2000-01-01..9000-01-01"),
        ("what_if=maybe", "what_if: &#39;maybe&#39; is not one of exclude, include, only"),
        ("by=written", "by: &#39;written&#39; is not one of logged, decided"),
        ("colour=red", "unknown parameter &#39;colour&#39;"),
    ],
)
def test_the_dashboard_says_what_is_wrong_with_the_range(
    audited: tuple[FlaskClient, list[str]], query: str, message: str
) -> None:
    client, _ = audited
    response = client.get("/audit?" + query)
    assert response.status_code == 400 and message in response.get_data(as_text=True)


@pytest.mark.parametrize("decision", ["ffffffff-ffff-7fff-bfff-ffffffffffff", "not-an-id", "0" * 36])
def test_looking_up_an_impossible_decision_id_is_a_404(
    audited: tuple[FlaskClient, list[str]], decision: str
) -> None:
    client, _ = audited
    assert client.get(f"/audit?decision={decision}").status_code == 404
    assert client.get(f"/v1/audit/decisions/{decision}").status_code == 404


def test_the_dashboard_shows_a_tampered_log(
    audited: tuple[FlaskClient, list[str]], settings: Settings
) -> None:
    client, _ = audited
    (path,) = log_files([settings.audit_dir])
    path.write_bytes(path.read_bytes().replace(b'"country":"US"', b'"country":"CA"'))
    page = client.get("/audit").get_data(as_text=True)
    assert "The log: NOT INTACT" in page and "<strong>modified</strong>" in page and path.name in page


# ---- the chart's geometry ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "top", "step"), [(0, 4, 1), (1, 1, 1), (3, 3, 1), (7, 8, 2), (23, 30, 10), (100, 100, 50)]
)
def test_the_axis_ends_on_a_round_number(value: int, top: int, step: int) -> None:
    assert chart.nice_ceiling(value) == (top, step)


def test_the_chart_stacks_countries_and_greys_out_the_rest() -> None:
    countries = ["RU", "UA", "US", "DE", "FR", "GB", "PL", "LT", "LV"]
    rows: dict[Key, Row] = {
        ("2025-06-01", c, None): Row(decisions=10 - i, notices=Counter({"n": 1} if c == "RU" else {}))
        for i, c in enumerate(countries)
    }
    rows[("2025-06-03", None, None)] = Row(decisions=1)
    drawn = chart.build(rows, chart.days_between(*(datetime(2025, 6, d).date() for d in (1, 3))))
    assert [(b.day, b.series, b.total) for b in drawn.bars] == [
        ("2025-06-01", "decisions", sum(range(2, 11))),
        ("2025-06-01", "notices", 1),
        ("2025-06-03", "decisions", 1),
    ]
    first = drawn.bars[0]
    assert [s.country for s in first.segments] == ["RU", "UA", "US", "DE", "FR", "GB", "other"]
    assert first.segments[-1].value == 2 + 3 + 4 and first.segments[-1].colour == chart.OTHER_COLOUR
    assert [c for _, c in drawn.legend] == ["RU", "UA", "US", "DE", "FR", "GB", "other"]
    assert drawn.bars[2].segments[0].country == "other"  # unknown has the fewest: it shares the grey
    bottom = drawn.plot[3]
    for bar in drawn.bars:  # stacked from the axis up, without gaps
        floors = [bottom, *(s.y for s in bar.segments[:-1])]
        assert all(abs(s.y + s.height - floor) < 0.02 for s, floor in zip(bar.segments, floors, strict=True))
    assert drawn.ticks[0] == (bottom, 0) and drawn.ticks[-1][1] >= first.total
