"""What a large rule pack costs `herald serve`: CPU and memory of the master and of each worker.

Writes a seeded synthetic pack of about --mib MiB (bench/common.py's rules), loads it once in a
plain process (load_ruleset and Engine, CPU seconds and peak RSS), then starts a real
`herald serve` on it and, once every worker answers and --settle seconds have passed (so the
workers' first rules checks have run), reads from /proc the CPU seconds, RSS and PSS of the
master and of each worker. Then it edits one rule file and does the same after the hot reload.
`--pythonpath DIR` serves a source tree other than this one (e.g. `git archive REV | tar -x -C DIR`),
to measure a commit before a change with the same script.

First, `rules_load_ms_1000` and `rules_load_s_10000`: YAML files (block style, as editors write
them) of 1,000 and 10,000 rules to a ruleset, hashed and compiled, ready to serve (best CPU time of
3 loads in a fresh process), and `compile_ms_1000`: the engine alone on a loaded ruleset.

Usage: python bench/rules_load.py [--mib 5] [--workers 2] [--settle 8] [--pythonpath DIR] [--quick]
       [--load-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

from common import REPO, figure, free_port, ruleset_data, stop_process, table, write_rules

from tests.mmdb import build_city_db

HERALD = Path(sys.executable).parent / "herald"
RULES_PER_MIB = 2400  # of bench/common.py's synthetic rules, with their notices and regions

LOAD_ONCE = textwrap.dedent(
    """
    import resource, sys, time
    from pathlib import Path
    from service.engine import Engine
    from service.loader import load_ruleset
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.process_time()
    try:
        ruleset = load_ruleset(Path(sys.argv[1]), max_total_bytes=1 << 40)
    except TypeError:  # a tree from before HERALD_RULES_MAX_BYTES
        ruleset = load_ruleset(Path(sys.argv[1]))
    t1 = time.process_time()
    Engine(ruleset)
    t2 = time.process_time()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(t1 - t0, t2 - t1, grown / 1024)
    """
)


LOAD_FIGURES = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from service.engine import Engine
    from service.loader import load_ruleset
    loads, compiles = [], []
    for _ in range(3):
        t0 = time.process_time()
        ruleset = load_ruleset(Path(sys.argv[1]), max_total_bytes=1 << 40)
        ruleset.hash
        t1 = time.process_time()
        Engine(ruleset)
        t2 = time.process_time()
        loads.append(t2 - t0)
        compiles.append(t2 - t1)
    print(min(loads), min(compiles))
    """
)


RSS_AFTER_DECISIONS = textwrap.dedent(
    """
    import gc, sys
    from pathlib import Path
    from service.config import Settings
    from service.web import create_app
    from service.web.runtime import runtime
    sys.path.insert(0, sys.argv[3])
    from common import requests  # after `service`: the tree served (PYTHONPATH) stays the one used

    def rss():
        status = Path("/proc/self/status").read_text()
        return int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmRSS:"))) / 1024

    app = create_app(Settings(rules_dir=Path(sys.argv[1]), audit_dir=Path(sys.argv[2])))
    loaded = rss()
    engine = runtime(app).engine
    for chunk in range(10):  # 100,000 page views, 10,000 at a time: the stream is not kept
        for article, reader, at in requests(10_000, seed=chunk, vary=20):
            engine.decide(article, reader, at)
        gc.collect()
    client = app.test_client()
    assert client.post("/v1/decisions", json={"article": {"publisher": "pub00"}}).status_code == 200
    print(loaded, rss())
    """
)


def yaml_pack(directory: Path, n_rules: int) -> Path:
    """The synthetic pack as block-style YAML files of at most 1,000 rules each."""
    import yaml

    data = ruleset_data(n_rules)
    directory.mkdir(parents=True, exist_ok=True)
    chunks = {"regions.yaml": {"regions": data["regions"]}, "notices.yaml": {"notices": data["notices"]}}
    rules = data["rules"]
    for start in range(0, len(rules), 1000):
        chunks[f"rules-{start // 1000:03d}.yaml"] = {"rules": rules[start : start + 1000]}
    for name, chunk in chunks.items():
        (directory / name).write_text(yaml.safe_dump(chunk, sort_keys=False, allow_unicode=True))
    return directory


def load_figures(work: Path, env: dict[str, str]) -> None:
    for n_rules in (1000, 10_000):
        rules = yaml_pack(work / f"yaml-{n_rules}", n_rules)
        done = subprocess.run(
            [sys.executable, "-c", LOAD_FIGURES, str(rules)],
            env=env,
            cwd=work,  # not the repository: `-c` puts the working directory before PYTHONPATH
            capture_output=True,
            text=True,
            check=True,
        )
        load_s, compile_s = (float(v) for v in done.stdout.split())
        if n_rules == 1000:
            figure("rules_load_ms_1000", load_s * 1000, "ms")
            figure("compile_ms_1000", compile_s * 1000, "ms")
        else:
            figure("rules_load_s_10000", load_s, "s")
            figure("compile_ms_10000", compile_s * 1000, "ms")
            # One worker's memory with 10,000 rules: after load, then after 100,000 decisions with
            # distinct readers (2,000 x 20 articles, 400 x 20 places: the memos fill up).
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    RSS_AFTER_DECISIONS,
                    str(rules),
                    str(work / "audit"),
                    str(REPO / "bench"),
                ],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
                check=True,
            )
            loaded_mb, after_mb = (float(v) for v in done.stdout.split()[-2:])
            figure("rss_mb_10000_rules_loaded", loaded_mb, "MB")
            figure("rss_mb_10000_rules", after_mb, "MB")


def pack(directory: Path, mib: float) -> int:
    """A rule directory of about `mib` MiB; its size in bytes."""
    write_rules(directory, max(50, int(mib * RULES_PER_MIB)), per_file=1000)
    return sum(p.stat().st_size for p in directory.glob("*.yaml"))


def ticks(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """RSS and PSS (shared pages divided among the processes sharing them), in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in ("Rss:", "Pss:"):
            values[parts[0]] = int(parts[1]) / 1024
    return values["Rss:"], values["Pss:"]


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return sorted(int(p) for p in text.split())


def readyz(base: str) -> dict[str, object]:
    with urllib.request.urlopen(base + "/readyz", timeout=60) as response:
        return dict(json.loads(response.read()))


def wait_for_workers(base: str, workers: int, seconds: float, wanted: str | None = None) -> float:
    """Seconds until `workers` distinct workers answered /readyz (serving `wanted`, if given)."""
    started, seen = time.monotonic(), set()
    while time.monotonic() - started < seconds:
        try:
            body = readyz(base)
        except OSError:
            time.sleep(0.2)
            continue
        if wanted is None or body["ruleset"] == wanted:
            seen.add(body["worker"])
        if len(seen) >= workers:
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit(f"only {len(seen)} of {workers} workers ready within {seconds} s")


def snapshot(master: int) -> list[tuple[str, int, float, float, float]]:
    rows = [("master", master, ticks(master), *memory_mb(master))]
    rows += [("worker", pid, ticks(pid), *memory_mb(pid)) for pid in children(master)]
    return rows


def show(label: str, rows: list[tuple[str, int, float, float, float]]) -> None:
    print(f"\n{label}")
    table(
        ["process", "pid", "cpu s", "rss MB", "pss MB"],
        [(role, pid, f"{cpu:.1f}", f"{rss:.0f}", f"{pss:.0f}") for role, pid, cpu, rss, pss in rows],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=float, default=5.0, help="size of the rule pack")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=8.0, help="seconds to wait after the workers answer")
    parser.add_argument("--pythonpath", type=Path, help="serve this source tree instead of this one")
    parser.add_argument("--quick", action="store_true", help="a 0.5 MiB pack (a smoke run)")
    parser.add_argument("--load-only", action="store_true", help="only the load and compile figures")
    args = parser.parse_args()
    mib = 0.5 if args.quick else args.mib
    source = args.pythonpath.resolve() if args.pythonpath else REPO
    with tempfile.TemporaryDirectory(prefix="herald-rules-load-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "PROMETHEUS_"))}
        env["PYTHONPATH"] = str(source)
        load_figures(work, env)
        if args.load_only:
            return
        rules = work / "rules"
        size = pack(rules, mib)
        print(f"pack: {size / 2**20:.2f} MiB in {len(list(rules.glob('*.yaml')))} files; serving {source}")
        once = subprocess.run(
            [sys.executable, "-c", LOAD_ONCE, str(rules)],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        )
        load_s, compile_s, grown_mb = (float(v) for v in once.stdout.split())
        figure("rules_load_cpu_s", load_s, "s")
        figure("rules_compile_cpu_s", compile_s, "s")
        figure("rules_load_rss_mb", grown_mb, "MB")

        env |= {
            "HERALD_RULES_DIR": str(rules),
            "HERALD_GEOIP_DB": str(build_city_db(work / "City.mmdb")),
            "HERALD_AUDIT_DIR": str(work / "audit"),
            "HERALD_ACCESS_LOG": "0",
        }
        if args.pythonpath is None:
            env["HERALD_RULES_MAX_BYTES"] = str(size + 1024)
        port = free_port()
        log = (work / "serve.log").open("wb")
        started = time.monotonic()
        process = subprocess.Popen(
            [str(HERALD), "serve", "--port", str(port), "--workers", str(args.workers)],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for_workers(base, args.workers, 600)
            figure("serve_ready_s", time.monotonic() - started, "s")
            time.sleep(args.settle)
            rows = snapshot(process.pid)
            show(f"after start and {args.settle:g} s", rows)
            workers = [r for r in rows if r[0] == "worker"]
            figure("master_cpu_s", rows[0][2], "s")
            figure("worker_cpu_s_max", max(r[2] for r in workers), "s")
            figure("worker_pss_mb_max", max(r[4] for r in workers), "MB")
            figure("pss_mb_total", sum(r[4] for r in rows), "MB")

            old = str(readyz(base)["ruleset"])
            first = sorted(rules.glob("rules-*.yaml"))[0]
            first.write_text(first.read_text().replace('"rule-00000"', '"rule-00000-edited"'))
            edited = time.monotonic()
            new = old
            while new == old:
                time.sleep(0.2)
                try:
                    new = str(readyz(base)["ruleset"])
                except OSError:
                    continue
            wait_for_workers(base, args.workers, 600, wanted=new)
            figure("hot_reload_s", time.monotonic() - edited, "s")
            after = snapshot(process.pid)
            show("after a hot reload (one file edited)", after)
            spent = {pid: cpu for _, pid, cpu, _, _ in rows}
            figure("master_reload_cpu_s", after[0][2] - rows[0][2], "s")
            figure(
                "worker_reload_cpu_s_max",
                max(cpu - spent.get(pid, 0.0) for role, pid, cpu, _, _ in after if role == "worker"),
                "s",
            )
        finally:
            stop_process(process)
            log.close()


if __name__ == "__main__":
    main()
