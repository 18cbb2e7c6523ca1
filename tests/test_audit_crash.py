"""A real `herald serve`: a worker killed with SIGKILL mid-stream loses no answered decision."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.audit.files import log_files
from service.audit.reader import file_records, records
from service.audit.verify import verify
from tests.conftest import RULES
from tests.test_serve import HERALD, free_port, request


def _workers(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if request(base + "/readyz")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    process.kill()
    process.wait()
    pytest.fail("herald serve did not become ready:\n" + log.read_text())


def test_kill_9_of_a_worker_loses_no_answered_decision(tmp_path: Path) -> None:
    from tests.mmdb import build_city_db

    audit = tmp_path / "audit"
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env |= {
        "HERALD_GEOIP_DB": str(build_city_db(tmp_path / "City.mmdb")),
        "HERALD_RULES_DIR": str(RULES),
        "HERALD_AUDIT_DIR": str(audit),
        "HERALD_AUDIT_NODE": "crash-test",
        "HERALD_AUDIT_CHECKPOINT_S": "0.02",  # the kill may well land in the middle of a checkpoint
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(HERALD), "serve", "--port", str(port), "--workers", "2", "--threads", "2"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    _wait_ready(base, process, log)
    answered: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        body = {"article": {"publisher": "rferl", "id": "a"}, "reader": {"ip": "77.88.8.8"}}
        while not stop.is_set():
            try:
                status, answer = request(base + "/v1/decisions", body)
            except (OSError, http.client.HTTPException):
                continue  # the killed worker's connection (reset, or cut mid-answer): nothing is owed
            if status == 200:
                answered.append(answer["decision_id"])

    clients = [threading.Thread(target=stream) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        time.sleep(1.0)
        victim = _workers(process.pid)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(r["kind"] == "recovered" for r in records([audit])):
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)

    logged = {r["decision_id"] for r in records([audit]) if r["kind"] == "decision"}
    assert len(answered) > 50
    assert set(answered) <= logged, f"answered but not logged: {sorted(set(answered) - logged)[:5]}"
    victims = [p for p in log_files([audit]) if f"-{victim}-" in p.name]
    assert len(victims) == 1
    recovered = [r for p in log_files([audit]) for r in file_records(p) if r["kind"] == "recovered"]
    assert [r["file"] for r in recovered] == [victims[0].name]
    assert not [r for r in records([audit]) if r["kind"] == "adoption_refused"]
    report = verify([audit])
    assert report.ok, [(c.path.name, c.problem) for c in report.files if c.problem]
    kinds = [r["kind"] for r in records([audit])]
    assert kinds.count("started") == 3 and kinds.count("stopped") == 2


@pytest.mark.parametrize("key", [None, "k" * 32], ids=["no key", "HMAC key"])
def test_a_cut_tail_is_seen_after_a_restart_of_a_real_server(tmp_path: Path, key: str | None) -> None:
    """Issue 11's reproduction: stop the server, cut the end of a file, start and stop it again:
    verify names the file and the missing seqs (it used to say intact: the cut file was adopted)."""
    from service.cli import main
    from tests.live import serving

    env = {"HERALD_RULES_DIR": str(RULES), "HERALD_AUDIT_NODE": "cut", "HERALD_GEOIP_DB": ""}
    env = {k: v for k, v in env.items() if v} | ({"HERALD_AUDIT_KEY": key} if key else {})
    audit = tmp_path / "audit"
    with serving(tmp_path, env, workers=1) as server:
        for i in range(6):
            body = {"article": {"publisher": "rferl", "id": f"a{i}"}, "reader": {"country": "RU"}}
            assert request(server.base + "/v1/decisions", body)[0] == 200
    (path,) = log_files([audit])
    kept = path.read_bytes().splitlines(keepends=True)
    last_seq = json.loads(kept[-1])["seq"]
    path.write_bytes(b"".join(kept[:-3]))  # the last two decisions and the stopped event
    with serving(tmp_path, env, workers=1):
        pass
    refused = [r for p in log_files([audit]) for r in file_records(p) if r["kind"] == "adoption_refused"]
    assert [r["refused"] for r in refused] == [path.name]
    result = CliRunner().invoke(main, ["audit", "verify", str(audit), *(["--key", key] if key else [])])
    assert result.exit_code == 1, result.output
    assert f"FAIL  {path}: seq {last_seq - 2} " in result.output
    assert f"seq {last_seq - 2}..{last_seq} missing" in result.output
    assert sum(line.startswith("FAIL") for line in result.output.splitlines()) == 1


def test_a_witness_node_keeps_what_root_on_the_node_cuts(tmp_path: Path) -> None:
    """Two real servers: node 1 POSTs its checkpoints to node 2; root on node 1 then cuts a file and
    its own checkpoint log consistently, and only the witness's copy shows it."""
    from service.audit.checkpoint import CHECKPOINTS, log_names
    from service.audit.verify import verify
    from service.keys import add_key
    from tests.live import serving

    key = "k" * 32
    witness_dir, node_dir = tmp_path / "witness", tmp_path / "node"
    witness_dir.mkdir()
    node_dir.mkdir()
    token = add_key(witness_dir / "keys.json", "node-1", {"audit"})
    common = {"HERALD_RULES_DIR": str(RULES), "HERALD_AUDIT_KEY": key}
    witness_env = common | {
        "HERALD_AUDIT_NODE": "witness",
        "HERALD_KEYS_FILE": str(witness_dir / "keys.json"),
    }
    with serving(witness_dir, witness_env, workers=1) as witness:
        node_env = common | {
            "HERALD_AUDIT_NODE": "node-1",
            "HERALD_AUDIT_CHECKPOINT_S": "0.2",
            "HERALD_AUDIT_WITNESS": witness.base + "/v1/audit/checkpoints",
            "HERALD_AUDIT_WITNESS_KEY": token,
        }
        with serving(node_dir, node_env, workers=1) as node:
            for i in range(8):
                body = {"article": {"publisher": "rferl", "id": f"a{i}"}, "reader": {"country": "RU"}}
                assert request(node.base + "/v1/decisions", body)[0] == 200
            time.sleep(0.5)
    audit = node_dir / "audit"
    kept = witness_dir / "audit" / CHECKPOINTS
    assert log_names(kept, "witnessed")
    assert verify([audit], key.encode(), witnesses=[kept]).ok
    (path,) = log_files([audit])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]))
    shutil.rmtree(audit / CHECKPOINTS)  # root removes the node's own checkpoints too
    alone = verify([audit], key.encode())
    assert [c.problem.kind for c in alone.files if c.problem] == ["no checkpoint"]
    witnessed = verify([audit], key.encode(), witnesses=[kept])
    (bad,) = [c for c in witnessed.files if c.problem]
    assert bad.path == path and bad.problem is not None and bad.problem.kind == "truncated"
    assert f"seq 4..{json.loads(lines[-1])['seq']} missing" in bad.problem.detail
    assert verify([witness_dir / "audit"], key.encode()).ok  # the witness's own log and chain
