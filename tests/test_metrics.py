"""/metrics in Prometheus text format: in one process, and summed over a real server's workers."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from service.config import Settings
from tests.conftest import RULES
from tests.live import request, serving, workers_seen
from tests.test_reload import edit

RFERL = {"publisher": "rferl"}


def value(metrics: str, sample: str) -> float:
    """The value of one sample line, e.g. 'herald_decisions_total{country="RU",source="explicit"}'."""
    match = re.search(rf"^{re.escape(sample)} (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_counts_requests_decisions_notices_and_sources(client: FlaskClient) -> None:
    for reader in ({"country": "RU"}, {"country": "RU"}, {"ip": "8.8.8.8"}, {"ip": "10.0.0.1"}):
        assert client.post("/v1/decisions", json={"article": RFERL, "reader": reader}).status_code == 200
    client.post("/v1/decisions", json={"article": {}})
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert value(text, 'herald_decisions_total{country="RU",source="explicit"}') == 2
    assert value(text, 'herald_decisions_total{country="US",source="geoip"}') == 1
    assert value(text, 'herald_decisions_total{country="unknown",source="unknown"}') == 1
    assert value(text, 'herald_notices_shown_total{country="RU",notice="rferl-undesirable"}') == 2
    assert (
        value(
            text, 'herald_request_duration_seconds_count{endpoint="/v1/decisions",method="POST",status="200"}'
        )
        == 4
    )
    assert (
        value(
            text, 'herald_request_duration_seconds_count{endpoint="/v1/decisions",method="POST",status="422"}'
        )
        == 1
    )
    assert re.search(r'^herald_ruleset_info\{hash="sha256:[0-9a-f]{64}"\} 1\.0$', text, re.MULTILINE)


def test_counts_reloads(make_app: Callable[..., Flask], settings: Settings, tmp_path: Path) -> None:
    import shutil

    from tests.test_reload import RUSSIA_ONLY, TYPO

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    app = make_app(settings.model_copy(update={"rules_dir": rules, "admin_http": True}))
    client = app.test_client()
    edit(rules, RUSSIA_ONLY)
    client.post("/v1/ruleset/reload", json={})
    edit(rules, (RUSSIA_ONLY[1], TYPO[1]))
    client.post("/v1/ruleset/reload", json={})
    text = client.get("/metrics").get_data(as_text=True)
    assert value(text, 'herald_ruleset_reloads_total{outcome="loaded"}') == 1
    assert value(text, 'herald_ruleset_reloads_total{outcome="rejected"}') == 1
    assert len(re.findall(r"^herald_ruleset_info\{", text, re.MULTILINE)) == 1


def test_a_real_server_sums_every_worker(tmp_path: Path, city_db: Path) -> None:
    with serving(tmp_path, {"HERALD_GEOIP_DB": str(city_db), "HERALD_RULES_DIR": str(RULES)}) as live:
        summed_over_workers(live.base)


def summed_over_workers(base: str) -> None:
    workers_seen(base, lambda body: True, minimum=2)  # both workers are up and have answered
    for _ in range(40):
        status, _ = request(base + "/v1/decisions", {"article": RFERL, "reader": {"country": "RU"}})
        assert status == 200
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        text = response.read().decode()
    assert value(text, 'herald_decisions_total{country="RU",source="explicit"}') == 40
    assert value(text, 'herald_audit_records_total{outcome="written"}') == 40
    live = re.findall(r'^herald_ruleset_info\{hash="[^"]+",pid="(\d+)"\} 1\.0$', text, re.MULTILINE)
    assert len(set(live)) == 2


def test_an_empty_worker_metrics_file_does_not_fail_metrics(tmp_path: Path) -> None:
    """A worker that first counts while the disk is full leaves a file it could not size (soak)."""
    from service.web.metrics import _ReadableFiles

    (tmp_path / "counter_123.db").write_bytes(b"")
    assert list(_ReadableFiles(str(tmp_path)).collect()) == []
