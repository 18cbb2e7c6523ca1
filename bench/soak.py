"""Load and fault tests against a real `herald serve` (several workers, loopback only, bounded in time).

Each scenario runs client threads at saturation against POST /v1/decisions while something goes
wrong, then checks what must hold: no 5xx, no connection errors beyond the requests in flight on a
killed worker, exactly one audit record per 200 answer, `herald audit verify` intact. Prints a table.
Usage: python bench/soak.py [--seconds 60] [--short 8] [--clients 8] [--workers 3]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import free_port, stop_process  # noqa: E402

from tests.mmdb import build_city_db  # noqa: E402

HERALD = Path(sys.executable).parent / "herald"
READERS = [{"ip": ip} for ip in ("77.88.8.8", "5.59.104.1", "93.72.0.1", "8.8.8.8", "185.220.101.7")] + [
    {"country": "RU"},
    {"subdivision": "UA-43", "languages": ["uk"]},
]


@dataclass
class Tally:
    """What the clients saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    answered: list[str] = field(default_factory=list)  # decision ids of 200 answers
    rulesets: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def five_xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


class Server:
    def __init__(self, work: Path, workers: int, env: dict[str, str]) -> None:
        self.work, self.port = work, free_port()
        self.audit = work / "audit"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "PROMETHEUS_"))}
        clean |= {"HERALD_RULES_DIR": str(REPO / "rules"), "HERALD_AUDIT_DIR": str(self.audit)}
        clean |= {"HERALD_ACCESS_LOG": "0"} | env
        self.log = (work / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [str(HERALD), "serve", "--port", str(self.port), "--workers", str(workers)],
            env=clean,
            cwd=work,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.get("/readyz")[0] in (200, 503) and len(self.workers()) == workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("herald serve did not start:\n" + (work / "serve.log").read_text())

    def get_text(self, path: str) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def get(self, path: str) -> tuple[int, dict[str, object]]:
        status, text = self.get_text(path)
        return status, orjson.loads(text or "{}")

    def post(self, path: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("POST", path, b"{}", {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


def client(server: Server, tally: Tally, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    connection: http.client.HTTPConnection | None = None
    while not stop.is_set():
        # Half the readers come from random addresses, so the GeoIP database is read, not only its cache.
        reader = rng.choice(READERS) if rng.random() < 0.5 else {"ip": str(IPv4Address(rng.getrandbits(32)))}
        body = orjson.dumps({"article": {"publisher": rng.choice(["rferl", "other"])}, "reader": reader})
        try:
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("POST", "/v1/decisions", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            with tally.lock:
                tally.errors[type(error).__name__] += 1
            if connection is not None:
                connection.close()
            connection = None
            continue
        with tally.lock:
            tally.statuses[response.status] += 1
            if response.status == 200:
                answer = orjson.loads(data)
                tally.answered.append(answer["decision_id"])
                tally.rulesets[answer["ruleset"]] += 1
    if connection is not None:
        connection.close()


@contextmanager
def load(server: Server, clients: int) -> Iterator[Tally]:
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=client, args=(server, tally, stop, i)) for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield tally
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def logged_decisions(audit: Path) -> Counter[str]:
    ids: Counter[str] = Counter()
    for path in sorted(audit.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn last line after kill -9: verify reports and checks it
            if record.get("kind") == "decision":
                ids[record["decision_id"]] += 1
    return ids


def verify(audit: Path) -> tuple[bool, str]:
    result = subprocess.run(
        [str(HERALD), "audit", "verify", str(audit)], capture_output=True, text=True, timeout=300
    )
    return result.returncode == 0, (result.stdout + result.stderr).strip().splitlines()[-1:][0]


@dataclass
class Row:
    scenario: str
    requests: int
    held: bool
    detail: str


def complete(tally: Tally, audit: Path) -> tuple[bool, str]:
    """Every 200 answer has exactly one record, and the log verifies."""
    logged = logged_decisions(audit)
    missing = [d for d in tally.answered if logged[d] != 1]
    intact, verdict = verify(audit)
    return not missing and intact, f"{len(missing)} answers without exactly one record; verify: {verdict}"


# ---- scenarios --------------------------------------------------------------------------------


def sustained(ctx: Context) -> Row:
    server = ctx.server("sustained")
    try:
        started = time.monotonic()
        with load(server, ctx.clients) as tally:
            time.sleep(ctx.seconds)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    ok, detail = complete(tally, server.audit)
    total = sum(tally.statuses.values())
    held = ok and tally.five_xx == 0 and not tally.errors
    return Row(
        "sustained load",
        total,
        held,
        f"{total / elapsed:.0f} req/s, 5xx {tally.five_xx}, "
        f"connection errors {sum(tally.errors.values())}; {detail}",
    )


def kill_worker(ctx: Context) -> Row:
    server = ctx.server("kill")
    try:
        with load(server, ctx.clients) as tally:
            time.sleep(ctx.short / 2)
            victim = server.workers()[0]
            os.kill(victim, signal.SIGKILL)
            time.sleep(ctx.short / 2)
            replaced = victim not in server.workers() and len(server.workers()) == ctx.workers
    finally:
        server.stop()
    ok, detail = complete(tally, server.audit)
    failed = sum(tally.errors.values()) + tally.five_xx
    held = ok and replaced and failed <= ctx.clients  # at most the requests in flight on that worker
    return Row(
        "kill -9 a worker",
        sum(tally.statuses.values()),
        held,
        f"replaced: {replaced}; failed requests {failed} (in flight at most {ctx.clients}); {detail}",
    )


def broken_rules(ctx: Context) -> Row:
    rules = ctx.work / "broken-rules"
    shutil.copytree(REPO / "rules", rules)
    server = ctx.server("rules", HERALD_RULES_DIR=str(rules), HERALD_RELOAD_INTERVAL="0.2")
    try:
        with load(server, ctx.clients) as tally:
            time.sleep(ctx.short / 2)
            policy = rules / "policies" / "rferl.yaml"
            policy.write_text(policy.read_text().replace("regions: [russia,", "regions: [rusia,"))
            time.sleep(ctx.short / 2)
        rejected = all(server.get("/readyz")[1].get("rejected") for _ in range(8))
    finally:
        server.stop()
    ok, detail = complete(tally, server.audit)
    held = ok and rejected and tally.five_xx == 0 and not tally.errors and len(tally.rulesets) == 1
    return Row(
        "broken rules change",
        sum(tally.statuses.values()),
        held,
        f"rulesets served {len(tally.rulesets)}, rejection shown {rejected}, 5xx {tally.five_xx}; {detail}",
    )


def crashing_rules(ctx: Context) -> Row:
    """Rule files that used to crash the loader (a chain of 1,200 regions: RecursionError; a date
    past 9999 in UTC: OverflowError), written under load, then the reload endpoint and a SIGHUP:
    every worker and the master live on, serving the last good rules and showing the rejection."""
    rules = ctx.work / "crashing-rules"
    shutil.copytree(REPO / "rules", rules)
    server = ctx.server(
        "crashing", HERALD_RULES_DIR=str(rules), HERALD_RELOAD_INTERVAL="0.2", HERALD_ADMIN_HTTP="1"
    )
    chain = "".join(f"  - {{id: c{i}, include: [c{i + 1}]}}\n" for i in range(1199))
    try:
        with load(server, ctx.clients) as tally:
            time.sleep(ctx.short / 3)
            (rules / "chain.yaml").write_text("regions:\n" + chain + "  - {id: c1199, countries: [RU]}\n")
            policy = rules / "policies" / "rferl.yaml"
            policy.write_text(
                policy.read_text().replace("from: 2024-02-20", 'from: "9999-12-31T23:59:59-23:59"')
            )
            time.sleep(ctx.short / 3)
            reload_status = server.post("/v1/ruleset/reload")
            server.process.send_signal(signal.SIGHUP)  # the master loads them itself, and forks new workers
            time.sleep(ctx.short / 3)
        master_alive = server.process.poll() is None
        shown = [server.get("/readyz")[1].get("rejected") for _ in range(8)]
        rejected = all(r and any("chain.yaml" in e for e in r["errors"]) for r in shown)  # type: ignore[index, union-attr]
    finally:
        server.stop()
    ok, detail = complete(tally, server.audit)
    failed = tally.five_xx + sum(tally.errors.values())
    held = (
        ok and master_alive and rejected and reload_status == 422 and failed == 0 and len(tally.rulesets) == 1
    )
    return Row(
        "rule files that crashed the loader",
        sum(tally.statuses.values()),
        held,
        f"rulesets served {len(tally.rulesets)}, rejection shown {rejected}, "
        f"reload endpoint {reload_status}, master alive after SIGHUP {master_alive}, "
        f"5xx and connection errors {failed}; {detail}",
    )


def geoip_faults(ctx: Context) -> Row:
    """The database file is overwritten in place with garbage, truncated, then removed: what a
    careless `cp` over it, a full disk or an operator's `rm` does while the service runs."""
    (ctx.work / "geo-db").mkdir()
    db = build_city_db(ctx.work / "geo-db" / "City.mmdb")
    server = ctx.server("geo", HERALD_GEOIP_DB=str(db), HERALD_RELOAD_INTERVAL="0.2")
    try:
        with load(server, ctx.clients) as tally:
            time.sleep(ctx.short / 4)
            size = db.stat().st_size
            with db.open("r+b") as file:  # the same inode: what the workers read
                file.write(random.Random(1).randbytes(size))
            time.sleep(ctx.short / 4)
            os.truncate(db, 100)
            time.sleep(ctx.short / 4)
            db.unlink()
            time.sleep(ctx.short / 4)
    finally:
        server.stop()
    ok, detail = complete(tally, server.audit)
    held = ok and tally.five_xx == 0 and not tally.errors
    return Row(
        "GeoIP file corrupted, truncated, removed",
        sum(tally.statuses.values()),
        held,
        f"5xx {tally.five_xx}, connection errors {sum(tally.errors.values())}; {detail}",
    )


def geoip_missing(ctx: Context) -> Row:
    server = ctx.server("nogeo", HERALD_GEOIP_DB=str(ctx.work / "absent.mmdb"))
    try:
        status, ready = server.get("/readyz")
        with load(server, ctx.clients) as tally:
            time.sleep(ctx.short / 2)
    finally:
        server.stop()
    says_why = status == 503 and "HERALD_GEOIP_DB" in str(ready.get("reasons"))
    held = says_why and tally.five_xx == 0 and not tally.errors and tally.statuses[200] > 0
    return Row(
        "GeoIP database missing at start",
        sum(tally.statuses.values()),
        held,
        f"/readyz {status} naming HERALD_GEOIP_DB: {says_why}; 5xx {tally.five_xx}",
    )


def disk_full(ctx: Context) -> Row:
    server = ctx.server("full")
    try:
        with load(server, ctx.clients) as tally:
            time.sleep(ctx.short / 3)
            workers = server.workers()
            for pid in workers:  # the disk is full: no file may grow any more
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
            time.sleep(ctx.short / 3)
            # Keep-alive clients may all sit on one worker: ask several times, any worker may answer.
            statuses = {str(server.get("/readyz")[1].get("status")) for _ in range(4 * len(workers))}
            ready = {"status": "degraded" if "degraded" in statuses else ",".join(sorted(statuses))}
            for pid in workers:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            time.sleep(ctx.short / 3)
        _, metrics = server.get_text("/metrics")
    finally:
        server.stop()
    lost = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('herald_audit_records_total{outcome="lost"}')
    )
    events = [r for r in all_records(server.audit) if r.get("kind") == "records_lost"]
    counted = sum(int(r["count"]) for r in events)
    logged = logged_decisions(server.audit)
    unlogged = sum(1 for d in tally.answered if d not in logged)
    intact, verdict = verify(server.audit)
    held = (
        tally.five_xx == 0
        and not tally.errors
        and ready.get("status") == "degraded"
        and lost > 0
        and counted == lost == unlogged
        and intact
    )
    return Row(
        "audit disk full, then writable",
        sum(tally.statuses.values()),
        held,
        f"/readyz {ready.get('status')}; lost {lost:.0f} (metric) = {counted} (records_lost events) = "
        f"{unlogged} (answers not in the log); 5xx {tally.five_xx}; verify: {verdict}",
    )


def truncate_restart(ctx: Context) -> Row:
    """Issue 11: the last records of a stopped writer's file are cut, and the service restarted
    (which used to adopt the cut file as a crash and hide the cut). Verify must name the file and
    exactly the missing seqs."""
    server = ctx.server("truncate")
    try:
        with load(server, ctx.clients) as tally:
            time.sleep(ctx.short / 2)
    finally:
        server.stop()
    victim = max(server.audit.glob("audit-*.jsonl"), key=lambda p: p.stat().st_size)
    kept = victim.read_bytes().splitlines(keepends=True)
    cut = [orjson.loads(line)["seq"] for line in kept[-5:]]
    victim.write_bytes(b"".join(kept[:-5]))
    again = Server(server.work, ctx.workers, {"HERALD_GEOIP_DB": str(ctx.db)})
    time.sleep(1)
    again.stop()
    result = subprocess.run(
        [str(HERALD), "audit", "verify", str(server.audit)], capture_output=True, text=True, timeout=300
    )
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    named = f"seq {cut[0]}..{cut[-1]} missing"
    held = (
        result.returncode == 1
        and len(failed) == 1
        and victim.name in failed[0]
        and named in failed[0]
        and tally.five_xx == 0
    )
    return Row(
        "truncate a stopped file, restart",
        sum(tally.statuses.values()),
        held,
        f"cut {named} of {victim.name}; verify: {failed[0][6:] if failed else result.stdout[-200:]}",
    )


def kill_checkpoint(ctx: Context) -> Row:
    """Workers killed with SIGKILL again and again while they checkpoint every 5 ms (with an fsync
    each): kills land in the middle of checkpoints. Every restarted worker must adopt the dead one's
    file (it matches its last checkpoint), nothing may be refused, and the log must verify."""
    server = ctx.server("killcheckpoint", HERALD_AUDIT_CHECKPOINT_S="0.005", HERALD_AUDIT_FSYNC="always")
    kills = 0
    try:
        with load(server, ctx.clients) as tally:
            deadline = time.monotonic() + ctx.short
            while time.monotonic() < deadline:
                time.sleep(ctx.short / 8)
                workers = server.workers()
                if workers:
                    os.kill(random.choice(workers), signal.SIGKILL)
                    kills += 1
            time.sleep(2)  # the last replacement boots and adopts
    finally:
        server.stop()
    ok, detail = complete(tally, server.audit)
    records = list(all_records(server.audit))
    refused = sum(1 for r in records if r.get("kind") == "adoption_refused")
    recovered = sum(1 for r in records if r.get("kind") == "recovered")
    checkpoints = sum(
        len(p.read_bytes().splitlines()) for p in (server.audit / "checkpoints").glob("checkpoints-*.jsonl")
    )
    failed = sum(tally.errors.values()) + tally.five_xx
    held = ok and refused == 0 and recovered >= kills and failed <= ctx.clients * kills
    return Row(
        "kill -9 during checkpoints",
        sum(tally.statuses.values()),
        held,
        f"{kills} kills among {checkpoints} checkpoints ({checkpoints / ctx.short:.0f}/s); recovered "
        f"{recovered}, refused {refused}; failed requests {failed}; {detail}",
    )


def all_records(audit: Path) -> Iterator[dict[str, object]]:
    for path in sorted(audit.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue


@dataclass
class Context:
    work: Path
    seconds: float
    short: float
    clients: int
    workers: int
    db: Path

    def server(self, name: str, **env: str) -> Server:
        work = self.work / name
        work.mkdir()
        return Server(work, self.workers, {"HERALD_GEOIP_DB": str(self.db)} | env)


SCENARIOS: list[Callable[[Context], Row]] = [
    sustained,
    kill_worker,
    broken_rules,
    crashing_rules,
    geoip_faults,
    geoip_missing,
    disk_full,
    truncate_restart,
    kill_checkpoint,
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of the sustained-load run")
    parser.add_argument("--short", type=float, default=8, help="length of each fault scenario")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, audit files)")
    parser.add_argument("--only", nargs="*", choices=[s.__name__ for s in SCENARIOS], help="run only these")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="herald-soak-"))
    try:
        db = build_city_db(work / "City.mmdb")
        ctx = Context(work, args.seconds, args.short, args.clients, args.workers, db)
        rows = []
        for scenario in [s for s in SCENARIOS if not args.only or s.__name__ in args.only]:
            row = scenario(ctx)
            rows.append(row)
            print(
                f"{row.scenario}: {'held' if row.held else 'FAILED'} ({row.requests} requests) {row.detail}",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    width = max(len(r.scenario) for r in rows)
    print(f"\n{'scenario'.ljust(width)}  requests  held")
    for row in rows:
        print(f"{row.scenario.ljust(width)}  {row.requests:>8}  {'yes' if row.held else 'NO'}")
    held = sum(r.held for r in rows)
    print(f"soak: {held} passed, {len(rows) - held} failed")
    return 0 if held == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
