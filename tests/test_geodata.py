"""GeoIP data in a running app: replaced files taken, bad ones refused, staleness and anonymizers shown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.config import Settings, load_settings
from service.web.runtime import runtime
from tests.conftest import NOW
from tests.maxmind_data import data_dir
from tests.mmdb import DEFAULT_NETWORKS, build_city_db, city

RFERL = {"publisher": "rferl"}
FRESH = int(datetime(2025, 5, 20, tzinfo=UTC).timestamp())  # 12 days before the tests' NOW
# 2026-like data: Kerch's block moved to CZ, a Kherson block lost its subdivision.
MOVED = [
    ("5.59.104.0/24", city("CZ")),
    ("37.53.184.0/24", city("UA")),
    *(network for network in DEFAULT_NETWORKS if network[0] != "5.59.104.0/24"),
]


def where(app: Flask, ip: str) -> tuple[Any, ...]:
    body = app.test_client().post("/v1/decisions", json={"article": RFERL, "reader": {"ip": ip}}).get_json()
    reader = body["reader"]
    return reader["country"], reader["subdivision"], [n["id"] for n in body["notices"]]


def replace(watched: Path, build: Callable[[Path], Any]) -> None:
    """As geoipupdate does: write a new file beside the old one, rename it over."""
    fresh = watched.with_name(watched.name + ".new")
    build(fresh)
    fresh.replace(watched)


def test_a_replaced_file_is_taken_without_restart(
    make_app: Callable[..., Flask], settings: Settings, watched: Path
) -> None:
    app = make_app(settings.model_copy(update={"geoip_db": watched}))
    assert where(app, "5.59.104.1") == ("UA", "UA-43", ["rferl-undesirable"])
    follower = runtime(app).geo_follower
    assert follower is not None and follower.check() is False  # nothing changed yet
    replace(watched, lambda path: build_city_db(path, MOVED, build_epoch=FRESH))
    assert follower.check() is True
    assert where(app, "5.59.104.1") == ("CZ", None, [])
    assert where(app, "37.53.184.1") == ("UA", None, ["rferl-undesirable"])  # possibly occupied
    ready = app.test_client().get("/readyz").get_json()
    assert ready["geoip"]["build_date"] == "2025-05-20T00:00:00+00:00"
    assert ready["geoip"]["age_days"] == 12.5
    assert ready["warnings"] == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"not a database at all"),
        lambda path: path.write_bytes(
            Path(data_dir() / "test-data" / "GeoIP2-Country-Test.mmdb").read_bytes()
        ),
        lambda path: path.write_bytes(b""),
    ],
    ids=["garbage", "a Country database", "empty"],
)
def test_a_bad_replacement_is_refused_and_the_old_data_keeps_serving(
    damage: Callable[[Path], Any], make_app: Callable[..., Flask], settings: Settings, watched: Path
) -> None:
    app = make_app(settings.model_copy(update={"geoip_db": watched}))
    follower = runtime(app).geo_follower
    assert follower is not None
    replace(watched, damage)
    follower.check()
    assert where(app, "5.59.104.1") == ("UA", "UA-43", ["rferl-undesirable"])
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "ready"
    # Named by its setting: no paths of the server's disk to callers without a key (see test_operations).
    assert body["geoip_refused"]["city"]["error"].startswith("GeoIP database $HERALD_GEOIP_DB ")
    assert any(w.startswith("new GeoIP city data refused at 2025-06-01T12:00:00") for w in body["warnings"])
    assert 'herald_geoip_files_refused{kind="city"} 1.0' in client.get("/metrics").get_data(as_text=True)


def test_a_removed_file_is_refused_too(
    make_app: Callable[..., Flask], settings: Settings, watched: Path
) -> None:
    app = make_app(settings.model_copy(update={"geoip_db": watched}))
    watched.unlink()
    follower = runtime(app).geo_follower
    assert follower is not None and follower.check()
    assert where(app, "5.59.104.1") == ("UA", "UA-43", ["rferl-undesirable"])
    assert "does not exist" in app.test_client().get("/readyz").get_json()["geoip_refused"]["city"]["error"]


@pytest.mark.parametrize(
    ("build_epoch", "max_age", "warned"),
    [
        (FRESH, 35.0, False),
        (FRESH, 10.0, True),
        (int(datetime(2019, 12, 24, tzinfo=UTC).timestamp()), 35.0, True),
    ],
)
def test_stale_data_is_a_warning_not_unready(
    build_epoch: int,
    max_age: float,
    warned: bool,
    make_app: Callable[..., Flask],
    settings: Settings,
    tmp_path: Path,
) -> None:
    path = build_city_db(tmp_path / "City.mmdb", build_epoch=build_epoch)
    app = make_app(settings.model_copy(update={"geoip_db": path, "geoip_max_age_days": max_age}))
    response = app.test_client().get("/readyz")
    assert (response.status_code, response.get_json()["status"]) == (200, "ready")
    warnings = response.get_json()["warnings"]
    assert bool(warnings) is warned
    if warned:
        age = (NOW - datetime.fromtimestamp(build_epoch, UTC)).days
        assert (
            warnings[0].startswith("GeoIP data is stale: GeoLite2-City built ")
            and f"{age} days ago" in warnings[0]
        )


def test_the_embedded_data_is_always_reported_as_stale_demo_data(
    make_app: Callable[..., Flask], settings: Settings
) -> None:
    app = make_app(settings.model_copy(update={"geoip_db": None}))
    warnings = app.test_client().get("/readyz").get_json()["warnings"]
    assert warnings == [
        "GeoIP data is stale: built 2019-12-24, 1986 days ago, the embedded demo data (set HERALD_GEOIP_DB)"
    ]


def test_the_data_age_is_in_metrics(make_app: Callable[..., Flask], settings: Settings) -> None:
    text = make_app(settings).test_client().get("/metrics").get_data(as_text=True)
    assert 'herald_geoip_build_timestamp_seconds{kind="city"} 1.5771456e+09' in text
    assert 'herald_geoip_age_days{kind="city"} 1986.5' in text


def test_the_anonymous_ip_database_anonymizes_with_kinds(
    make_app: Callable[..., Flask], settings: Settings
) -> None:
    anonymous = data_dir() / "test-data" / "GeoIP2-Anonymous-IP-Test.mmdb"
    app = make_app(settings.model_copy(update={"anonymous_ip_db": anonymous}))
    body = (
        app.test_client()
        .post("/v1/decisions", json={"article": RFERL, "reader": {"ip": "81.2.69.142"}})
        .get_json()
    )
    reader = body["reader"]
    assert (reader["country"], reader["subdivision"], reader["anonymized"]) == ("GB", "GB-ENG", True)
    assert reader["anonymizers"] == ["vpn", "public_proxy", "residential_proxy", "tor", "hosting_provider"]
    assert [n["id"] for n in body["notices"]] == ["rferl-undesirable"]  # the rule shows to anonymized readers
    ready = app.test_client().get("/readyz").get_json()
    assert ready["anonymous_ip"]["type"] == "GeoIP2-Anonymous-IP"


def test_an_anonymous_ip_setting_naming_a_city_database_is_refused_and_named(
    make_app: Callable[..., Flask], settings: Settings, city_db: Path
) -> None:
    app = make_app(settings.model_copy(update={"anonymous_ip_db": city_db}))
    body = app.test_client().get("/readyz").get_json()
    assert body["anonymous_ip"] is None
    assert (
        "an Anonymous IP database (GeoIP2-Anonymous-IP) is needed"
        in body["geoip_refused"]["anonymous-ip"]["error"]
    )


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_geoip_setting_means_the_default(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_GEOIP_DB", value)
    monkeypatch.setenv("HERALD_ANONYMOUS_IP_DB", value)
    settings = load_settings()
    assert (settings.geoip_db, settings.anonymous_ip_db) == (None, None)


def test_stale_subdivision_codes_are_counted_in_readyz(
    make_app: Callable[..., Flask], settings: Settings
) -> None:
    app = make_app(settings)
    assert where(app, "41.0.1.1") == ("ZA", None, [])  # ZA-QQ: neither ISO nor an alias
    assert where(app, "41.0.0.1")[:2] == ("ZA", "ZA-GP")  # ZA-GT: an alias, not stale
    assert app.test_client().get("/readyz").get_json()["geoip"]["stale_subdivisions"] == 1
