"""Which dead writer's file a starting writer continues: only one that matches its last checkpoint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from service.audit.checkpoint import Checkpoint, latest_by_file, read_checkpoints
from service.audit.files import (
    first_record,
    head_records,
    is_held,
    log_files,
    parse_name,
    read_tail,
    record_ending_at,
)
from service.audit.records import Fields

_HEAD_EVENTS = frozenset({"adoption_refused", "recovered"})


@dataclass
class Adoption:
    """The file to continue (if any), where its chain ends, and the events for the new file's head."""

    orphan: Path | None = None
    seq: int | None = None  # seq and hash to continue from, when the orphan holds a record
    prev: str | None = None
    events: list[tuple[str, Fields]] = field(default_factory=list)


def adoption(directory: Path, node: str, pid: int, checkpoints: Path, prefer: Path | None) -> Adoption:
    """The oldest file of `node` that nobody continues, that did not end and whose writer is gone
    (a live writer holds a lock on its file), if it matches its checkpoint; files that do not match
    are refused on the way, each with an `adoption_refused` event. Call under the directory lock."""
    mine = [p for p in log_files([directory]) if (parts := parse_name(p.name)) and parts.node == node]
    handled: set[str] = set()
    for p in mine:
        for r in head_records(p, _HEAD_EVENTS):
            handled.update(str(r[k]) for k in ("follows", "refused") if k in r)
    if prefer is not None and prefer in mine:
        mine.remove(prefer)
        mine.insert(0, prefer)
    candidates = []
    for path in mine:
        if path.name in handled or is_held(path):
            continue
        tail = read_tail(path)
        if tail.last is None or tail.last.get("kind") != "stopped" or tail.torn:
            candidates.append(path)
    found = Adoption()
    last = _checkpoints_of(candidates, checkpoints)
    for path in candidates:
        refusal = _refusal(path, last.get(path.name), pid)
        if refusal is None:
            _adopt(found, path, pid)
            break
        if refusal:
            found.events.append(("adoption_refused", refusal))
    return found


def _checkpoints_of(paths: list[Path], directory: Path) -> dict[str, Checkpoint]:
    """The last checkpoints of `paths`, read from checkpoint files no older than the oldest of
    them (a file holds one UTC day, so its checkpoints are in that day's file or later)."""
    if not paths:
        return {}
    days = [f"{parts.opened:%Y%m%d}" for p in paths if (parts := parse_name(p.name))]
    wanted = {p.name for p in paths}
    found = read_checkpoints(directory, since=min(days) if days else "")
    return {k: v for k, v in latest_by_file(found).items() if k in wanted}


def _refusal(path: Path, checkpoint: Checkpoint | None, pid: int) -> Fields | None:
    """None when `path` may be adopted; {} when it needs no adoption (closed, complete); else
    the `adoption_refused` event saying why."""
    tail = read_tail(path)
    last_seq = int(tail.last["seq"]) if tail.last is not None else None
    fields: Fields = {"refused": path.name, "last_seq": last_seq, "pid": pid}
    if checkpoint is None:
        first = first_record(path)
        if first is None or "opened" not in first:
            return None  # written before checkpoints existed: adopted as it always was
        return fields | {"checkpoint": None, "missing": None, "reason": "no checkpoint names this file"}
    head = checkpoint.head
    fields["checkpoint"] = {**head.as_json(), "ts": checkpoint.ts, "state": checkpoint.state}
    fields["missing"] = None
    at_head = record_ending_at(path, head.size)
    matches = at_head is not None and at_head.get("seq") == head.seq and at_head.get("hash") == head.hash
    if matches and not checkpoint.open and not tail.torn and last_seq == head.seq:
        return {}  # its writer closed it, complete, without a stopped event
    if matches and checkpoint.open:
        return None
    if last_seq is None or last_seq < head.seq:
        fields["missing"] = [0 if last_seq is None else last_seq + 1, head.seq]
        fields["reason"] = "shorter than its last checkpoint"
    elif not matches:
        fields["reason"] = "does not hold the record its last checkpoint names"
    else:
        fields["reason"] = "records or bytes after its closing checkpoint"
    return fields


def _adopt(found: Adoption, orphan: Path, pid: int) -> None:
    """Continue `orphan`'s chain; a `recovered` event says so, with any torn last line it left."""
    tail = read_tail(orphan)
    found.orphan = orphan
    if tail.last is not None:
        found.seq, found.prev = int(tail.last["seq"]) + 1, str(tail.last["hash"])
    torn = (
        {"offset": tail.torn_offset, "bytes": len(tail.torn), "sha256": hashlib.sha256(tail.torn).hexdigest()}
        if tail.torn
        else None
    )
    reason = "torn last line (crash mid-write)" if torn else "ended without a stopped event (crash)"
    found.events.append(
        (
            "recovered",
            {
                "file": orphan.name,
                "last_seq": tail.last.get("seq") if tail.last else None,
                "last_hash": tail.last.get("hash") if tail.last else None,
                "torn": torn,
                "reason": reason,
                "pid": pid,
            },
        )
    )
