"""Checks every chain of one or many audit directories, against their checkpoints, and the archive."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service.audit.archive import ArchiveCheck, verify_archive
from service.audit.chain import GENESIS, Chain
from service.audit.checkpoint import (
    CHECKPOINTS,
    WITNESSED,
    Checkpoint,
    latest_by_file,
    log_names,
    parse_checkpoint,
    read_checkpoints,
)
from service.audit.files import log_files, parse_name
from service.audit.reader import file_records
from service.audit.scan import FileCheck, Finding, check_file, first_says

# What can be wrong, as `verify` names it.
KINDS = (
    "modified",
    "deleted",
    "reordered",
    "inserted",
    "truncated",
    "torn",
    "missing",
    "renamed",
    "no checkpoint",
    "wrong key",
    "key needed",
)
ALIVE = 3  # a writer is alive while its last checkpoint is younger than this many intervals


@dataclass(frozen=True, slots=True)
class Report:
    files: list[FileCheck]
    rulesets: list[ArchiveCheck]
    checkpoints: list[FileCheck] = field(default_factory=list)  # the checkpoint logs' own chains

    @property
    def ok(self) -> bool:
        return (
            all(f.ok for f in self.files)
            and all(r.ok for r in self.rulesets)
            and all(c.ok for c in self.checkpoints)
        )

    @property
    def key_needed(self) -> str | None:
        """The key id the records are sealed with, when verify was run without a key."""
        for check in [*self.files, *self.checkpoints]:
            if check.problem is not None and check.problem.kind == "key needed":
                return check.problem.detail.split("key id ", 1)[1].split(")", 1)[0]
        return None


def verify(
    directories: Sequence[Path],
    key: bytes | None = None,
    checkpoint_dirs: Sequence[Path] | None = None,
    witnesses: Sequence[Path] = (),
    now: datetime | None = None,
) -> Report:
    """Every file's chain, the links between files that continue one another, every file against its
    last checkpoint (in `checkpoint_dirs`, default `<dir>/checkpoints`, and in the `witnesses`'
    directories), and the archive, including every ruleset the records name. A writer is alive when
    its last checkpoint is younger than ALIVE intervals at `now` (default: the clock; give the time
    a copy was taken to verify it later)."""
    chain = Chain(key)
    now = now or datetime.now(UTC)
    own = list(checkpoint_dirs) if checkpoint_dirs is not None else [d / CHECKPOINTS for d in directories]
    logs, latest = _checkpoints(own, witnesses, chain)
    checks = []
    for path in log_files(directories):
        found = latest.get(path.name)
        checks.append(check_file(path, chain, found.head.seq if found else None))
    for check in checks:
        found = latest.get(check.path.name)
        if check.ok and found is not None:
            check.problem = _against(check, found)
        elif check.ok and found is None and first_says(check) is not None and not _alive(check, None, now):
            detail = "no checkpoint names this file: its checkpoint log is missing or was cut "
            detail += "(give --checkpoints DIR if it is kept elsewhere)"
            check.problem = Finding("no checkpoint", None, None, detail)
    _link(checks, latest, now)
    checks += _missing(checks, latest, directories)
    named: dict[Path, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for check in checks:
        for ruleset in check.rulesets:
            named[check.path.parent][ruleset].append(check.path.name)
    rulesets = [c for d in directories for c in verify_archive(d, named.get(d, {}))]
    return Report(checks, rulesets, logs)


def _checkpoints(
    own: Sequence[Path], witnesses: Sequence[Path], chain: Chain
) -> tuple[list[FileCheck], dict[str, Checkpoint]]:
    """The checkpoint logs' chains, and the last checkpoint of every audit file."""
    logs: list[FileCheck] = []
    found: list[Checkpoint] = []
    for directory in own:
        logs += _check_chain(log_names(directory, CHECKPOINTS), chain)
        found += read_checkpoints(directory, CHECKPOINTS)
        logs += _check_chain(log_names(directory, WITNESSED), chain)  # a witness's own chain
    for directory in witnesses:
        logs += _check_chain(log_names(directory, WITNESSED), chain)
        found += _witnessed(directory, chain)
    return logs, latest_by_file(iter(found))


def _witnessed(directory: Path, chain: Chain) -> list[Checkpoint]:
    """The checkpoints a witness kept whose own seal holds (with the key, when they were keyed)."""
    found = []
    for path in log_names(directory, WITNESSED):
        for record in file_records(path):
            inner = record.get("checkpoint")
            if isinstance(inner, dict) and inner.get("key") in chain.fingerprints and chain.check(inner):
                if (checkpoint := parse_checkpoint(inner, path)) is not None:
                    found.append(checkpoint)
    return found


def seqs(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}..{last}"


def _check_chain(paths: list[Path], chain: Chain) -> list[FileCheck]:
    """A checkpoint log: each daily file's chain, each file continuing the one before; a torn last
    line of the newest file is a crash while appending (noted: the next append describes it)."""
    return checkpoint_log([check_file(path, chain) for path in paths])


def checkpoint_log(checks: list[FileCheck]) -> list[FileCheck]:
    """The daily files of one checkpoint log, each checked alone, oldest first: each must continue
    the one before (also for the checkpoint log the audit database rebuilds)."""
    for before, after in zip(checks, checks[1:], strict=False):
        if not after.ok or after.first is None:
            continue
        if after.first.get("follows") != before.path.name or (
            before.last is not None
            and (after.first["seq"] != before.last["seq"] + 1 or after.first["prev"] != before.last["hash"])
        ):
            detail = f"does not continue {before.path.name} (checkpoints between them are missing)"
            after.problem = Finding("deleted", after.first["seq"], 1, detail)
    if checks and checks[0].ok and checks[0].first is not None and "follows" in checks[0].first:
        detail = f"continues {checks[0].first['follows']}, which is missing"
        checks[0].problem = Finding("deleted", checks[0].first["seq"], 1, detail)
    for index, check in enumerate(checks):
        if check.ok and check.torn:
            if index == len(checks) - 1:
                check.notes.append(f"torn last line ({len(check.torn)} bytes): a crash while appending")
            else:
                check.problem = Finding("torn", None, check.records + 1, _torn_detail(check))
    return checks


def _against(check: FileCheck, checkpoint: Checkpoint) -> Finding | None:
    """Whether a file holds everything its last checkpoint says it held."""
    head = checkpoint.head
    last_seq = int(check.last["seq"]) if check.last else head.first - 1
    said = f"its checkpoint of {checkpoint.ts} ({checkpoint.source.name}, seq {checkpoint.seq})"
    if last_seq < head.seq:
        missing = f"{seqs(last_seq + 1, head.seq)} missing"
        return Finding("truncated", last_seq + 1, check.records + 1, f"shorter than {said}: {missing}")
    if check.at_checkpoint != head.hash:
        return Finding("modified", head.seq, None, f"record seq {head.seq} is not the one {said} names")
    return None


def _missing(
    checks: list[FileCheck], latest: dict[str, Checkpoint], directories: Sequence[Path]
) -> list[FileCheck]:
    """Files that checkpoints name and no directory holds: deleted, or renamed (then said so)."""
    present = {c.path.name for c in checks}
    renamed = {
        str(c.first["opened"]["file"]): c.path.name
        for c in checks
        if c.first is not None and isinstance(c.first.get("opened"), dict)
    }
    gone = []
    for name, found in sorted(latest.items()):
        if name in present:
            continue
        home = found.source.parent.parent
        directory = home if home in directories else directories[0]
        head = found.head
        detail = (
            f"named by a checkpoint of {found.ts} ({found.source.name}, seq {found.seq}; node {found.node}, "
            f"pid {found.pid}): {seqs(head.first, head.seq)} missing"
        )
        if name in renamed:
            detail += f"; renamed to {renamed[name]}"
        check = FileCheck(directory / name, problem=Finding("missing", head.first, None, detail))
        gone.append(check)
    return gone


def _link(
    checks: list[FileCheck],
    latest: dict[str, Checkpoint],
    now: datetime,
    held: Callable[[FileCheck], bool] | None = None,
) -> None:
    """Rotated and recovered files name the file they continue; check each link and each file's end.
    `held` says whether a file is still written (the audit database knows it from its shipper, as of
    the last ship); by default, whether its last checkpoint, or its records, are younger than ALIVE
    intervals."""
    by_name = {c.path.name: c for c in checks}
    successor: dict[str, FileCheck] = {}
    for check in checks:
        first = check.first
        if first is None or "follows" not in first:
            continue
        name = str(first["follows"])
        if name not in by_name:
            if check.ok:
                check.problem = Finding("deleted", first["seq"], 1, f"continues {name}, which is missing")
            continue
        successor[name] = check
    for check in checks:
        if not check.ok:
            continue
        after = successor.get(check.path.name)
        if after is not None:
            _check_link(check, after)
        else:
            _check_end(check, _later_of_same_writer(check, checks), latest.get(check.path.name), now, held)


def _check_link(check: FileCheck, after: FileCheck) -> None:
    assert after.first is not None
    last_seq = check.last["seq"] if check.last else -1
    last_hash = check.last["hash"] if check.last else GENESIS
    want_seq = int(after.first["seq"])
    if last_seq + 1 < want_seq or (last_seq + 1 == want_seq and last_hash != after.first["prev"]):
        detail = f"{after.path.name} continues from seq {want_seq - 1}; this file ends at seq {last_seq}"
        check.problem = Finding("truncated", last_seq + 1, check.records + 1, detail)
        return
    if last_seq + 1 > want_seq:
        detail = f"{after.path.name} continues from seq {want_seq - 1}; records after it were added here"
        check.problem = Finding("inserted", want_seq, None, detail)
        return
    recovered = next((r for r in after.head if r.get("kind") == "recovered"), None)
    said = recovered.get("torn") if recovered else None
    if check.torn:
        if said != _torn(check):
            check.problem = Finding("torn", last_seq + 1, check.records + 1, _torn_detail(check))
            return
        check.notes.append(f"torn tail of {len(check.torn)} bytes, recovered in {after.path.name}")
    elif said:
        check.problem = Finding(
            "truncated", last_seq + 1, None, "its torn tail, reported on recovery, is gone"
        )
        return
    if recovered is not None:
        check.notes.append(f"writer crashed; chain continued in {after.path.name}")


def _later_of_same_writer(check: FileCheck, checks: list[FileCheck]) -> FileCheck | None:
    mine = parse_name(check.path.name)
    for other in checks:
        theirs = parse_name(other.path.name)
        if mine and theirs and (theirs.node, theirs.pid) == (mine.node, mine.pid) and theirs.n > mine.n:
            return other
    return None


def _check_end(
    check: FileCheck,
    later: FileCheck | None,
    checkpoint: Checkpoint | None,
    now: datetime,
    held: Callable[[FileCheck], bool] | None = None,
) -> None:
    """A file nobody continues: ended by a `stopped` event or its writer's closing checkpoint, or still
    written by a writer alive by its checkpoints' age (never by a lock on the file: anyone can take
    one); otherwise records are missing at its end."""
    last_seq = check.last["seq"] if check.last else -1
    stopped = check.last is not None and check.last.get("kind") == "stopped"
    alive = held(check) if held is not None else _alive(check, checkpoint, now)
    if not stopped and alive:
        check.notes.append("open: being written")
        return
    if later is not None and not check.torn and not stopped:
        detail = f"the file that continued it is missing (its writer went on to {later.path.name})"
        check.problem = Finding("deleted", last_seq + 1, None, detail)
    elif check.torn:
        check.problem = Finding("torn", last_seq + 1, check.records + 1, _torn_detail(check))
    elif stopped:
        return
    elif checkpoint is not None and not checkpoint.open and last_seq == checkpoint.head.seq:
        check.notes.append("closed by its writer")
    elif checkpoint is not None:
        detail = (
            f"ends without a stopped event and no file continues it; its last checkpoint "
            f"(seq {checkpoint.head.seq}, {checkpoint.ts}) is stale: its writer is gone (a crash not "
            f"yet recovered), or records after seq {checkpoint.head.seq} were removed"
        )
        check.problem = Finding("truncated", last_seq + 1, check.records + 1, detail)
    else:
        detail = "ends without a stopped event and no file continues it (records removed at the end, "
        detail += "or a crash not yet recovered)"
        check.problem = Finding("truncated", last_seq + 1, check.records + 1, detail)


def _alive(check: FileCheck, checkpoint: Checkpoint | None, now: datetime) -> bool:
    """Whether the file's writer is alive: its last checkpoint says the file is open and is younger
    than ALIVE checkpoint intervals (or, before its first checkpoint, its last record is)."""
    if checkpoint is not None:
        at, every, state_open = _instant(checkpoint.ts), checkpoint.every, checkpoint.open
    else:
        opened = first_says(check)
        if opened is None or check.last is None:
            return False
        try:
            every = float(opened["checkpoint_s"])
        except (KeyError, TypeError, ValueError):
            return False
        at, state_open = _instant(str(check.last.get("ts"))), True
    return state_open and at is not None and now - at <= timedelta(seconds=ALIVE * every)


link, against = _link, _against  # the audit database checks its chains with the same code


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _torn(check: FileCheck) -> dict[str, Any]:
    return {
        "offset": check.torn_offset,
        "bytes": len(check.torn),
        "sha256": hashlib.sha256(check.torn).hexdigest(),
    }


def _torn_detail(check: FileCheck) -> str:
    return f"{len(check.torn)} bytes after the last complete line, at offset {check.torn_offset}"
