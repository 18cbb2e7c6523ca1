"""Reads the PostgreSQL audit store the way the file tools read files: records, summary, rulesets,
and verify (the same chain check as on files, fed with the stored canonical text)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from service.audit.archive import ArchiveCheck, ArchiveError
from service.audit.chain import Chain
from service.audit.checkpoint import CHECKPOINTS, Checkpoint, latest_by_file, parse_checkpoint
from service.audit.query import END_OF_TIME, By, Filter, WhatIf
from service.audit.reader import Record
from service.audit.scan import FileCheck, Finding, check_data, parse_record
from service.audit.ship import decision_row
from service.audit.summary import Key, Row
from service.audit.verify import Report, against, checkpoint_log, link
from service.ruleset import Ruleset

Conn = psycopg.Connection[Any]

# Records in the order the file tools merge them: by time, then file name, then seq. The database
# narrows the rows by instants a day wider than asked (it compares instants, the files compare ISO
# text), by kind and by what-if; `Filter.holds` then decides each row, as it does on files.
_RECORDS = """
SELECT record FROM (
    SELECT logged_at, file, seq, record FROM decisions
    WHERE %(decisions)s AND logged_at >= %(logged_from)s AND logged_at < %(logged_to)s
      AND (decided_at IS NULL OR (decided_at >= %(decided_from)s AND decided_at < %(decided_to)s))
      AND (%(what_if)s = 'include' OR what_if = (%(what_if)s = 'only'))
    UNION ALL
    SELECT logged_at, file, seq, record FROM events
    WHERE %(events)s AND logged_at >= %(logged_from)s AND logged_at < %(logged_to)s
      AND (%(kind)s::text IS NULL OR kind = %(kind)s)
) r ORDER BY logged_at, file, seq
"""
SLACK = timedelta(days=2)  # wider than any gap between a text bound and its instant, and than a
# page view's decision and its record (written just after it, perhaps the next day)


def records(conn: Conn, where: Filter) -> Iterator[Record]:
    """The records `where` holds for, as `query.query` gives them from files."""
    logged = (_from(where.start), _to(where.end)) if where.by == "logged" else (_from(None), _to(None))
    decided = (_from(where.start), _to(where.end)) if where.by == "decided" else (_from(None), _to(None))
    if where.by == "decided" and where.what_if == "exclude":
        logged = decided  # page views are written just after they are decided (what-ifs: any time)
    params = {
        "logged_from": logged[0],
        "logged_to": logged[1],
        "decided_from": decided[0],
        "decided_to": decided[1],
        "what_if": where.what_if,
        "decisions": where.kind in (None, "decision"),
        "events": where.kind != "decision",
        "kind": where.kind,
    }
    # A server-side cursor (it streams, whatever the range) lives in a transaction.
    with conn.transaction(), conn.cursor(name="herald_records") as cur:
        cur.itersize = 5000
        cur.execute(_RECORDS, params)
        for (text,) in cur:
            record: Record = orjson.loads(text)
            if where.holds(record):
                yield record


def _from(start: str | None) -> datetime:
    value = _parsed(start, FIRST)
    return value - SLACK if value - FIRST > SLACK else FIRST


def _to(end: str | None) -> datetime:
    value = _parsed(end, LAST)
    return value + SLACK if LAST - value > SLACK else LAST


FIRST, LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def _parsed(text: str | None, default: datetime) -> datetime:
    """A `bound` (a date, or an ISO instant in UTC) as an instant; `default` for none or END_OF_TIME."""
    if not text or text == END_OF_TIME:
        return default
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return default
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def find_decision(conn: Conn, decision_id: str) -> Record | None:
    row = conn.execute(
        "SELECT record FROM decisions WHERE decision_id = %s LIMIT 1", (decision_id,)
    ).fetchone()
    return orjson.loads(row[0]) if row else None


# The summary, counted by the database. `{day}` and `{range}` come from the fixed texts below, never
# from a caller's. By logged time a range of whole days reads the (day, country, subdivision) index
# alone; an instant at either end adds the exact comparison on `logged_at`.
_SUMMARY = """
SELECT to_char({day}, 'YYYY-MM-DD'), country, {subdivision}, notices, count(*)
FROM decisions
WHERE {range} AND (%(what_if)s = 'include' OR what_if = (%(what_if)s = 'only'))
GROUP BY 1, country, {subdivision}, notices
"""
_DAYS = "day >= %(first_day)s AND day < %(end_day)s"
_LOGGED = _DAYS + " AND logged_at >= %(start)s AND logged_at < %(end)s"
_DECIDED = "decided_at >= %(start)s AND decided_at < %(end)s"


def summarize(
    conn: Conn,
    start: str | None,
    end: str | None,
    *,
    by_subdivision: bool = False,
    by: By = "logged",
    what_if: WhatIf = "exclude",
) -> dict[Key, Row]:
    """`summary.summarize` counted by the database: decisions with `start <= time < end` (`ts` or
    `at` as `by` says), per day of that time x country (x subdivision) x set of notices."""
    whole_days = all(t is None or t == END_OF_TIME or len(t) == 10 for t in (start, end))
    if by == "decided":
        day, where = "decided_at::date", _DECIDED  # the connection is in UTC: UTC days
    else:
        day, where = "day", _DAYS if whole_days else _LOGGED
    sql = _SUMMARY.format(day=day, range=where, subdivision="subdivision" if by_subdivision else "NULL::text")
    params = {
        "start": _parsed(start, FIRST),
        "end": _parsed(end, LAST),
        "first_day": _parsed(start, FIRST).date(),
        "end_day": _end_day(end),
        "what_if": what_if,
    }
    rows: dict[Key, Row] = {}
    for found_day, country, sub, notices, count in conn.execute(sql, params).fetchall():
        row = rows.setdefault((found_day, country, sub), Row())
        row.decisions += count
        for notice in notices:
            row.notices[notice] += count
    return dict(sorted(rows.items(), key=lambda item: tuple(x or "" for x in item[0])))


def _end_day(end: str | None) -> date:
    """The first day after the range: `end` itself when it is a date, else the day after its own."""
    day = _parsed(end, LAST).date()
    if len(end or "") == 10 or day == date.max:
        return day  # a date: the range ends before it; no end: after every day there is
    return day + timedelta(days=1)


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
    # A file a writer held at the last ship may have records its shipped checkpoints name that are not
    # shipped yet (a shipper stopped between the two); a file nobody held was shipped to its end.
    shipped = {
        file: int(seq) if is_held else _ALL
        for node, file, seq, _, is_held, _ in files
        if (node, file) not in pruned
    }
    logs, latest = _checkpoints(conn, chain, shipped)
    for node, file, shipped_seq, shipped_offset, is_held, torn in files:
        path = Path(node) / file
        held[path] = is_held
        if (node, file) in pruned:
            checks.append(_stand_in(path, pruned[(node, file)], bytes(torn or b""), shipped_offset))
            continue
        found = latest.get(file)
        check = _check(conn, path, chain, int(shipped_seq), bytes(torn or b""), found)
        if check.ok and found is not None:
            check.problem = against(check, found)
        checks.append(check)
    link(checks, latest, datetime.now(UTC), held=lambda c: held.get(c.path, False))
    return Report(checks, _rulesets(conn), logs)


def _checkpoints(
    conn: Conn, chain: Chain, shipped: dict[str, int]
) -> tuple[list[FileCheck], dict[str, Checkpoint]]:
    """Each node's checkpoint log rebuilt from its shipped lines and checked as on files, and the
    last checkpoint of each file up to `shipped` (its seq) that is in the store."""
    texts: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for node, source, text in conn.execute(_CHECKPOINT_LINES, (CHECKPOINTS + "-%",)).fetchall():
        texts[node][source].append(text)
    logs: list[FileCheck] = []
    found: list[Checkpoint] = []
    for node, sources in sorted(texts.items()):
        checks = []
        for source, lines in sorted(sources.items()):
            path = Path(node) / CHECKPOINTS / source
            checks.append(check_data(path, "".join(t + "\n" for t in lines).encode(), chain))
            for text in lines:
                record = parse_record(text.encode())
                stated = parse_checkpoint(record, path) if record is not None else None
                if stated is not None and stated.head.seq <= shipped.get(stated.head.file, -1):
                    found.append(stated)
        logs += checkpoint_log(checks)
    return logs, latest_by_file(iter(found))


_ALL = 1 << 62  # every seq
_CHECKPOINT_LINES = (
    "SELECT node, source, record FROM checkpoints WHERE source LIKE %s ORDER BY node, source, line"
)


def _check(
    conn: Conn, path: Path, chain: Chain, shipped_seq: int, torn: bytes, checkpoint: Checkpoint | None
) -> FileCheck:
    node, file = path.parent.name, path.name
    rows = conn.execute(_ROWS, {"node": node, "file": file}).fetchall()
    want = checkpoint.head.seq if checkpoint is not None else None
    check = check_data(path, b"".join(r[1].encode() + b"\n" for r in rows) + torn, chain, want)
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
