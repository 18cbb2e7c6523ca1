"""Ships a node's audit files into the PostgreSQL store: verified, exactly once, resumable."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg

from service.audit.chain import Chain
from service.audit.files import RULESETS, is_held, log_files, parse_name
from service.audit.scan import check_data
from service.audit.store import ensure_partitions, month_of

CHUNK = 16 << 20  # bytes of a file shipped in one transaction
DECISION_COLUMNS = (
    "node, file, seq, day, logged_at, decided_at, decision_id, country, subdivision, source, publisher, "
    "article_id, notices, rules, ruleset, what_if, record"
)
EVENT_COLUMNS = "node, file, seq, logged_at, kind, record"


class ShipError(Exception):
    """A record whose chain does not verify (nothing from it on is shipped), or a bad archived ruleset."""


@dataclass
class Shipped:
    records: int = 0
    files: int = 0
    rulesets: int = 0
    checkpoints: int = 0
    per_file: dict[str, int] = field(default_factory=dict)


def decision_row(node: str, file: str, record: dict[str, Any], text: str) -> tuple[Any, ...]:
    """The typed columns of a decision, in DECISION_COLUMNS order (verify --db recomputes them)."""
    reader = record.get("reader") or {}
    article = record.get("article") or {}
    ts = str(record["ts"])
    return (
        node,
        file,
        record["seq"],
        ts[:10],
        ts,
        record.get("at"),
        record.get("decision_id"),
        reader.get("country"),
        reader.get("subdivision"),
        reader.get("source"),
        article.get("publisher"),
        _text(article.get("id")),
        [str(n.get("id")) for n in record.get("notices") or ()],
        [str(r) for r in record.get("rules") or ()],
        record.get("ruleset"),
        bool(record.get("what_if", False)),
        text,
    )


def event_row(node: str, file: str, record: dict[str, Any], text: str) -> tuple[Any, ...]:
    """An event's columns, in EVENT_COLUMNS order."""
    return (node, file, record["seq"], record["ts"], record.get("kind"), text)


@dataclass(frozen=True, slots=True)
class Position:
    """How far a file is shipped: last seq, bytes, and the hash the next record must follow."""

    seq: int
    offset: int
    last_hash: str | None


@dataclass
class Batch:
    rows: list[str] = field(default_factory=list)  # lines of COPY text
    events: list[str] = field(default_factory=list)
    days: set[str] = field(default_factory=set)  # of the decisions: their month needs a partition
    last: dict[str, Any] | None = None
    size: int = 0  # bytes of the lines verified
    problem: str | None = None
    position: Position = Position(-1, 0, None)  # where the batch starts
    held: bool = True
    torn: bytes = b""
    at_end: bool = False

    @property
    def after(self) -> Position:
        """Where the file is shipped to once this batch is."""
        if self.last is None:
            return Position(self.position.seq, self.position.offset + self.size, self.position.last_hash)
        return Position(int(self.last["seq"]), self.position.offset + self.size, str(self.last["hash"]))


def _escape(text: str) -> str:
    """COPY text escapes: a backslash doubled; tab, newline and return as \\t, \\n, \\r (canonical
    JSON has none of those raw, so that is the rare path)."""
    text = text.replace("\\", "\\\\")
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def copy_line(values: tuple[Any, ...]) -> str:
    """One row in COPY's text format (tab-separated, backslash escapes, \\N for null; lists as
    quoted array literals): formatted here in one pass, several times faster than row by row."""
    cells = []
    for value in values:
        if value is None:
            cells.append("\\N")
        elif isinstance(value, bool):
            cells.append("t" if value else "f")
        elif isinstance(value, list):
            items = ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in value)
            cells.append(_escape("{" + items + "}"))
        elif isinstance(value, str):
            cells.append(_escape(value))
        else:
            cells.append(str(value))
    return "\t".join(cells) + "\n"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def node_of(path: Path) -> str:
    parts = parse_name(path.name)
    return parts.node if parts else "-"


class Shipper:
    """Ships one audit directory. Per file, each transaction takes the file's advisory lock, reads the
    shipped position, verifies the next complete lines along the chain, copies them and moves the
    position: two shippers never ship a record twice, and a killed one loses only its open transaction."""

    def __init__(
        self, conn: psycopg.Connection[Any], directory: Path, chain: Chain, chunk: int = CHUNK
    ) -> None:
        self.conn, self.directory, self.chain, self.chunk = conn, directory, chain, chunk
        self._months: set[Any] = set()
        self._rulesets: set[str] = set()
        self._settled: dict[str, int] = {}  # files shipped whole, no writer holding them: their size

    def ship(self, progress: Callable[[int], None] | None = None) -> Shipped:
        shipped = Shipped()
        shipped.rulesets = self.ship_rulesets()
        # Checkpoints first: each names records written before it, so the records shipped next hold
        # all of them and `verify --db` never sees a checkpoint ahead of its file.
        shipped.checkpoints = self.ship_checkpoints()
        for path in log_files([self.directory]):
            size = path.stat().st_size
            if self._settled.get(path.name) == size:
                continue  # `--follow` comes back every second: closed files are not read again
            count = self.ship_file(path, progress)
            if not is_held(path):
                self._settled[path.name] = size
            shipped.files += 1
            shipped.records += count
            shipped.per_file[path.name] = count
        return shipped

    # -- one file ------------------------------------------------------------------------------------

    def ship_file(self, path: Path, progress: Callable[[int], None] | None = None) -> int:
        node, name = node_of(path), path.name
        parts = parse_name(name)
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO files (node, file, day) VALUES (%s, %s, coalesce(%s, current_date)) "
                "ON CONFLICT DO NOTHING",
                (node, name, parts.opened.date() if parts else None),
            )
        total = 0
        # While one batch is copied (the database works, this process waits), the next is read and
        # verified on a thread: on two cores that overlaps Python's share with PostgreSQL's.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="herald-ship") as pool:
            ahead = pool.submit(self._prepare, path, node, name, self._position(node, name))
            while True:
                batch = ahead.result()
                if batch.problem is None and not batch.at_end:
                    ahead = pool.submit(self._prepare, path, node, name, batch.after)
                if not self._commit(node, name, batch):
                    # Another shipper moved on meanwhile: read again from where it stopped.
                    if batch.problem is None and not batch.at_end:
                        ahead.result()
                    ahead = pool.submit(self._prepare, path, node, name, self._position(node, name))
                    continue
                count = len(batch.rows) + len(batch.events)
                total += count
                if progress is not None:
                    progress(count)
                if batch.problem is not None:
                    raise ShipError(f"{path}:{batch.problem}")
                if batch.at_end:
                    return total

    def _prepare(self, path: Path, node: str, name: str, position: Position) -> Batch:
        """The next complete lines of `path` after `position`, verified and formatted for COPY."""
        held = is_held(path)  # before reading: a writer that stops after this leaves no torn tail
        with path.open("rb") as f:
            f.seek(position.offset)
            data = f.read(self.chunk)
            if len(data) == self.chunk:
                data += f.readline()  # to the end of the line: a batch holds at least one record
        cut = data.rfind(b"\n") + 1
        batch = self._verified(path, node, name, data[:cut], position)
        batch.position, batch.held, batch.at_end = position, held, len(data) < self.chunk
        batch.torn = data[cut:] if not held and batch.at_end else b""
        return batch

    def _commit(self, node: str, name: str, batch: Batch) -> bool:
        """Copies `batch` and moves the file's position, in one transaction under the file's lock;
        False (nothing done) if the position is no longer the one the batch follows."""
        months = {month_of(m) for m in batch.days} - self._months
        ensure_partitions(self.conn, months)
        self._months |= months
        position = batch.position
        with self.conn.transaction():
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"herald-ship:{node}/{name}",)
            )
            if self._position(node, name) != position:
                return False
            if batch.last is None and not self._changed(node, name, batch.held, batch.torn):
                return True
            self._copy(batch.rows, batch.events)
            after = batch.after
            self.conn.execute(
                "UPDATE files SET shipped_seq = %s, shipped_offset = %s, last_hash = %s, "
                "last_ts = coalesce(%s, last_ts), held = %s, torn = %s, shipped_at = now() "
                "WHERE node = %s AND file = %s",
                (
                    after.seq,
                    after.offset,
                    after.last_hash,
                    batch.last.get("ts") if batch.last else None,
                    batch.held,
                    batch.torn or None,
                    node,
                    name,
                ),
            )
        return True

    def _position(self, node: str, name: str) -> Position:
        row = self.conn.execute(
            "SELECT shipped_seq, shipped_offset, last_hash FROM files WHERE node = %s AND file = %s",
            (node, name),
        ).fetchone()
        assert row is not None
        return Position(int(row[0]), int(row[1]), row[2])

    def _changed(self, node: str, name: str, held: bool, torn: bytes) -> bool:
        row = self.conn.execute(
            "SELECT held, torn FROM files WHERE node = %s AND file = %s", (node, name)
        ).fetchone()
        return row is None or row[0] != held or bytes(row[1] or b"") != torn

    def _verified(self, path: Path, node: str, name: str, chunk: bytes, position: Position) -> Batch:
        """Rows for the lines of `chunk` whose chain verifies (the same check as `herald audit verify`),
        and where the first one that does not is (its seq and what is wrong), if any."""
        start = (position.seq + 1, position.last_hash) if position.last_hash is not None else None
        checked: list[dict[str, Any]] = []
        check = check_data(path, chunk, self.chain, start=start, keep=checked)
        batch = Batch()
        for raw, record in zip(chunk.splitlines(), checked, strict=False):
            text = raw.decode()
            if record.get("kind") == "decision":
                batch.rows.append(copy_line(decision_row(node, name, record, text)))
                batch.days.add(str(record["ts"])[:10])
            else:
                batch.events.append(copy_line(event_row(node, name, record, text)))
            batch.size += len(raw) + 1
            batch.last = record
        if check.problem is not None:
            p = check.problem
            batch.problem = f"{p.seq}: {p.kind}: {p.detail} (not shipped; `herald audit verify` tells more)"
        return batch

    def _copy(self, rows: list[str], events: list[str]) -> None:
        with self.conn.cursor() as cur:
            for table, columns, lines in (
                ("decisions", DECISION_COLUMNS, rows),
                ("events", EVENT_COLUMNS, events),
            ):
                if lines:
                    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        copy.write("".join(lines).encode())

    # -- rulesets and checkpoints -------------------------------------------------------------------

    def ship_rulesets(self) -> int:
        """Archived rulesets not yet in the store, each checked against its hash first."""
        folder = self.directory / RULESETS
        if not folder.is_dir():
            return 0
        if not self._rulesets:
            self._rulesets = {r[0] for r in self.conn.execute("SELECT hash FROM rulesets").fetchall()}
        count = 0
        for path in sorted(folder.glob("*.json")):
            name = "sha256:" + path.stem
            if name in self._rulesets:
                continue
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != path.stem:
                raise ShipError(f"{path}: contents do not match the hash in its name")
            with self.conn.transaction():
                self.conn.execute(
                    "INSERT INTO rulesets (hash, canonical) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (name, data),
                )
            self._rulesets.add(name)
            count += 1
        return count

    def ship_checkpoints(self) -> int:
        """Checkpoint logs (`checkpoints.jsonl`, or `checkpoints/*.jsonl`): every complete line, once."""
        sources = [
            self.directory / "checkpoints.jsonl",
            *sorted((self.directory / "checkpoints").glob("*.jsonl")),
        ]
        count = 0
        for source in (s for s in sources if s.is_file()):
            rows = list(_checkpoint_rows(source))
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO checkpoints (node, source, line, record) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    rows,
                )
                count += max(cur.rowcount, 0)  # the lines new to the store (psycopg sums them)
        return count


def _checkpoint_rows(source: Path) -> Iterable[tuple[str, str, int, str]]:
    with source.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                return
            text = raw.rstrip(b"\n").decode()
            try:
                node = str(orjson.loads(text).get("node", "-"))
            except (orjson.JSONDecodeError, AttributeError):
                node = "-"
            yield node, source.name, number, text


def follow(shipper: Shipper, interval: float, stop: Callable[[], bool]) -> None:
    """Ships, then ships again every `interval` seconds what the writers appended, until `stop()`."""
    while not stop():
        shipper.ship()
        deadline = time.monotonic() + interval
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.2, interval))
