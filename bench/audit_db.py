"""The PostgreSQL audit store: shipping speed, and the summary over 10 million decisions.

Prints `ship_records_per_s` (realistic chained decision files verified and copied by one shipper,
and by two at once), `db_summary_s_10m` (the summary, by day x country, over 10M decisions in the
database) and beside them the DuckDB summary of the same shipped files and of the same rows in the
database. The server is started here (tests/postgres.py) with durable settings (fsync on).
Usage: python bench/audit_db.py [--ship N] [--summary N] [--quick]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audit import _block  # noqa: E402  (bench/audit.py: realistic chained decision records)

from service.audit import db  # noqa: E402
from service.audit.chain import Chain  # noqa: E402
from service.audit.files import file_name  # noqa: E402
from service.audit.ship import Shipper  # noqa: E402
from service.audit.store import connect, ensure_partitions, upgrade  # noqa: E402
from service.audit.summary import summarize  # noqa: E402
from tests.postgres import running  # noqa: E402

HERALD = Path(sys.executable).parent / "herald"
# Durable, as a production log store would run; WAL sized for bulk loads (fewer checkpoints).
DURABLE = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
}
PER_FILE = 100_000


def write_files(directory: Path, total: int, node: str) -> int:
    """`total` decisions in files of PER_FILE, each a whole chain (one day per file)."""
    directory.mkdir(parents=True)
    for n in range(total // PER_FILE):
        day = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(days=n)
        data, _ = _block(day, PER_FILE, Chain())
        (directory / file_name(day, node, 1, n)).write_bytes(data)
    return total // PER_FILE * PER_FILE


def database(url: str, name: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    target = url.rsplit("/", 1)[0] + "/" + name
    with connect(target) as conn:
        upgrade(conn)
    return target


def ship_speed(work: Path, url: str, total: int) -> None:
    one = work / "one"
    started = time.monotonic()
    count = write_files(one, total, "bench")
    print(
        f"ship_generated: {count} records, {sum(p.stat().st_size for p in one.iterdir()) / 1e6:.0f} MB "
        f"in {time.monotonic() - started:.0f} s"
    )
    target = database(url, "ship_one")
    with connect(target) as conn:
        started = time.monotonic()
        shipped = Shipper(conn, one, Chain()).ship()
        took = time.monotonic() - started
    assert shipped.records == count, shipped
    print(f"ship_records_per_s: {count / took:.0f}  ({count} records in {took:.1f} s, one shipper)")

    # Two nodes shipping at once (one shipper each), as a fleet does.
    two = [work / "n1", work / "n2"]
    half = count // 2 // PER_FILE * PER_FILE
    for directory, node in zip(two, ("n1", "n2"), strict=True):
        write_files(directory, half, node)
    target = database(url, "ship_two")
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [str(HERALD), "audit", "ship", "--dir", str(d), "--db", target], stdout=subprocess.DEVNULL
        )
        for d in two
    ]
    assert all(p.wait() == 0 for p in processes)
    took = time.monotonic() - started
    print(f"ship_records_per_s_two_nodes: {2 * half / took:.0f}  ({2 * half} records in {took:.1f} s)")

    times_files, times_db = [], []
    with connect(target.replace("ship_two", "ship_one")) as conn:
        for _ in range(3):
            started = time.monotonic()
            by_files = summarize([one])
            times_files.append(time.monotonic() - started)
            started = time.monotonic()
            by_db = db.summarize(conn, None, None)
            times_db.append(time.monotonic() - started)
    assert {k: (r.decisions, dict(r.notices)) for k, r in by_files.items()} == {
        k: (r.decisions, dict(r.notices)) for k, r in by_db.items()
    }
    print(f"file_summary_s_{count // 1000}k (DuckDB over the files): {statistics.median(times_files):.2f}")
    print(f"db_summary_s_{count // 1000}k (same records, in the database): {statistics.median(times_db):.2f}")


# 10M decisions made by the database itself: 10 months x 1M, realistic spread of countries and notices.
# The `record` text is filler as long as a real record (~870 bytes), so the table is as wide as a real
# one (records under 2 kB stay in the row); the summary reads the index, not the rows.
_GENERATE = """
INSERT INTO decisions (node, file, seq, day, logged_at, decided_at, decision_id, country, subdivision,
                       source, publisher, article_id, notices, rules, ruleset, what_if, record)
SELECT 'gen', 'audit-gen-' || (g / 100000), g %% 100000, t::date, t, t, md5(g::text),
       c.country, c.subdivision, 'geoip', 'rferl', (g %% 5000)::text,
       CASE WHEN c.shown THEN ARRAY['rferl-undesirable'] ELSE '{}' END,
       CASE WHEN c.shown THEN ARRAY['rferl-undesirable-russia'] ELSE '{}' END,
       'sha256:c2', g %% 50 = 0, '{"generated":' || g || ',"filler":"' || repeat(md5(g::text), 26) || '"}'
FROM generate_series(%(first)s::bigint, %(last)s::bigint) g
CROSS JOIN LATERAL (SELECT timestamptz '2025-01-01' + (g * interval '2.6 seconds') AS t) ts
JOIN (VALUES (0, 'RU', NULL, true), (1, 'RU', 'RU-MOW', true), (2, 'UA', 'UA-43', true),
             (3, 'UA', 'UA-30', false), (4, 'US', NULL, false), (5, 'DE', 'DE-BE', false),
             (6, NULL, NULL, true), (7, 'GB', NULL, false)) AS c(k, country, subdivision, shown)
  ON c.k = g %% 8
"""


def summary_speed(url: str, total: int) -> None:
    target = database(url, "summary")
    started = time.monotonic()
    with connect(target) as conn:
        months = {datetime(2025, m, 1, tzinfo=UTC).date() for m in range(1, 13)}
        ensure_partitions(conn, months)
        step = 1_000_000
        for first in range(0, total, step):
            conn.execute(_GENERATE, {"first": first, "last": min(total, first + step) - 1})
        conn.execute("VACUUM (ANALYZE) decisions")
        took = time.monotonic() - started
        size = conn.execute(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits "
            "WHERE inhparent = 'decisions'::regclass"
        ).fetchone()
        print(f"db_summary_generated: {total} rows with generate_series in {took:.0f} s")
        plan = conn.execute(
            "EXPLAIN SELECT day, country, notices, count(*) FROM decisions WHERE NOT what_if GROUP BY 1, 2, 3"
        ).fetchall()
        scans = sorted({line.split("Scan")[0].split("->")[-1].strip() for (line,) in plan if "Scan" in line})
        print(f"db_summary_plan: {', '.join(scans)} scan; table with indexes: {size[0] if size else '?'}")
        for by_subdivision in (False, True):
            times = []
            for _ in range(3):
                started = time.monotonic()
                rows = db.summarize(conn, None, None, by_subdivision=by_subdivision)
                times.append(time.monotonic() - started)
            served = sum(r.decisions for r in rows.values())
            assert served == total - len(range(0, total, 50)), served  # what-if decisions left out
            label = "db_summary_s_10m" if total == 10_000_000 else f"db_summary_s_{total // 1000}k"
            suffix = "_by_subdivision" if by_subdivision else ""
            runs = " ".join(f"{t:.2f}" for t in times)
            print(f"{label}{suffix}: {statistics.median(times):.2f}  (runs: {runs})")
        started = time.monotonic()
        db.summarize(conn, "2025-01-10", "2025-01-24")
        print(f"db_summary_s_14_days: {time.monotonic() - started:.3f}")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ship", type=int, default=1_000_000, help="records shipped")
    parser.add_argument("--summary", type=int, default=10_000_000, help="rows summarized")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200k shipped, 1M summarized")
    args = parser.parse_args()
    if args.quick:
        args.ship, args.summary = 200_000, 1_000_000
    random.seed(7)
    work = Path(tempfile.mkdtemp(prefix="herald-bench-db-"))
    try:
        with running(DURABLE) as server:
            ship_speed(work, server.url(), args.ship)
            summary_speed(server.url(), args.summary)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
