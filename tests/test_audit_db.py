"""The PostgreSQL audit store against a real server: shipping exactly once, and every tool giving
on the database what it gives on the files (tests/postgres.py starts the server; never a mock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from service.audit.chain import Chain
from service.audit.ship import ShipError, Shipper
from service.audit.store import connect
from service.audit.writer import AuditWriter
from service.cli import main
from service.config import Settings
from service.web import create_app
from service.web.runtime import runtime
from tests.audit_support import lines, rewrite, ticking, write_log
from tests.test_audit_selection import Mixed, mixed  # noqa: F401 - a fixture
from tests.test_audit_tools import _serve_a_day

HERALD = Path(sys.executable).parent / "herald"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def ship(directory: Path, url: str, *extra: str) -> tuple[int, str]:
    return run("audit", "ship", "--dir", str(directory), "--db", url, *extra)


def count(url: str, table: str = "decisions") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def sql(url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(statement, params or None)


def record_count(directory: Path) -> int:
    return sum(len(lines(p)) for p in directory.glob("audit-*.jsonl"))


@pytest.fixture
def two_nodes(settings: Settings, tmp_path: Path) -> list[Path]:
    """A day of varied decisions served by two nodes, each with its own log directory."""
    directories = []
    for node in ("n1", "n2"):
        directory = tmp_path / node
        _serve_a_day(settings.model_copy(update={"audit_dir": directory}), node)
        directories.append(directory)
    return directories


def test_every_tool_gives_the_same_on_the_database_as_on_the_files(
    two_nodes: list[Path], audit_db: str
) -> None:
    for directory in two_nodes:
        code, output = ship(directory, audit_db)
        assert code == 0, output
    assert count(audit_db) + count(audit_db, "events") == sum(record_count(d) for d in two_nodes)
    files = [str(d) for d in two_nodes]
    stamps = sorted(
        orjson.loads(line)["ts"] for d in two_nodes for p in d.glob("*.jsonl") for line in lines(p)
    )
    start, end = stamps[100], stamps[200]  # the records were written just now: take a part of them
    for command in (
        ["summary", "--format", "json"],
        ["summary", "--by-subdivision", "--format", "csv"],
        ["summary", "--from", start[:10], "--to", "2999-01-01"],
        ["query", "--kind", "all"],
        ["query", "--country", "RU", "--format", "table"],
        ["query", "--notice", "rferl-undesirable", "--from", start, "--to", end],
        ["query", "--kind", "all", "--from", start],
        ["export"],
        ["export", "--format", "jsonl"],
    ):
        on_files = run("audit", *command, *files)
        on_db = run("audit", *command, "--db", audit_db)
        assert on_files == on_db and on_files[0] == 0 and on_files[1].strip(), command
    replayed_files = run("audit", "replay", "--all", *[a for d in files for a in ("-d", d)])
    assert replayed_files == run("audit", "replay", "--all", "--db", audit_db)
    assert replayed_files[0] == 0 and replayed_files[1].startswith("336 same")
    code, output = run("audit", "verify", "--db", audit_db)
    code_files, output_files = run("audit", "verify", *files)
    assert code == code_files == 0 and "intact: 2 files, 342 records, 1 rulesets" in output
    # Each node's directory archives the ruleset it loaded; the database keeps it once. Every file and
    # each node's checkpoint log: the same lines.
    assert [n for n in _names(output) if ".jsonl" in n] == [n for n in _names(output_files) if ".jsonl" in n]
    assert "4 checkpoints" in output_files and "4 checkpoints" in output


@pytest.mark.parametrize(
    "selection",
    [
        ["--what-if", "include"],
        ["--what-if", "only"],
        ["--by", "decided"],
        ["--by", "decided", "--what-if", "include"],
        ["--by", "decided", "--what-if", "only", "--from", "2025-07-04", "--to", "2025-07-04"],
        ["--from", "2025-06-01", "--to", "2025-06-01"],  # `to` a date: the whole day
        ["--from", "2025-06-01T12:00:00Z", "--to", "2025-06-02T06:00:00Z"],  # instants, both included
        ["--by", "decided", "--from", "2025-06-01T06:00:00Z", "--to", "2025-06-01T06:00:00Z"],
    ],
)
def test_what_ifs_and_times_select_the_same_on_the_database(
    mixed: Mixed,  # noqa: F811 - the fixture imported above
    audit_db: str,
    selection: list[str],
) -> None:
    """Page views and what-ifs, by write or decision time, `to` included: the same rows either way."""
    assert ship(mixed.directory, audit_db)[0] == 0
    for command in (["summary", "--format", "json"], ["export", "--format", "jsonl"], ["query"]):
        on_files = run("audit", *command, *selection, str(mixed.directory))
        on_db = run("audit", *command, *selection, "--db", audit_db)
        assert on_files == on_db and on_files[0] == 0, (command, on_files, on_db)


def test_the_summary_endpoint_reads_the_database_alike(
    mixed: Mixed,  # noqa: F811 - the fixture imported above
    audit_db: str,
) -> None:
    assert ship(mixed.directory, audit_db)[0] == 0
    asked = "/v1/audit/summary?by=decided&what_if=include&from=2025-06-01&to=2025-07-04T10:00:00Z"
    on_files = mixed.client.get(asked).get_json()
    runtime(mixed.client.application).settings = runtime(mixed.client.application).settings.model_copy(
        update={"audit_db_url": audit_db}
    )
    on_db = mixed.client.get(asked).get_json()
    assert on_files == on_db and [r["day"] for r in on_db["rows"]] == [
        "2025-06-01",
        "2025-06-02",
        "2025-07-04",
    ]


def _names(output: str) -> list[str]:
    """Verify's lines with the directory (files) or node (database) before each file name cut off."""
    return [" ".join(w.rsplit("/", 1)[-1] for w in line.split(" ")) for line in output.splitlines()]


def test_shipping_twice_ships_nothing_the_second_time(two_nodes: list[Path], audit_db: str) -> None:
    first = ship(two_nodes[0], audit_db)
    assert first[0] == 0 and "shipped 171 records from 1 files, 1 rulesets" in first[1]
    assert ship(two_nodes[0], audit_db) == (
        0,
        "shipped 0 records from 1 files, 0 rulesets, 0 checkpoint lines\n",
    )
    assert count(audit_db) == 168 and count(audit_db, "events") == 3


@pytest.fixture
def big_log(tmp_path: Path) -> Path:
    """About 30,000 records in several files, so shipping in small batches takes a while."""
    directory = tmp_path / "big"
    write_log(directory, 30_000, max_bytes=1 << 20)
    return directory


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts: killed after it, whatever happened (none left running)."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _shipper(directory: Path, url: str) -> subprocess.Popen[bytes]:
    command = [str(HERALD), "audit", "ship", "--dir", str(directory), "--db", url, "--batch-bytes", "16384"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_shipper_killed_half_way_loses_and_repeats_nothing(
    big_log: Path, audit_db: str, spawned: list[subprocess.Popen[bytes]]
) -> None:
    process = _shipper(big_log, audit_db)
    spawned.append(process)
    deadline = time.monotonic() + 60
    while count(audit_db) < 3000 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert 0 < count(audit_db) < 30_000, "not killed half-way"
    code, output = ship(big_log, audit_db)
    assert code == 0, output
    assert count(audit_db) == 30_000 and count(audit_db, "events") == 2
    assert run("audit", "verify", "--db", audit_db)[0] == 0


def test_two_shippers_at_once_ship_every_record_once(
    big_log: Path, audit_db: str, spawned: list[subprocess.Popen[bytes]]
) -> None:
    processes = [_shipper(big_log, audit_db) for _ in range(2)]
    spawned += processes
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert count(audit_db) == 30_000 and count(audit_db, "events") == 2
    code, output = run("audit", "verify", "--db", audit_db)
    assert code == 0 and "intact: 8 files, 30002 records" in output, output


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (
            "UPDATE decisions SET record = replace(record, '\"i\":5', '\"i\":6') WHERE seq = 6",
            "seq 6 (line 7): modified",
        ),
        (
            "UPDATE decisions SET country = 'RU' WHERE seq = 4",
            "seq 4 (line 5): modified: columns differ from the record: country",
        ),
        ("DELETE FROM decisions WHERE seq = 3", "seq 3 (line 4): deleted"),
        ("DELETE FROM events WHERE kind = 'stopped'", "seq 9 (line 10): truncated"),
        ("UPDATE decisions SET record = '{}' WHERE seq = 2", "seq 2 (line 3): modified: not a record"),
        (  # the end cut off, and the files table told so: the file's closing checkpoint still tells
            "DELETE FROM events WHERE kind = 'stopped'; DELETE FROM decisions WHERE seq >= 7;"
            "UPDATE files SET shipped_seq = 6",
            "seq 7 (line 8): truncated: shorter than its checkpoint",
        ),
    ],
)
def test_a_changed_row_is_found_by_verify_db(
    tmp_path: Path, audit_db: str, change: str, finding: str
) -> None:
    write_log(tmp_path, 8)
    assert ship(tmp_path, audit_db)[0] == 0
    assert run("audit", "verify", "--db", audit_db)[0] == 0
    sql(audit_db, change)
    code, output = run("audit", "verify", "--db", audit_db)
    assert code == 1 and f"FAIL  n1/audit-20250601T000000-n1-{os.getpid()}-0000.jsonl: {finding}" in output, (
        output
    )


@pytest.mark.parametrize("option", [["--checkpoints", "."], ["--witness", "."], ["--as-of", "2025-06-01"]])
def test_verify_db_refuses_the_options_about_directories(audit_db: str, option: list[str]) -> None:
    code, output = run("audit", "verify", "--db", audit_db, *option)
    assert code == 2 and "are about log directories, not --db" in output


def test_a_record_whose_chain_breaks_is_not_shipped(tmp_path: Path, audit_db: str) -> None:
    (path,) = write_log(tmp_path, 8)
    content = lines(path)
    content[5] = content[5].replace(b'"i":4', b'"i":40')
    rewrite(path, content)
    code, output = ship(tmp_path, audit_db)
    assert code == 1 and f"not shipped: {path}:5: modified" in output
    assert count(audit_db) + count(audit_db, "events") == 5  # seq 0..4, before the broken one
    assert ship(tmp_path, audit_db)[0] == 1 and count(audit_db) == 4  # and never after it


def test_a_torn_tail_is_kept_aside_and_verified_as_on_files(tmp_path: Path, audit_db: str) -> None:
    (path,) = write_log(tmp_path, 3)
    with path.open("ab") as f:
        f.write(b'{"half a rec')
    assert ship(tmp_path, audit_db)[0] == 0
    on_files, on_db = run("audit", "verify", str(tmp_path)), run("audit", "verify", "--db", audit_db)
    assert on_files[0] == on_db[0] == 1 and "torn: 12 bytes after the last complete line" in on_db[1]
    assert _names(on_files[1]) == _names(on_db[1])


def test_follow_ships_what_a_live_writer_appends(
    tmp_path: Path, audit_db: str, spawned: list[subprocess.Popen[bytes]]
) -> None:
    writer = AuditWriter(tmp_path, node="live", chain=Chain(None), clock=ticking())
    writer.open()
    writer.write("started", {"pid": writer.pid})
    command = [
        str(HERALD),
        "audit",
        "ship",
        "--follow",
        "--interval",
        "0.1",
        "--dir",
        str(tmp_path),
        "--db",
        audit_db,
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    spawned.append(process)
    try:
        for i in range(50):
            writer.write("decision", {"decision_id": f"d{i}", "reader": {"country": "RU"}})
        deadline = time.monotonic() + 30
        while count(audit_db) < 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert count(audit_db) == 50
        code, output = run("audit", "verify", "--db", audit_db)
        assert code == 0 and "open: being written" in output, output
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        assert process.returncode == 0
        writer.close()


def _months(directory: Path) -> None:
    """Two files: the last seconds of December 2024 and the first of January 2025 (a daily rotation)."""
    write_log(
        directory, 6, clock=ticking(datetime(2024, 12, 31, 23, 59, 56, tzinfo=UTC), timedelta(seconds=1))
    )


def test_prune_drops_whole_months_and_verify_still_checks_the_link(tmp_path: Path, audit_db: str) -> None:
    _months(tmp_path)
    assert ship(tmp_path, audit_db)[0] == 0
    before = run("audit", "summary", "--db", audit_db)[1]
    assert "2024-12-31" in before and "2025-01-01" in before
    assert (
        run("audit", "db", "prune", "--before", "2024-12-15", "--db", audit_db)[1]
        == "nothing to prune before 2024-12-15\n"
    )
    code, output = run("audit", "db", "prune", "--before", "2025-01-01", "--db", audit_db)
    assert code == 0 and output == "dropped decisions_2024_12; 1 files' chain heads kept\n"
    code, output = run("audit", "verify", "--db", audit_db)
    assert code == 0 and "(pruned: seq 0..2, 3 records)" in output, output
    assert "2024-12-31" not in run("audit", "summary", "--db", audit_db)[1]
    with psycopg.connect(audit_db) as conn:
        (heads,) = conn.execute("SELECT heads FROM pruned").fetchone() or [None]
    assert [h["last_seq"] for h in heads] == [2]
    sql(audit_db, "UPDATE pruned SET heads = jsonb_set(heads, '{0,last_hash}', '\"0000\"')")
    code, output = run("audit", "verify", "--db", audit_db)
    assert code == 1 and "truncated" in output, output


def test_db_init_upgrade_and_an_uninitialised_database(postgres: Any) -> None:
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE fresh_init")
    url = postgres.url("fresh_init")
    code, output = run("audit", "summary", "--db", url)
    assert code == 1 and "no Herald tables: run `herald audit db init" in output
    assert run("audit", "db", "init", "--db", url) == (0, "initialised at version 1\n")
    assert run("audit", "db", "upgrade", "--db", url) == (0, "at version 1 (was 1; nothing to do)\n")
    code, output = run("audit", "verify", "--db", "postgresql://herald@127.0.0.1:1/none")
    assert code == 1 and "cannot connect to the audit database" in output


def test_checkpoints_are_shipped_once(tmp_path: Path, audit_db: str) -> None:
    write_log(tmp_path, 2)
    (tmp_path / "checkpoints.jsonl").write_text(
        '{"node":"n1","heads":{}}\n{"node":"n1","heads":{"a":1}}\n{"torn'
    )
    written = sum(len(lines(p)) for p in (tmp_path / "checkpoints").glob("checkpoints-*.jsonl"))
    assert written >= 1  # the writer's own checkpoint log, beside the old single file
    assert ship(tmp_path, audit_db)[1].endswith(f"{written + 2} checkpoint lines\n")
    assert ship(tmp_path, audit_db)[1].endswith(" 0 checkpoint lines\n")
    assert count(audit_db, "checkpoints") == written + 2


def test_dashboard_and_http_read_the_database_when_set(
    two_nodes: list[Path], audit_db: str, settings: Settings, tmp_path: Path
) -> None:
    for directory in two_nodes:
        ship(directory, audit_db)
    files = run("audit", "summary", "--format", "json", *map(str, two_nodes))[1]
    app = create_app(
        settings.model_copy(
            update={"audit_http": True, "audit_db": SecretStr(audit_db), "audit_dir": tmp_path / "empty"}
        )
    )
    client = app.test_client()
    body = client.get("/v1/audit/summary").get_json()
    assert "rows" in body, body
    assert body["rows"] == orjson.loads(files)
    decision_id = body and _first_decision(audit_db)
    found = client.get(f"/v1/audit/decisions/{decision_id}").get_json()
    assert found["explanation"]["replay"]["verdict"] == "same"
    page = client.get("/audit?first=2025-06-01&last=2025-06-01")  # the day the records were written
    assert page.status_code == 200 and b"336" in page.data
    runtime(app).audit.stopped()
    broken = create_app(
        settings.model_copy(
            update={"audit_http": True, "audit_db": SecretStr("postgresql://x@127.0.0.1:1/x")}
        )
    )
    response = broken.test_client().get("/v1/audit/summary")
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    runtime(broken).audit.stopped()


def _first_decision(url: str) -> str:
    with connect(url) as conn:
        row = conn.execute("SELECT decision_id FROM decisions ORDER BY logged_at LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


def test_shipper_stops_on_records_written_with_another_key(tmp_path: Path, audit_db: str) -> None:
    write_log(tmp_path, 2, key=b"secret")
    with connect(audit_db) as conn, pytest.raises(ShipError, match=r":0: key needed"):
        Shipper(conn, tmp_path, Chain(None)).ship()
    assert ship(tmp_path, audit_db, "--key", "secret")[0] == 0


def test_odd_characters_survive_the_copy(tmp_path: Path, audit_db: str) -> None:
    writer = AuditWriter(tmp_path, node="n1", chain=Chain(None), clock=ticking())
    writer.open()
    odd = 'tab\there, new\nline, back\\slash, "quote", {brace}, comma, кириллица, \\N'
    writer.write(
        "decision",
        {
            "decision_id": odd,
            "article": {"publisher": odd, "id": 7},
            "reader": {"country": "RU", "subdivision": None},
            "notices": [{"id": odd}, {"id": "plain"}],
            "rules": [odd],
        },
    )
    writer.write("stopped", {"reason": odd})
    writer.close()
    assert ship(tmp_path, audit_db)[0] == 0
    code, output = run("audit", "verify", "--db", audit_db)
    assert code == 0, output
    with psycopg.connect(audit_db) as conn:
        row = conn.execute(
            "SELECT decision_id, publisher, article_id, notices, rules FROM decisions"
        ).fetchone()
    assert row == (odd, odd, "7", [odd, "plain"], [odd])
    assert run("audit", "query", "--kind", "all", str(tmp_path)) == run(
        "audit", "query", "--kind", "all", "--db", audit_db
    )


def test_follow_exits_cleanly_when_the_database_goes_away(tmp_path: Path, postgres: Any) -> None:
    write_log(tmp_path, 2)
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE going TEMPLATE herald_template")
    command = [str(HERALD), "audit", "ship", "--follow", "--interval", "0.1", "--dir", str(tmp_path)]
    process = subprocess.Popen([*command, "--db", postgres.url("going")], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while count(postgres.url("going"), "events") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # until it has connected and shipped
        with psycopg.connect(postgres.url(), autocommit=True) as conn:
            conn.execute("DROP DATABASE going WITH (FORCE)")
        write_log(tmp_path, 2)  # something to ship: it finds out then
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()  # if it did not exit: never left running after the test
    assert process.returncode == 1 and b"Error: audit database:" in err and b"Traceback" not in err, err
