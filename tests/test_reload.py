"""Hot reload: a valid change is swapped in whole, a broken one is never served."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.config import Settings
from service.ruleset import Ruleset
from service.web.runtime import runtime
from tests.conftest import RULES
from tests.live import request, serving, workers_seen

POLICY = Path("policies") / "rferl.yaml"
RUSSIA_ONLY = ("regions: [russia, russia-controlled-ukraine]", "regions: [russia]")
TYPO = ("regions: [russia, russia-controlled-ukraine]", "regions: [rusia]")


class Recorded:
    """The audit events a reload sends, kept in a list."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def ruleset_loaded(self, ruleset: Ruleset, previous: Ruleset | None = None) -> None:
        self.events.append(("ruleset_loaded", (ruleset.hash, previous.hash if previous else None)))

    def ruleset_rejected(self, errors: Sequence[str]) -> None:
        self.events.append(("ruleset_rejected", list(errors)))

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def edit(rules: Path, change: tuple[str, str]) -> None:
    path = rules / POLICY
    path.write_text(path.read_text().replace(*change))


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    shutil.copytree(RULES, tmp_path / "rules")
    return tmp_path / "rules"


@pytest.fixture
def reloading(make_app: Callable[..., Flask], settings: Settings, rules: Path) -> tuple[Flask, Recorded]:
    app = make_app(settings.model_copy(update={"rules_dir": rules, "admin_http": True}))
    recorded = Recorded()
    runtime(app).audit = recorded  # type: ignore[assignment]
    return app, recorded


def crimea(client: FlaskClient) -> dict[str, Any]:
    response = client.post(
        "/v1/decisions", json={"article": {"publisher": "rferl"}, "reader": {"subdivision": "UA-43"}}
    )
    assert response.status_code == 200
    return dict(response.get_json())


def test_nothing_changed_nothing_happens(reloading: tuple[Flask, Recorded]) -> None:
    app, recorded = reloading
    outcome = runtime(app).reloader.check()  # type: ignore[union-attr]
    assert outcome.status == "unchanged" and recorded.events == []


def test_a_valid_change_is_swapped_in(reloading: tuple[Flask, Recorded], rules: Path) -> None:
    app, recorded = reloading
    client = app.test_client()
    before = crimea(client)
    assert before["notices"]
    edit(rules, RUSSIA_ONLY)
    outcome = runtime(app).reloader.check()  # type: ignore[union-attr]
    assert outcome.status == "loaded" and outcome.ruleset != before["ruleset"]
    after = crimea(client)
    assert after["ruleset"] == outcome.ruleset and after["notices"] == []
    assert client.get("/v1/ruleset").get_json()["hash"] == outcome.ruleset
    assert recorded.events == [("ruleset_loaded", (outcome.ruleset, before["ruleset"]))]


def test_a_broken_change_is_rejected_and_the_old_rules_serve(
    reloading: tuple[Flask, Recorded], rules: Path
) -> None:
    app, recorded = reloading
    client = app.test_client()
    old = crimea(client)["ruleset"]
    edit(rules, TYPO)
    reloader = runtime(app).reloader
    assert reloader is not None
    assert reloader.check().status == "rejected"
    assert reloader.check().status == "unchanged"  # the same broken files are not tried again
    assert crimea(client)["ruleset"] == old
    ready = client.get("/readyz")
    assert ready.status_code == 200
    rejected = ready.get_json()["rejected"]
    (error,) = rejected["errors"]
    assert error.endswith(
        "rferl.yaml:11:17: error: unknown region 'rusia'; did you mean 'russia'? [unknown-region]"
    )
    assert client.get("/v1/ruleset").get_json()["rejected"]["files"] == rejected["files"]
    assert [kind for kind, _ in recorded.events] == ["ruleset_rejected"]
    edit(rules, (TYPO[1], TYPO[0]))
    assert reloader.check().status == "unchanged"  # back to the rules already served
    assert client.get("/readyz").get_json()["rejected"] is None


def test_reload_endpoint(reloading: tuple[Flask, Recorded], rules: Path) -> None:
    app, _ = reloading
    client = app.test_client()
    assert client.post("/v1/ruleset/reload", json={}).get_json()["status"] == "unchanged"
    edit(rules, TYPO)
    response = client.post("/v1/ruleset/reload", json={})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    (error,) = response.get_json()["errors"]
    assert error["location"].endswith("rferl.yaml:11:17") and error["type"] == "unknown-region"
    edit(rules, (TYPO[1], RUSSIA_ONLY[1]))
    body = client.post("/v1/ruleset/reload", json={}).get_json()
    assert body["status"] == "loaded" and crimea(client)["ruleset"] == body["ruleset"]


def test_reload_endpoint_is_off_by_default(client: FlaskClient) -> None:
    assert client.post("/v1/ruleset/reload", json={}).status_code == 404


# ---- in a real `herald serve` with two workers -----------------------------------------------


@pytest.fixture
def server(tmp_path: Path, rules: Path, city_db: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    env = {"HERALD_GEOIP_DB": str(city_db), "HERALD_RULES_DIR": str(rules), "HERALD_RELOAD_INTERVAL": "0.2"}
    with serving(tmp_path, env) as live:
        yield live.base, live.process


def decide_crimea(base: str) -> dict[str, Any]:
    status, body = request(
        base + "/v1/decisions", {"article": {"publisher": "rferl"}, "reader": {"subdivision": "UA-43"}}
    )
    assert status == 200, body
    return body


def test_every_worker_picks_up_a_valid_change(server: tuple[str, Any], rules: Path) -> None:
    base, _ = server
    old = decide_crimea(base)["ruleset"]
    edit(rules, RUSSIA_ONLY)
    workers_seen(base, lambda body: body["ruleset"] != old)
    assert all(decide_crimea(base)["notices"] == [] for _ in range(10))


def test_a_broken_change_under_load_changes_nothing(server: tuple[str, Any], rules: Path) -> None:
    base, process = server
    old = decide_crimea(base)["ruleset"]
    edit(rules, TYPO)
    deadline = time.monotonic() + 1.5  # several reload intervals of requests
    while time.monotonic() < deadline:
        assert decide_crimea(base)["ruleset"] == old
    workers_seen(base, lambda body: body["rejected"] is not None and body["ruleset"] == old)
    process.send_signal(signal.SIGHUP)  # new workers must boot on the last good rules
    time.sleep(1.0)
    assert process.poll() is None
    workers_seen(base, lambda body: body["ruleset"] == old and body["rejected"] is not None)
    assert decide_crimea(base)["notices"]


def test_rules_the_audit_log_cannot_archive_are_not_served(
    reloading: tuple[Flask, Recorded], rules: Path
) -> None:
    app, recorded = reloading
    client = app.test_client()
    old = crimea(client)["ruleset"]

    def full_disk(ruleset: Ruleset, previous: Ruleset | None = None) -> None:
        raise OSError(28, "No space left on device")

    recorded.ruleset_loaded = full_disk  # type: ignore[method-assign]
    edit(rules, RUSSIA_ONLY)
    reloader = runtime(app).reloader
    assert reloader is not None
    outcome = reloader.check()
    assert outcome.status == "rejected" and crimea(client)["ruleset"] == old
    assert "the audit log refused it" in client.get("/readyz").get_json()["rejected"]["errors"][0]
    del recorded.ruleset_loaded  # the disk has room again: the next check loads the same files
    assert reloader.check().status == "loaded" and crimea(client)["notices"] == []


# ---- rule files that used to crash the loader (RecursionError, OverflowError) -----------------

DATE_PAST_9999 = ("from: 2024-02-20", 'from: "9999-12-31T23:59:59-23:59"')


def audit_events(directory: Path, kind: str) -> list[dict[str, Any]]:
    """The events of `kind` in every audit file of `directory`."""
    records = [
        json.loads(line) for path in directory.glob("*.jsonl") for line in path.read_text().splitlines()
    ]
    return [r for r in records if r.get("kind") == kind]


def crashing(rules: Path, kind: str) -> str:
    """Make the rules one that used to crash the loader; the file:line its error is reported at."""
    if kind == "region chain":
        lines = ["regions:"] + [f"  - {{id: c{i}, include: [c{i + 1}]}}" for i in range(1199)]
        (rules / "chain.yaml").write_text("\n".join([*lines, "  - {id: c1199, countries: [RU]}", ""]))
        return "chain.yaml:2:"
    path = rules / POLICY
    text = path.read_text()
    assert DATE_PAST_9999[0] in text
    path.write_text(text.replace(*DATE_PAST_9999))
    line = text[: text.index(DATE_PAST_9999[0])].count("\n") + 1
    return f"rferl.yaml:{line}:"


@pytest.mark.parametrize("kind", ["region chain", "date past 9999"])
def test_a_rule_file_that_crashed_the_loader_is_a_rejection(
    reloading: tuple[Flask, Recorded], rules: Path, kind: str
) -> None:
    app, recorded = reloading
    client = app.test_client()
    old = crimea(client)["ruleset"]
    where = crashing(rules, kind)
    response = client.post("/v1/ruleset/reload", json={})
    assert response.status_code == 422, response.get_json()
    (error,) = response.get_json()["errors"]
    assert where in error["location"] + ":"
    for path in ("/readyz", "/v1/ruleset"):
        (shown,) = client.get(path).get_json()["rejected"]["errors"]
        assert where in shown
    assert [kind for kind, _ in recorded.events] == ["ruleset_rejected"]
    assert crimea(client)["ruleset"] == old and crimea(client)["notices"]


def test_a_failure_in_the_reloader_itself_is_a_rejection_not_a_500(
    reloading: tuple[Flask, Recorded], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.web import reload

    def broken(directory: Path) -> str:
        raise MemoryError

    monkeypatch.setattr(reload, "fingerprint", broken)
    app, recorded = reloading
    response = app.test_client().post("/v1/ruleset/reload", json={})
    assert response.status_code == 422
    assert "out of memory" in response.get_json()["errors"][0]["message"]


def test_sighup_on_a_crashing_rule_file_keeps_the_master_and_the_last_good_rules(
    tmp_path: Path, rules: Path, city_db: Path
) -> None:
    """The master loads on SIGHUP (workers do not poll here): it must survive and hand the
    rejection to the workers it forks, which show it and serve the last good rules."""
    env = {"HERALD_GEOIP_DB": str(city_db), "HERALD_RULES_DIR": str(rules), "HERALD_RELOAD_INTERVAL": "0"}
    with serving(tmp_path, env) as live:
        old = decide_crimea(live.base)["ruleset"]
        where = crashing(rules, "region chain")
        first = workers_seen(live, lambda body: True)
        live.process.send_signal(signal.SIGHUP)
        fresh = workers_seen(live, lambda body: body["rejected"] is not None and body["ruleset"] == old)
        assert live.process.poll() is None and not fresh & first
        status, body = request(live.base + "/readyz")
        assert status == 200 and where in body["rejected"]["errors"][0]
        assert decide_crimea(live.base)["ruleset"] == old
    assert "Traceback" not in live.log.read_text()
    rejected = audit_events(tmp_path / "audit", "ruleset_rejected")
    assert {e["pid"] for e in rejected} == fresh  # each new worker wrote the rejection once
    assert all(where in e["errors"][0] for e in rejected)


def test_a_change_is_parsed_once_in_the_master_and_the_workers_restart_on_it(
    tmp_path: Path, rules: Path, city_db: Path
) -> None:
    env = {"HERALD_GEOIP_DB": str(city_db), "HERALD_RULES_DIR": str(rules), "HERALD_RELOAD_INTERVAL": "0.2"}
    with serving(tmp_path, env) as live:
        old = decide_crimea(live.base)["ruleset"]
        first = workers_seen(live, lambda body: True)
        edit(rules, RUSSIA_ONLY)
        fresh = workers_seen(live, lambda body: body["ruleset"] != old)
        assert not fresh & first  # new workers, forked on the master's new rules
        assert all(decide_crimea(live.base)["notices"] == [] for _ in range(10))
    log = live.log.read_text()
    assert log.count("workers restart on them") == 1  # parsed once, in the master
    assert "rules reloaded" not in log  # no worker parsed it again
    changed = [e for e in audit_events(tmp_path / "audit", "ruleset_loaded") if e["ruleset"] != old]
    assert len(changed) == 2 and all(e["previous"] == old and e["changes"] for e in changed)
