"""Audit figures: the log's cost on the decision endpoint (real servers, on vs off) and summary speed.

Prints `audit_overhead_pct: N` (requests/s lost with the log on, default fsync policy, against the same
endpoint with HERALD_AUDIT=off, measured in alternating rounds in one run), the same for the other fsync
policies, and `audit_summary_records_per_s: N` for `summary` over 10 million generated records.
Usage: python bench/audit.py [--records N] [--seconds S] [--rounds R]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import free_port, stop_process  # noqa: E402

from service.audit.chain import GENESIS, Chain  # noqa: E402
from service.audit.files import file_name  # noqa: E402
from service.audit.records import SCHEMA, decision_fields, iso  # noqa: E402
from service.audit.summary import summarize  # noqa: E402
from service.decision import Decision, Match, ShownNotice  # noqa: E402
from service.inputs import Article, Location  # noqa: E402

HERALD = Path(sys.executable).parent / "herald"
BODY = orjson.dumps(
    {"article": {"publisher": "rferl", "id": "33012345", "tags": ["russia"]}, "reader": {"ip": "77.88.8.8"}}
)


class Server:
    """`herald serve` with one worker, so client and server each have a core of this 2-core machine."""

    def __init__(self, work: Path, **env: str) -> None:
        self.port = free_port()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        clean |= {
            "HERALD_RULES_DIR": str(REPO / "rules"),
            "HERALD_AUDIT_DIR": str(work / f"audit-{self.port}"),
        }
        self.process = subprocess.Popen(
            [str(HERALD), "serve", "--port", str(self.port), "--workers", "1", "--threads", "4"],
            env=clean | env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.post()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"herald serve on port {self.port} did not start")

    def post(self, connection: http.client.HTTPConnection | None = None) -> None:
        c = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("POST", "/v1/decisions", BODY, {"Content-Type": "application/json"})
        response = c.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"unexpected status {response.status}")

    def rate(self, seconds: float, clients: int = 2) -> float:
        """Requests answered per second by `clients` keep-alive connections."""
        counts = [0] * clients
        end = time.monotonic() + seconds

        def run(i: int) -> None:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            while time.monotonic() < end:
                self.post(c)
                counts[i] += 1
            c.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts) / (time.monotonic() - start)

    def stop(self) -> None:
        stop_process(self.process)


def overhead(work: Path, seconds: float, rounds: int) -> None:
    policies = {
        "1": "audit_overhead_pct",
        "none": "audit_overhead_pct_fsync_none",
        "always": "audit_overhead_pct_fsync_always",
    }
    servers = {"off": Server(work, HERALD_AUDIT="off")} | {
        name: Server(work, HERALD_AUDIT_FSYNC=name) for name in policies
    }
    try:
        for server in servers.values():
            server.rate(0.5)  # warm up
        rates: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(rounds):  # alternate, so drift on the machine hits every server alike
            for name, server in servers.items():
                rates[name].append(server.rate(seconds))
    finally:
        for server in servers.values():
            server.stop()
    off = statistics.median(rates["off"])
    print(f"audit_off_requests_per_s: {off:.0f}")
    for name, label in policies.items():
        on = statistics.median(rates[name])
        print(f"audit_on_fsync_{name}_requests_per_s: {on:.0f}")
        print(f"{label}: {max(0.0, (off - on) / off * 100):.1f}")


LOCATIONS = [
    Location("RU", None, "geoip"),
    Location("RU", "RU-MOW", "geoip"),
    Location("UA", "UA-43", "geoip"),
    Location("UA", "UA-30", "explicit"),
    Location("US", None, "geoip"),
    Location("DE", "DE-BE", "header"),
    Location(None, None, "unknown"),
    Location(None, None, "unknown", anonymized=True),
]
RULE = "rferl-undesirable-russia"


def _block(day: datetime, count: int, chain: Chain) -> tuple[bytes, int]:
    """`count` realistic, chained decision records of one day; and how many show the notice."""
    out = bytearray()
    prev, shown = GENESIS, 0
    for i in range(count):
        location = random.choice(LOCATIONS)
        hit = location.country == "RU" or location.subdivision == "UA-43" or not location.known
        shown += hit
        at = day + timedelta(seconds=i * 86_400 / count)
        notices = (
            (ShownNotice("rferl-undesirable", "legal", "top", "ru", "t", "b", None, (RULE,)),) if hit else ()
        )
        matches = (Match(RULE, "region", "russia", location.country),) if hit else ()
        decision = Decision(
            "sha256:" + "c2" * 32, at, location, ("ru", "en"), notices, ("discourage_sharing",) * hit, matches
        )
        article = Article(
            "rferl", str(i), f"https://www.rferl.org/a/{i}.html", "news", frozenset({"russia"}), "ru"
        )
        record = decision_fields(str(uuid.uuid4()), article, decision, "77.88.8.0/24")
        record |= {"v": SCHEMA, "seq": i, "ts": iso(at), "kind": "decision", "node": "bench", "prev": prev}
        out += chain.seal(record)
        prev = record["hash"]
    return bytes(out), shown


def summary_speed(work: Path, total: int, files: int = 10, block: int = 20_000) -> None:
    directory = work / "summary"
    directory.mkdir()
    per_file = total // files
    expected_decisions = expected_shown = 0
    started = time.monotonic()
    for n in range(files):
        day = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(days=n)
        data, shown = _block(day, block, Chain())
        with (directory / file_name(day, "bench", 1, n)).open("wb") as f:
            for _ in range(per_file // block):  # the same day's block again: summary reads every byte
                f.write(data)
        expected_decisions += per_file // block * block
        expected_shown += per_file // block * shown
    size = sum(p.stat().st_size for p in directory.iterdir())
    took = time.monotonic() - started
    print(f"audit_summary_generated: {expected_decisions} records, {size / 1e9:.2f} GB in {took:.0f} s")
    times = []
    for _ in range(3):  # the first run also competes with the kernel writing the files out
        started = time.monotonic()
        rows = summarize([directory])
        times.append(time.monotonic() - started)
        decisions = sum(r.decisions for r in rows.values())
        shown = sum(r.notices["rferl-undesirable"] for r in rows.values())
        assert (decisions, shown) == (expected_decisions, expected_shown), (decisions, shown)
    print(f"audit_summary_seconds: {' '.join(f'{t:.1f}' for t in times)} (median taken)")
    print(f"audit_summary_records_per_s: {expected_decisions / statistics.median(times):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one measuring round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    random.seed(7)
    work = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    try:
        overhead(work, args.seconds, args.rounds)
        summary_speed(work, args.records)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
