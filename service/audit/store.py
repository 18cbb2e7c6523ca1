"""The PostgreSQL audit store: connections, versioned migrations, monthly partitions and pruning."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

import orjson
import psycopg

SCHEMA_LOCK = 0x4845524144  # advisory lock key ("HERAD") held while migrating or making partitions


class StoreError(Exception):
    """The database cannot be used as asked: unreachable, not initialised, or at another version."""


def connect(url: str) -> psycopg.Connection[Any]:
    """A connection in UTC (so days are UTC days, as in the files). Autocommit: every change is made
    in an explicit `conn.transaction()`, and a long-lived shipper holds no transaction open between."""
    try:
        conn = psycopg.connect(url, options="-c timezone=UTC", autocommit=True)
    except psycopg.OperationalError as error:
        raise StoreError(f"cannot connect to the audit database: {str(error).strip()}") from None
    return conn


# -- migrations ---------------------------------------------------------------------------------------

_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The SQL files of the package (`service/audit/sql/NNNN_name.sql`), in version order."""
    found = []
    for entry in resources.files("service.audit").joinpath("sql").iterdir():
        match = _MIGRATION.match(entry.name)
        if match is not None:
            found.append(Migration(int(match[1]), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


LATEST = max(m.version for m in migrations())


def version(conn: psycopg.Connection[Any]) -> int:
    """The schema version of the database; 0 when Herald's tables are not there."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('herald_schema') IS NOT NULL")
        exists = cur.fetchone()
        if not exists or not exists[0]:
            return 0
        cur.execute("SELECT coalesce(max(version), 0) FROM herald_schema")
        row = cur.fetchone()
    return int(row[0]) if row else 0


def upgrade(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Applies the migrations the database lacks, each in its own transaction; returns them."""
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS herald_schema (version int PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM herald_schema").fetchone()
        current = int(row[0]) if row else 0
        for migration in migrations():
            if migration.version > current:
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO herald_schema (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied.append(migration)
    return applied


def require_current(conn: psycopg.Connection[Any]) -> None:
    found = version(conn)
    if found == 0:
        raise StoreError("the audit database has no Herald tables: run `herald audit db init --db URL`")
    if found < LATEST:
        raise StoreError(f"the audit database is at version {found}: run `herald audit db upgrade`")
    if found > LATEST:
        raise StoreError(f"the audit database is at version {found}, newer than this Herald ({LATEST})")


# -- partitions ---------------------------------------------------------------------------------------


def month_of(day: str) -> date:
    """The first day of the month of `day` (YYYY-MM-DD)."""
    return date(int(day[:4]), int(day[5:7]), 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"decisions_{month:%Y_%m}"


def ensure_partitions(conn: psycopg.Connection[Any], months: set[date]) -> None:
    """Creates the monthly partitions of `decisions` that are missing, in a short transaction of its
    own (two shippers may ask at once: the lock makes one create, the other find it)."""
    if not months:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        existing = set(partitions(conn))
        for month in sorted(months - existing):
            conn.execute(
                f"CREATE TABLE {partition_name(month)} PARTITION OF decisions "
                f"FOR VALUES FROM ('{month}') TO ('{next_month(month)}')"
            )


def partitions(conn: psycopg.Connection[Any]) -> list[date]:
    """The months that have a partition, oldest first."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'decisions'::regclass"
    ).fetchall()
    months = []
    for (name,) in rows:
        match = re.fullmatch(r"decisions_(\d{4})_(\d{2})", name)
        if match:
            months.append(date(int(match[1]), int(match[2]), 1))
    return sorted(months)


# -- retention ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pruned:
    partitions: list[str]
    heads: list[dict[str, Any]]


def prune(conn: psycopg.Connection[Any], before: date) -> Pruned:
    """Drops every month that ends on or before `before`, with the events of the files of those
    months, and records a `pruned` row with each removed file's chain head (its last seq and hash),
    so `verify --db` still checks that the files kept continue the chains that were removed."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        months = [m for m in partitions(conn) if next_month(m) <= before]
        cut = next_month(months[-1]) if months else None
        if cut is None:
            return Pruned([], [])
        straddling = conn.execute(
            "SELECT node, file FROM files WHERE day < %s AND last_ts >= %s::date LIMIT 1", (cut, cut)
        ).fetchone()
        if straddling is not None:
            raise StoreError(f"{straddling[0]}/{straddling[1]} has records on both sides of {cut}")
        heads = _heads(conn, cut)
        for month in months:
            conn.execute(f"DROP TABLE {partition_name(month)}")
        conn.execute(
            "DELETE FROM events WHERE (node, file) IN (SELECT node, file FROM files WHERE day < %s)", (cut,)
        )
        names = [partition_name(m) for m in months]
        conn.execute(
            "INSERT INTO pruned (before, partitions, heads) VALUES (%s, %s, %s::jsonb)",
            (before, names, orjson.dumps(heads).decode()),
        )
    return Pruned(names, heads)


def _heads(conn: psycopg.Connection[Any], cut: date) -> list[dict[str, Any]]:
    """For each file before `cut` that still has rows: how many, its first and its last record."""
    rows = conn.execute(
        """
        WITH r AS (
            SELECT node, file, seq, record FROM decisions WHERE day < %(cut)s
            UNION ALL
            SELECT e.node, e.file, e.seq, e.record FROM events e
            JOIN files f USING (node, file) WHERE f.day < %(cut)s
        )
        SELECT DISTINCT ON (node, file) node, file, count(*) OVER w, min(seq) OVER w, seq, record
        FROM r
        WINDOW w AS (PARTITION BY node, file)
        ORDER BY node, file, seq DESC
        """,
        {"cut": cut},
    ).fetchall()
    heads = []
    for node, file, count, first_seq, last_seq, record in rows:
        last = orjson.loads(record)
        heads.append(
            {
                "node": node,
                "file": file,
                "records": count,
                "first_seq": first_seq,
                "last_seq": last_seq,
                "last_hash": last.get("hash"),
                "last_kind": last.get("kind"),
            }
        )
    return heads
