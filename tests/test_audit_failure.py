"""HERALD_AUDIT_FAILURE: what a decision does when its audit record cannot be written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask import Flask

from service.config import Settings
from service.web import create_app
from service.web.runtime import runtime
from tests.conftest import NOW

BODY = {"article": {"publisher": "rferl"}, "reader": {"country": "RU"}}


class Disk:
    """Audit events that fail like a full disk while `full` is set, and remember what was written."""

    def __init__(self) -> None:
        self.full = False
        self.written: list[tuple[str, Any]] = []

    def decisions(self, batch: list[tuple[str, Any, Any]], *_: Any, **__: Any) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        self.written += [("decision", decision_id) for decision_id, _, _ in batch]

    def records_lost(self, count: int, since: datetime) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        self.written.append(("records_lost", (count, since)))

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


@pytest.fixture
def disk_app(settings: Settings) -> Callable[[str], tuple[Flask, Disk]]:
    def make(policy: str) -> tuple[Flask, Disk]:
        app = create_app(settings.model_copy(update={"audit_failure": policy}), clock=lambda: NOW)
        disk = Disk()
        runtime(app).audit = disk  # type: ignore[assignment]
        return app, disk

    return make


def test_open_answers_counts_and_reports_once_writable(disk_app: Callable[[str], tuple[Flask, Disk]]) -> None:
    app, disk = disk_app("open")
    client = app.test_client()
    disk.full = True
    lost = [client.post("/v1/decisions", json=BODY) for _ in range(3)]
    assert all(r.status_code == 200 and r.get_json()["notices"] for r in lost)
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "degraded" and "3 records lost" in ready["reasons"][0]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'herald_audit_records_total{outcome="lost"} 3.0' in metrics
    disk.full = False
    kept = client.post("/v1/decisions", json=BODY).get_json()["decision_id"]
    assert disk.written == [("records_lost", (3, NOW)), ("decision", kept)]
    assert client.get("/readyz").get_json()["status"] == "ready"


def test_closed_refuses_to_answer_unrecorded(disk_app: Callable[[str], tuple[Flask, Disk]]) -> None:
    app, disk = disk_app("closed")
    client = app.test_client()
    disk.full = True
    response = client.post("/v1/decisions", json=BODY)
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert response.get_json()["title"] == "Audit log unavailable"
    disk.full = False
    assert client.post("/v1/decisions", json=BODY).status_code == 200
