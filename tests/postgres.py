"""A real PostgreSQL server for tests and benchmarks: initdb + pg_ctl in a temporary directory.

Started once per test session (tests/conftest.py) on a free port of 127.0.0.1; each test gets a fresh
database copied from a migrated template. As root, the server runs as the `postgres` user (or
`nobody`), since initdb refuses to run as root. If it cannot start, the tests fail: never a mock.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.live import free_port

SETTINGS = {  # a throw-away server: speed over durability
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
}


def bin_dir() -> Path:
    """The newest PostgreSQL server binaries of the Debian package (`make test` installs them)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL server binaries not found: apt-get install -y postgresql (make test does)")


@dataclass(frozen=True, slots=True)
class Postgres:
    directory: Path
    port: int
    user: str = "herald"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"


def _run_as() -> dict[str, Any]:
    """`user`/`group` for subprocess when root: the postgres account if there is one, else nobody."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root and no postgres or nobody account to run PostgreSQL as")


@contextlib.contextmanager
def running(settings: dict[str, str] | None = None) -> Iterator[Postgres]:
    """A fresh server for the duration of the block; stopped (immediately) and removed after it,
    also when the test process is killed (a watchdog process does it then)."""
    binaries = bin_dir()
    # Not under pytest's tmp (mode 0700, owned by root): the server's user must reach its directory.
    top = Path(tempfile.mkdtemp(prefix="herald-pg-"))
    data = top / "data"
    as_user = _run_as()
    if as_user:
        os.chown(top, as_user["user"], as_user["group"])
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    stop = [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCH, str(os.getpid()), str(top), *stop],
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    port = free_port()
    options = " ".join(f"-c {k}={v}" for k, v in {**SETTINGS, **(settings or {})}.items())
    try:
        initdb = [str(binaries / "initdb"), "-D", str(data), "-U", "herald", "--auth=trust", "-E", "UTF8"]
        _run([*initdb, "--no-sync"], env, as_user)
        start = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(top / "log"), "-w", "-t", "60"]
        _run([*start, "-o", f"-p {port} -k {top} {options}", "start"], env, as_user, top / "log")
        yield Postgres(top, port)
    finally:
        subprocess.run(stop, env=env, capture_output=True, **as_user)
        shutil.rmtree(top, ignore_errors=True)
        watchdog.kill()
        watchdog.wait()


# The watchdog: waits for the test process to go away, then stops the server it left running.
_WATCH = """
import os, shutil, subprocess, sys, time
parent, top, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
while os.getppid() == parent:
    time.sleep(1)
user = os.stat(top).st_uid if os.path.exists(top) else os.getuid()
if os.getuid() == 0 and user != 0:
    subprocess.run(stop, capture_output=True, user=user, group=os.stat(top).st_gid, extra_groups=[])
else:
    subprocess.run(stop, capture_output=True)
shutil.rmtree(top, ignore_errors=True)
"""


def _run(command: list[str], env: dict[str, str], as_user: dict[str, Any], log: Path | None = None) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd="/", **as_user)
    if done.returncode != 0:
        tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{command[0]} failed:\n{done.stdout}{done.stderr}{tail}")
