"""`herald serve` as a real process: gunicorn workers on a free port, answering real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, RULES

HERALD = Path(sys.executable).parent / "herald"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.mmdb import build_city_db

    db = build_city_db(tmp_path_factory.mktemp("serve") / "City.mmdb")
    port = free_port()
    log = (tmp_path_factory.mktemp("log") / "serve.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env |= {"HERALD_GEOIP_DB": str(db), "HERALD_RULES_DIR": str(RULES)}
    process = subprocess.Popen(
        [str(HERALD), "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path_factory.mktemp("cwd"),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if request(base + "/readyz")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        process.wait()
        log.close()
        pytest.fail("herald serve did not become ready:\n" + Path(log.name).read_text())
    yield base
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    log.close()


def test_serves_the_founding_case(server: str) -> None:
    status, body = request(
        server + "/v1/decisions",
        {"article": {"publisher": "rferl"}, "reader": {"ip": "77.88.8.8", "languages": ["ru"]}},
    )
    assert status == 200
    assert body["reader"]["source"] == "geoip"
    assert [(n["id"], n["language"]) for n in body["notices"]] == [("rferl-undesirable", "ru")]
    status, body = request(
        server + "/v1/decisions", {"article": {"publisher": "rferl"}, "reader": {"ip": "8.8.8.8"}}
    )
    assert status == 200 and body["notices"] == []


def test_bad_input_is_a_problem_not_a_crash(server: str) -> None:
    status, body = request(
        server + "/v1/decisions", {"article": {"publisher": "rferl"}, "reader": {"ip": "x"}}
    )
    assert status == 422 and body["errors"][0]["location"] == "/reader/ip"
    status, _ = request(server + "/healthz")
    assert status == 200


CHAIN = "regions:\n" + "".join(f"  - {{id: c{i}, include: [c{i + 1}]}}\n" for i in range(1199))
BROKEN = {
    "typo": (
        "rules:\n  - id: r\n    notice: n\n    reader: {regions: [rusia]}\n",
        "bad.yaml:4:",
        "unknown region",
    ),
    "region chain": (CHAIN + "  - {id: c1199, countries: [RU]}\n", "bad.yaml:2:", "1200 levels deep"),
    "date past 9999": (
        "rules:\n  - id: r\n    notice: n\n    reader: {regions: [r]}\n"
        '    effective: {from: "9999-12-31T23:59:59-23:59"}\n',
        "bad.yaml:5:",
        "outside the calendar",
    ),
}


# `serve` fails on the rules before it binds any port.
@pytest.mark.parametrize("command", [("serve", "--port", "1", "--rules"), ("rules", "check")])
@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_rules_stop_the_start_with_file_and_line(
    tmp_path: Path, command: tuple[str, ...], kind: str
) -> None:
    """Errors at file:line and one summary line, whatever the file did to the loader; no traceback."""
    text, where, message = BROKEN[kind]
    (tmp_path / "bad.yaml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    result = subprocess.run(
        [str(HERALD), *command, str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert where in output and message in output, output
    assert "Traceback" not in output


TWO_FILES = {
    "a.yaml": "regions:\n  - {id: russia, countries: [RU]}\nnotices:\n"
    "  - {id: n, severity: legal, default_language: en, texts: {en: {title: T, body: B}}}\n"
    "rules:\n  - id: r\n    notice: n\n    article: {publisher: rferl}\n    reader: {regions: [russia]}\n"
    "    effective: {from: 2025-03-01, until: 2025-03-01}\n",
    "b.yaml": "cases:\n  - name: c\n    article: {publisher: rferl}\n    at: 2025-03-01T12:00:00\n"
    "    expect: {notices: []}\n",
}


@pytest.mark.parametrize(
    ("command", "summary"),
    [
        (("serve", "--port", "1", "--rules"), "2 errors in 2 files"),
        (("rules", "test"), "2 errors in 2 files"),
        (("rules", "check"), "{dir}: invalid, 2 errors in 2 files, 0 warnings"),
    ],
)
def test_errors_are_printed_once_then_one_summary_line(
    tmp_path: Path, command: tuple[str, ...], summary: str
) -> None:
    for name, text in TWO_FILES.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    result = subprocess.run(
        [str(HERALD), *command, str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    assert lines == [
        f"{tmp_path}/a.yaml:10:16: error: rules.0.effective: until (2025-03-01T00:00:00Z) is not after "
        "from (2025-03-01T00:00:00Z): the rule could never apply; `until` is exclusive "
        "[until-not-after-from]",
        f"{tmp_path}/b.yaml:4:9: error: cases.0.at: date-time 2025-03-01T12:00:00 has no time zone; write "
        "2025-03-01T12:00:00Z for UTC, or give an offset such as 2025-03-01T12:00:00+03:00 (a date alone, "
        "2025-03-01, means midnight UTC) [no-time-zone]",
        summary.format(dir=tmp_path),
    ]


def test_logs_are_json_lines_with_decision_ids_and_reduced_addresses(tmp_path: Path) -> None:
    import json as jsonlib

    from tests.live import serving
    from tests.mmdb import build_city_db

    env = {"HERALD_GEOIP_DB": str(build_city_db(tmp_path / "City.mmdb")), "HERALD_RULES_DIR": str(RULES)}
    with serving(tmp_path, env, workers=1) as live:
        status, body = request(live.base + "/v1/decisions", {"article": {"publisher": "rferl"}})
        assert status == 200
    lines = live.log.read_text().splitlines()
    records = [jsonlib.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == len(lines) - 1  # all but the first line, which `herald serve` prints itself
    (access,) = [r for r in records if r.get("path") == "/v1/decisions"]
    assert access["decision_ids"] == [body["decision_id"]] and access["status"] == 200
    assert access["peer"] == "127.0.0.0/24"
    assert any(r["logger"] == "gunicorn.error" and "Booting worker" in r["msg"] for r in records)


def test_workers_inherit_the_masters_rules_and_do_not_load_them_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The master (`herald serve`) loads the rules once; a worker built from it serves them and
    its reloader loads again only when the directory changes."""
    from service import serve
    from service.config import Settings
    from service.loader import load_ruleset
    from service.web import reload
    from service.web.runtime import runtime
    from tests.mmdb import build_city_db

    ruleset = load_ruleset(RULES)
    settings = Settings(
        rules_dir=RULES, geoip_db=build_city_db(tmp_path / "City.mmdb"), audit_dir=tmp_path / "audit"
    )
    files = reload.fingerprint(RULES)
    loads: list[Path] = []
    monkeypatch.setattr(reload, "load_ruleset", lambda directory, **kw: loads.append(directory))
    monkeypatch.setattr(serve, "load_ruleset", lambda directory, **kw: loads.append(directory))
    # gunicorn calls load_config in __init__, at start: the rules `herald serve` loaded are kept.
    server = serve.HeraldServer(settings, {"workers": 1}, ruleset, files)
    app = server.load()  # in the worker, after the fork
    rt = runtime(app)
    assert rt.reloader.check().status == "unchanged"  # type: ignore[union-attr]
    assert loads == [] and rt.engine is server.last_good and rt.engine.ruleset is ruleset
