"""What operators see and who may see it: the audit disk in /readyz and /metrics, server paths only to
operators' keys, /metrics behind a key, and a reload endpoint that refuses cross-site form posts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from service.audit.files import log_files
from service.audit.usage import UsageMeter
from service.cli import main
from service.config import Settings
from service.keys import add_key, read_keys
from service.web import create_app
from service.web.runtime import runtime
from tests.audit_support import Clock
from tests.conftest import NOW, RULES

RU = {"article": {"publisher": "rferl"}, "reader": {"country": "RU"}}


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logging_app(settings: Settings) -> Iterator[Callable[..., Flask]]:
    """Apps that write a real audit log, stopped at the end."""
    apps: list[Flask] = []

    def make(**changes: Any) -> Flask:
        apps.append(create_app(settings.model_copy(update=changes), clock=Clock(NOW)))
        return apps[-1]

    yield make
    for app in apps:
        runtime(app).audit.stopped()


def test_readyz_and_metrics_show_the_audit_disk_and_its_growth(logging_app: Callable[..., Flask]) -> None:
    app = logging_app()
    rt = runtime(app)
    monotonic = Monotonic()
    rt.usage = UsageMeter(rt.settings.audit_dir, clock=monotonic, wall=rt.clock)
    client = app.test_client()
    before = client.get("/readyz").get_json()["audit"]
    assert before["free_bytes"] > 0 and before["bytes_per_minute"] is None  # nothing to compare with yet
    size = sum(p.stat().st_size for p in log_files([rt.settings.audit_dir]))
    for _ in range(20):
        client.post("/v1/decisions", json=RU)
    grown = sum(p.stat().st_size for p in log_files([rt.settings.audit_dir])) - size
    monotonic.now += 30  # 20 records in half a minute
    audit = client.get("/readyz").get_json()["audit"]
    assert audit["bytes_per_minute"] == 2 * grown and audit["low"] is False
    assert audit["min_free_bytes"] == 1024 * 1024 * 1024 and audit["minutes_left"] > 0
    monotonic.now += 2
    metrics = client.get("/metrics").get_data(as_text=True)
    assert (
        "herald_audit_disk_free_bytes " in metrics
        and "herald_audit_disk_min_free_bytes 1.073741824e+09" in metrics
    )
    rate = next(line for line in metrics.splitlines() if line.startswith("herald_audit_bytes_per_minute "))
    assert 0 < float(rate.split()[1]) < 2 * grown  # the same bytes over a little more time


def test_low_audit_disk_is_a_warning_before_it_is_full(logging_app: Callable[..., Flask]) -> None:
    app = logging_app(audit_min_free_mb=1 << 40)  # more than any disk: always "low"
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "degraded" and body["audit"]["low"] is True
    (reason,) = body["reasons"]
    assert reason.startswith("audit disk low: ") and "under HERALD_AUDIT_MIN_FREE_MB=1099511627776" in reason


def test_no_threshold_no_warning(logging_app: Callable[..., Flask]) -> None:
    body = logging_app(audit_min_free_mb=0).test_client().get("/readyz").get_json()
    assert body["status"] == "ready" and body["audit"]["low"] is False


# ---- paths and keys -------------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "keys.json"
    return {
        "path": str(path),
        "scraper": add_key(path, "prometheus", {"metrics"}),
        "auditor": add_key(path, "counsel", {"audit"}),
        "publisher": add_key(path, "site", {"decide"}),
    }


@pytest.fixture
def broken(settings: Settings, tmp_path: Path, keys: dict[str, str]) -> Iterator[Flask]:
    """An app whose rules directory (an absolute path) then holds a change that does not load."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    update = {"rules_dir": rules.resolve(), "keys_file": Path(keys["path"]), "reload_interval": 0}
    app = create_app(settings.model_copy(update=update), clock=Clock(NOW))
    policy = rules / "policies" / "rferl.yaml"
    policy.write_text(policy.read_text().replace("regions: [russia,", "regions: [rusia,"))
    reloader = runtime(app).reloader
    assert reloader is not None and reloader.check(force=True).status == "rejected"
    yield app
    runtime(app).audit.stopped()


def readyz(client: FlaskClient, key: str | None) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = client.get("/readyz", headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("who", [None, "publisher", "wrong"])
def test_readyz_shows_no_paths_without_an_operators_key(
    broken: Flask, keys: dict[str, str], tmp_path: Path, who: str | None
) -> None:
    text = readyz(broken.test_client(), keys.get(who or "", "hk_wrong") if who else None)
    assert str(tmp_path.resolve()) not in text and str(tmp_path) not in text
    body = json.loads(text)
    assert body["rejected"]["errors"][0].startswith("$HERALD_RULES_DIR/policies/rferl.yaml:")
    assert body["geoip"]["path"] == "$HERALD_GEOIP_DB"
    headers = {"Authorization": f"Bearer {keys[who]}"} if who in keys else {}
    ruleset = broken.test_client().get("/v1/ruleset", headers=headers).get_data(as_text=True)
    assert str(tmp_path) not in ruleset and "$HERALD_RULES_DIR/policies/rferl.yaml:" in ruleset


@pytest.mark.parametrize("who", ["scraper", "auditor"])
def test_readyz_shows_paths_to_an_operator(
    broken: Flask, keys: dict[str, str], tmp_path: Path, who: str
) -> None:
    body = json.loads(readyz(broken.test_client(), keys[who]))
    assert body["rejected"]["errors"][0].startswith(str(tmp_path.resolve() / "rules" / "policies"))


def test_a_missing_geoip_database_is_named_by_its_setting(
    make_app: Callable[..., Flask], settings: Settings, tmp_path: Path
) -> None:
    app = make_app(settings.model_copy(update={"geoip_db": tmp_path / "gone" / "City.mmdb"}))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and str(tmp_path) not in response.get_data(as_text=True)
    assert "$HERALD_GEOIP_DB" in response.get_json()["reasons"][0]


# ---- the reload endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": "x=1", "content_type": "application/x-www-form-urlencoded"}, 415),  # a cross-site <form>
        ({"data": "{}", "content_type": "text/plain"}, 415),  # fetch(…, {mode: "no-cors"})
        ({"data": {"x": "1"}}, 415),  # multipart
        ({}, 415),  # no body, no type
        ({"json": {}}, 200),
        ({"data": "", "content_type": "application/json"}, 200),
        ({"json": {"force": True}}, 422),
        ({"data": "{", "content_type": "application/json"}, 400),
    ],
)
def test_the_reload_endpoint_takes_only_json(
    make_app: Callable[..., Flask], settings: Settings, kwargs: dict[str, Any], status: int
) -> None:
    client = make_app(settings.model_copy(update={"admin_http": True})).test_client()
    response = client.post("/v1/ruleset/reload", **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    if status != 200:
        assert response.mimetype == "application/problem+json"


def test_herald_keys_add_knows_the_metrics_role(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    result = CliRunner().invoke(main, ["keys", "add", "prometheus", "--role", "metrics", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert [(k.name, set(k.roles)) for k in read_keys(path)] == [("prometheus", {"metrics"})]
