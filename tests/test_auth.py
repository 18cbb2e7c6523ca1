"""API keys and roles: who may call what, and what a refusal looks like."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from service.cli import main
from service.config import Settings
from service.keys import KeyStore, add_key, read_keys

RFERL = {"article": {"publisher": "rferl"}, "reader": {"country": "RU"}}


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "keys.json"
    return {
        "path": str(path),
        "auditor": add_key(path, "auditor", {"audit"}),
        "admin": add_key(path, "ops", {"admin"}),
        "publisher": add_key(path, "site", {"decide"}),
        "scraper": add_key(path, "prometheus", {"metrics"}),
    }


def keyed_client(
    make_app: Callable[..., Flask], settings: Settings, keys: dict[str, str], **extra: object
) -> FlaskClient:
    return make_app(settings.model_copy(update={"keys_file": Path(keys["path"]), **extra})).test_client()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("method", "path", "who", "status"),
    [
        ("get", "/v1/audit/summary?from=2025-01-01&to=2025-01-02", None, 401),
        ("get", "/v1/audit/summary?from=2025-01-01&to=2025-01-02", "wrong", 401),
        ("get", "/v1/audit/summary?from=2025-01-01&to=2025-01-02", "publisher", 403),
        ("get", "/v1/audit/summary?from=2025-01-01&to=2025-01-02", "admin", 403),
        ("get", "/v1/audit/summary?from=2025-01-01&to=2025-01-02", "auditor", 200),
        ("post", "/v1/ruleset/reload", None, 401),
        ("post", "/v1/ruleset/reload", "auditor", 403),
        ("post", "/v1/ruleset/reload", "admin", 200),
        ("post", "/v1/decisions", None, 200),  # decisions stay open by default: browsers call them
        ("get", "/healthz", None, 200),
        ("get", "/metrics", None, 401),  # counts by country and notice: not for anyone
        ("get", "/metrics", "publisher", 403),
        ("get", "/metrics", "admin", 403),
        ("get", "/metrics", "scraper", 200),
        ("get", "/metrics", "auditor", 200),
        ("get", "/v1/audit/summary", "scraper", 403),
    ],
)
def test_roles(
    make_app: Callable[..., Flask],
    settings: Settings,
    keys: dict[str, str],
    method: str,
    path: str,
    who: str | None,
    status: int,
) -> None:
    client = keyed_client(make_app, settings, keys)
    headers = bearer(keys.get(who, "hk_not-a-key")) if who else {}
    kwargs = {"json": RFERL if path == "/v1/decisions" else {}} if method == "post" else {}
    response = getattr(client, method)(path, headers=headers, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    if status in (401, 403):
        assert response.mimetype == "application/problem+json"
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="herald"'


@pytest.mark.parametrize(("who", "status"), [(None, 401), ("auditor", 403), ("publisher", 200)])
def test_decisions_can_need_a_key(
    make_app: Callable[..., Flask], settings: Settings, keys: dict[str, str], who: str | None, status: int
) -> None:
    client = keyed_client(make_app, settings, keys, decisions_need_key=True)
    headers = bearer(keys[who]) if who else {}
    assert client.post("/v1/decisions", json=RFERL, headers=headers).status_code == status


def test_a_refusal_is_logged_without_the_key(
    make_app: Callable[..., Flask], settings: Settings, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    client = keyed_client(make_app, settings, keys)
    with caplog.at_level(logging.WARNING, logger="herald.auth"):
        client.post("/v1/ruleset/reload", json={}, headers=bearer(keys["auditor"]))
    (record,) = [r for r in caplog.records if r.name == "herald.auth"]
    assert (record.reason, record.role, record.key_name) == ("role missing", "admin", "auditor")  # type: ignore[attr-defined]
    assert keys["auditor"] not in caplog.text
    metrics = client.get("/metrics", headers=bearer(keys["scraper"])).get_data(as_text=True)
    assert 'herald_auth_refused_total{reason="role missing"} 1.0' in metrics


def test_keys_are_stored_as_hashes_and_revocation_takes_effect(keys: dict[str, str]) -> None:
    path = Path(keys["path"])
    text = path.read_text()
    assert all(keys[who] not in text for who in ("auditor", "admin", "publisher"))
    assert path.stat().st_mode & 0o777 == 0o600
    store = KeyStore(path)
    found = store.find(keys["auditor"])
    assert found is not None and found.name == "auditor" and found.roles == {"audit"}
    assert store.find("hk_guess") is None


def test_keys_cli(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    runner = CliRunner()
    added = runner.invoke(
        main, ["keys", "add", "alice", "--role", "audit", "--role", "admin", "--file", str(path)]
    )
    assert added.exit_code == 0
    key = added.stdout.strip()
    assert key.startswith("hk_") and len(key) > 40
    assert "only time the key is shown" in added.stderr
    listed = runner.invoke(main, ["keys", "list", "--file", str(path)])
    assert listed.output == "alice\tadmin,audit\n"
    assert runner.invoke(main, ["keys", "remove", "alice", "--file", str(path)]).exit_code == 0
    assert read_keys(path) == []
    missing = runner.invoke(main, ["keys", "remove", "bob", "--file", str(path)])
    assert missing.exit_code == 1 and "no key named 'bob'" in missing.output
    bad_role = runner.invoke(main, ["keys", "add", "x", "--role", "root", "--file", str(path)])
    assert bad_role.exit_code == 2
    (tmp_path / "broken.json").write_text("{")
    broken = runner.invoke(main, ["keys", "list", "--file", str(tmp_path / "broken.json")])
    assert broken.exit_code == 1 and "not a keys file" in broken.output and "Traceback" not in broken.output
    assert json.loads(path.read_text()) == {"keys": []}


def test_the_dashboard_asks_the_browser_for_the_key(
    make_app: Callable[..., Flask], settings: Settings, keys: dict[str, str]
) -> None:
    import base64

    client = keyed_client(make_app, settings, keys)
    challenge = client.get("/audit")
    assert challenge.status_code == 401 and challenge.headers["WWW-Authenticate"] == 'Basic realm="herald"'
    assert "give it as the password (any user name) when the browser asks" in challenge.get_json()["detail"]
    basic = base64.b64encode(f"anyone:{keys['auditor']}".encode()).decode()
    assert client.get("/audit", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    wrong = base64.b64encode(b"anyone:hk_nope").decode()
    assert client.get("/audit", headers={"Authorization": f"Basic {wrong}"}).status_code == 401


def test_the_preview_needs_a_key_when_decisions_do(
    make_app: Callable[..., Flask], settings: Settings, keys: dict[str, str]
) -> None:
    client = keyed_client(make_app, settings, keys, decisions_need_key=True)
    assert client.get("/preview?publisher=rferl&country=RU").status_code == 401
    assert (
        client.get("/preview?publisher=rferl&country=RU", headers=bearer(keys["publisher"])).status_code
        == 200
    )
    assert client.get("/widget.js").status_code == 200  # browsers fetch the script without a key
