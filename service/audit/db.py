"""Reads the PostgreSQL audit store the way the file tools read files: records, summary, rulesets,
and verify (the same chain check as on files, fed with the stored canonical text)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg

from service.audit.archive import ArchiveCheck, ArchiveError
from service.audit.chain import Chain
from service.audit.reader import Record
from service.audit.ship import decision_row
from service.audit.summary import Key, Row
from service.audit.verify import FileCheck, Finding, Report, check_data, link
from service.ruleset import Ruleset

Conn = psycopg.Connection[Any]

# Records in the order the file tools merge them: by time, then file name, then seq.
_RECORDS = """
SELECT record FROM (
    SELECT logged_at, file, seq, record FROM decisions
    WHERE logged_at >= %(start)s AND logged_at < %(end)s AND %(decisions)s
    UNION ALL
    SELECT logged_at, file, seq, record FROM events
    WHERE logged_at >= %(start)s AND logged_at < %(end)s AND %(events)s
      AND (%(kind)s::text IS NULL OR kind = %(kind)s)
) r ORDER BY logged_at, file, seq
"""
EARLIEST, LATEST = "0001-01-01", "9999-12-31"


def records(
    conn: Conn, start: str | None, end: str | None, kind: str | None = "decision"
) -> Iterator[Record]:
    """Records with `start <= ts < end` (ISO text, as the files compare them), of one kind or all."""
    params = {
        "start": _instant(start or EARLIEST),
        "end": _instant(end or LATEST),
        "decisions": kind in (None, "decision"),
        "events": kind != "decision",
        "kind": kind,
    }
    # A server-side cursor (it streams, whatever the range) lives in a transaction.
    with conn.transaction(), conn.cursor(name="herald_records") as cur:
        cur.itersize = 5000
        cur.execute(_RECORDS, params)
        for (text,) in cur:
            yield orjson.loads(text)


def _instant(text: str) -> str:
    """ISO text as PostgreSQL reads it: a date alone is its midnight UTC."""
    return text + "T00:00:00Z" if len(text) == 10 else text


def find_decision(conn: Conn, decision_id: str) -> Record | None:
    row = conn.execute(
        "SELECT record FROM decisions WHERE decision_id = %s LIMIT 1", (decision_id,)
    ).fetchone()
    return orjson.loads(row[0]) if row else None


def summarize(
    conn: Conn, start: str | None, end: str | None, *, by_subdivision: bool = False, what_if: bool = False
) -> dict[Key, Row]:
    """Decisions with `start <= day < end`, counted by the database per day x country (x subdivision)
    and set of notices; what-if decisions only when asked for (they served no reader)."""
    subdivision = "subdivision" if by_subdivision else "NULL::text"
    found = conn.execute(
        f"""
        SELECT to_char(day, 'YYYY-MM-DD'), country, {subdivision}, notices, count(*)
        FROM decisions
        WHERE day >= %s::date AND day < %s::date AND (%s OR NOT what_if)
        GROUP BY day, country, {subdivision}, notices
        """,
        ((start or EARLIEST)[:10], (end or LATEST)[:10], what_if),
    ).fetchall()
    rows: dict[Key, Row] = {}
    for day, country, sub, notices, count in found:
        row = rows.setdefault((day, country, sub), Row())
        row.decisions += count
        for notice in notices:
            row.notices[notice] += count
    return dict(sorted(rows.items(), key=lambda item: tuple(x or "" for x in item[0])))


class DbArchive:
    """Archived rulesets in the store, each checked against its hash when loaded."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def canonical(self, ruleset_hash: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT canonical FROM rulesets WHERE hash = %s", (ruleset_hash,)).fetchone()
        if row is None:
            raise ArchiveError(f"ruleset {ruleset_hash} is not in the audit database")
        data = bytes(row[0])
        if "sha256:" + hashlib.sha256(data).hexdigest() != ruleset_hash:
            raise ArchiveError(f"ruleset {ruleset_hash} in the audit database does not match its hash")
        value: dict[str, Any] = orjson.loads(data)
        return value

    def load(self, ruleset_hash: str) -> Ruleset:
        return Ruleset.from_canonical(self.canonical(ruleset_hash))


# -- verify -------------------------------------------------------------------------------------------

# The typed columns as text, in DECISION_COLUMNS order, to compare with the ones the record gives.
_ROWS = """
SELECT seq, record, ARRAY[node, file, seq::text, day::text,
       to_char(logged_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       to_char(decided_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       decision_id, country, subdivision, source, publisher, article_id],
       notices, rules, ruleset, what_if
FROM decisions WHERE node = %(node)s AND file = %(file)s
UNION ALL
SELECT seq, record, NULL, NULL, NULL, NULL, NULL FROM events WHERE node = %(node)s AND file = %(file)s
ORDER BY 1
"""
_NAMES = (
    "node file seq day logged_at decided_at decision_id country subdivision source publisher article_id "
    "notices rules ruleset what_if"
).split()


def verify(conn: Conn, key: bytes | None = None) -> Report:
    """Every chain rebuilt from the stored canonical text and checked by the code that checks files;
    the typed columns checked against their record; pruned files stand in by their chain heads."""
    chain = Chain(key)
    pruned = _pruned(conn)
    held: dict[Path, bool] = {}
    checks = []
    files = conn.execute(
        "SELECT node, file, shipped_seq, shipped_offset, held, torn FROM files ORDER BY file, node"
    ).fetchall()
    for node, file, shipped_seq, shipped_offset, is_held, torn in files:
        path = Path(node) / file
        held[path] = is_held
        if (node, file) in pruned:
            checks.append(_stand_in(path, pruned[(node, file)], bytes(torn or b""), shipped_offset))
            continue
        checks.append(_check(conn, path, chain, int(shipped_seq), bytes(torn or b"")))
    link(checks, held=lambda c: held.get(c.path, False))
    return Report(checks, _rulesets(conn))


def _check(conn: Conn, path: Path, chain: Chain, shipped_seq: int, torn: bytes) -> FileCheck:
    node, file = path.parent.name, path.name
    rows = conn.execute(_ROWS, {"node": node, "file": file}).fetchall()
    check = check_data(path, b"".join(r[1].encode() + b"\n" for r in rows) + torn, chain)
    mismatch = _columns_mismatch(node, file, rows)
    if mismatch is not None and (check.problem is None or (check.problem.seq or 0) >= (mismatch.seq or 0)):
        check.problem = mismatch
    elif check.ok and (check.last["seq"] if check.last else -1) < shipped_seq:
        last = check.last["seq"] if check.last else -1
        detail = f"seq {last + 1}..{shipped_seq} were shipped but are not in the database"
        check.problem = Finding("truncated", last + 1, check.records + 1, detail)
    return check


def _columns_mismatch(node: str, file: str, rows: list[tuple[Any, ...]]) -> Finding | None:
    """The first decision whose typed columns do not say what its record says (summaries read them)."""
    for line, (seq, text, scalars, notices, rules, ruleset, what_if) in enumerate(rows, start=1):
        if scalars is None:
            continue
        try:
            want = decision_row(node, file, orjson.loads(text), text)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            continue  # the chain check names a record that is not one
        got = (*scalars, notices, rules, ruleset, what_if)
        expected = (*(None if v is None else str(v) for v in want[:12]), *want[12:16])
        wrong = [name for name, a, b in zip(_NAMES, got, expected, strict=True) if a != b]
        if wrong:
            return Finding("modified", seq, line, f"columns differ from the record: {', '.join(wrong)}")
    return None


def _pruned(conn: Conn) -> dict[tuple[str, str], dict[str, Any]]:
    heads: dict[tuple[str, str], dict[str, Any]] = {}
    for (entries,) in conn.execute("SELECT heads FROM pruned ORDER BY id").fetchall():
        for head in entries:
            heads[(head["node"], head["file"])] = head
    return heads


def _stand_in(path: Path, head: dict[str, Any], torn: bytes, offset: int) -> FileCheck:
    """A pruned file, by what `prune` kept of it: its last record's seq, hash and kind."""
    check = FileCheck(path, torn=torn, torn_offset=offset)
    check.last = {"seq": head["last_seq"], "hash": head["last_hash"], "kind": head["last_kind"]}
    check.notes.append(f"pruned: seq {head['first_seq']}..{head['last_seq']}, {head['records']} records")
    return check


def _rulesets(conn: Conn) -> list[ArchiveCheck]:
    found = conn.execute("SELECT hash, canonical FROM rulesets ORDER BY hash").fetchall()
    return [
        ArchiveCheck(
            Path("rulesets") / f"{name.removeprefix('sha256:')}.json",
            "sha256:" + hashlib.sha256(bytes(data)).hexdigest() == name,
        )
        for name, data in found
    ]
