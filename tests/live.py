"""Real `herald serve` processes for tests: start one on a free port, talk to it, stop it."""

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERALD = Path(sys.executable).parent / "herald"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(
    url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def serving(
    tmp_path: Path, env: dict[str, str], workers: int = 2, args: tuple[str, ...] = ()
) -> Iterator[Server]:
    """`herald serve` with `env` (HERALD_* from the test's shell are dropped) until the block ends."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "PROMETHEUS_"))}
    full_env |= {"HERALD_AUDIT_DIR": str(tmp_path / "audit")} | env
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(HERALD), "serve", "--port", str(port), "--workers", str(workers), *args],
            env=full_env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = Server(f"http://127.0.0.1:{port}", process, log_path)
        try:
            workers_seen(server, lambda body: True, minimum=workers, seconds=30)
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def workers_seen(
    server: Server | str, wanted: Callable[[dict[str, Any]], bool], minimum: int = 2, seconds: float = 15
) -> set[int]:
    """Poll /readyz (answered by whichever worker) until `minimum` workers answered `wanted`."""
    base = server.base if isinstance(server, Server) else server
    good: set[int] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if isinstance(server, Server) and server.process.poll() is not None:
            pytest.fail("herald serve exited:\n" + server.log.read_text())
        try:
            status, body = request(base + "/readyz")
        except OSError:
            time.sleep(0.05)
            continue
        if status in (200, 503) and wanted(body):
            good.add(body["worker"])
            if len(good) >= minimum:
                return good
        time.sleep(0.01)
    log = server.log.read_text() if isinstance(server, Server) else ""
    pytest.fail(f"only workers {good} answered as wanted within {seconds} s\n{log}")
