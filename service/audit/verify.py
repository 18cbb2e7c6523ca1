"""Checks every chain of one or many audit directories and every archived ruleset."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from service.audit.archive import ArchiveCheck, verify_archive
from service.audit.chain import GENESIS, Chain, canonical
from service.audit.files import is_held, log_files, parse_name

# What can be wrong, as `verify` names it.
KINDS = ("modified", "deleted", "reordered", "inserted", "truncated", "torn", "wrong key")


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    seq: int | None
    line: int | None
    detail: str


@dataclass
class FileCheck:
    """The verdict on one file: `problem` is the first thing wrong, or None when intact."""

    path: Path
    records: int = 0
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    torn: bytes = b""
    torn_offset: int = 0
    problem: Finding | None = None
    notes: list[str] = field(default_factory=list)
    head: list[dict[str, Any]] = field(default_factory=list)  # the first few readable records

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True, slots=True)
class Report:
    files: list[FileCheck]
    rulesets: list[ArchiveCheck]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files) and all(r.ok for r in self.rulesets)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("seq"), int) or "hash" not in value:
        return None
    return value


class _Scan:
    """Walks one file's lines along its chain; stops at the first record out of place."""

    def __init__(
        self,
        check: FileCheck,
        lines: list[bytes],
        chain: Chain,
        start: tuple[int, str] | None = None,
        keep: list[dict[str, Any]] | None = None,
    ) -> None:
        self.check, self.lines, self.chain, self.start, self.keep = check, lines, chain, start, keep

    def run(self) -> Finding | None:
        first = _parse(self.lines[0]) if self.lines else None
        if self.start is not None:
            seq, prev = self.start  # a part of a file, after records already checked (shipping)
        elif first is not None and "follows" in first:
            seq, prev = int(first["seq"]), str(first["prev"])  # the link is checked across files
        else:
            seq, prev = 0, GENESIS
        seen: set[int] = set()
        for index, raw in enumerate(self.lines):
            record = _parse(raw)
            line = index + 1
            if record is None or not self._sealed(record) or canonical(record) != raw:
                if record is not None and (wrong := self._wrong_key(record)) is not None:
                    return Finding("wrong key", record["seq"], line, wrong)
                if self._chains_from(index + 1, seq, prev):
                    return Finding(
                        "inserted", seq, line, f"a record that is not part of the chain, before seq {seq}"
                    )
                detail = "not a record" if record is None else "hash does not match the record"
                if record is not None and self._sealed(record):
                    detail = "not in canonical form (sorted keys, no spaces)"
                return Finding("modified", seq, line, detail)
            got = int(record["seq"])
            if got == seq and record["prev"] == prev:
                seen.add(got)
                seq, prev = seq + 1, str(record["hash"])
                self.check.records += 1
                self.check.first = self.check.first or record
                self.check.last = record
                if self.keep is not None:
                    self.keep.append(record)
                continue
            return self._misplaced(record, line, seq, seen, index)
        return None

    def _sealed(self, record: dict[str, Any]) -> bool:
        return record.get("key") == self.chain.fingerprint and self.chain.check(record)

    def _wrong_key(self, record: dict[str, Any]) -> str | None:
        keyed = record.get("key")
        if keyed == self.chain.fingerprint:
            return None
        if keyed is None:
            return "records are not keyed, but a key was given"
        if self.chain.fingerprint is None:
            return f"records are keyed (key id {keyed}): give the key (--key or HERALD_AUDIT_KEY)"
        return f"records are keyed with key id {keyed}, not {self.chain.fingerprint}"

    def _chains_from(self, index: int, seq: int, prev: str) -> bool:
        following = _parse(self.lines[index]) if index < len(self.lines) else None
        return following is not None and following["seq"] == seq and following["prev"] == prev

    def _misplaced(self, record: dict[str, Any], line: int, seq: int, seen: set[int], index: int) -> Finding:
        got = int(record["seq"])
        if got in seen:
            return Finding("inserted", got, line, f"a second record with seq {got}")
        later = {r["seq"] for raw in self.lines[index + 1 :] if (r := _parse(raw)) is not None}
        if got > seq and seq in later:
            return Finding("reordered", got, line, f"seq {got} comes before seq {seq}")
        if got > seq:
            if index == 0:
                return Finding(
                    "deleted", seq, line, f"the file starts at seq {got}: records before it are missing"
                )
            return Finding("deleted", seq, line, f"seq {seq}..{got - 1} missing")
        if got < seq:
            return Finding("reordered", got, line, f"seq {got} comes after seq {seq - 1}")
        return Finding("modified", got, line, "prev does not match the record before")


def check_file(path: Path, chain: Chain) -> FileCheck:
    return check_data(path, path.read_bytes(), chain)


def check_data(
    path: Path,
    data: bytes,
    chain: Chain,
    start: tuple[int, str] | None = None,
    keep: list[dict[str, Any]] | None = None,
) -> FileCheck:
    """The chain of one file's bytes, read from disk or rebuilt from the database's canonical text.
    `start` (seq, prev) checks a part of a file that follows records already checked; `keep`
    receives each record that checks, parsed (so a caller need not parse it again)."""
    check = FileCheck(path)
    cut = data.rfind(b"\n") + 1
    check.torn, check.torn_offset = data[cut:], cut
    lines = data[:cut].splitlines()
    check.head = [r for raw in lines[:3] if (r := _parse(raw)) is not None]
    check.problem = _Scan(check, lines, chain, start, keep).run()
    return check


def verify(directories: Sequence[Path], key: bytes | None = None) -> Report:
    """Every file's chain, the links between files that continue one another, and the archive."""
    chain = Chain(key)
    checks = [check_file(path, chain) for path in log_files(directories)]
    link(checks)
    rulesets = [c for d in directories for c in verify_archive(d)]
    return Report(checks, rulesets)


def link(checks: list[FileCheck], held: Callable[[FileCheck], bool] | None = None) -> None:
    """Rotated and recovered files name the file they continue; check each link and each file's end.
    `held` says whether a writer still has a file open (default: its lock on disk)."""
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
            _check_end(check, _later_of_same_writer(check, checks), held or _held_on_disk)


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


def _held_on_disk(check: FileCheck) -> bool:
    return is_held(check.path)


def _check_end(check: FileCheck, later: FileCheck | None, held: Callable[[FileCheck], bool]) -> None:
    last_seq = check.last["seq"] if check.last else -1
    if held(check):
        check.notes.append("open: being written")
        return
    if later is not None and not check.torn and (check.last is None or check.last.get("kind") != "stopped"):
        detail = f"the file that continued it is missing (its writer went on to {later.path.name})"
        check.problem = Finding("deleted", last_seq + 1, None, detail)
    elif check.torn:
        check.problem = Finding("torn", last_seq + 1, check.records + 1, _torn_detail(check))
    elif check.last is None or check.last.get("kind") != "stopped":
        detail = "ends without a stopped event and no file continues it (records removed at the end, "
        detail += "or a crash not yet recovered)"
        check.problem = Finding("truncated", last_seq + 1, check.records + 1, detail)


def _torn(check: FileCheck) -> dict[str, Any]:
    return {
        "offset": check.torn_offset,
        "bytes": len(check.torn),
        "sha256": hashlib.sha256(check.torn).hexdigest(),
    }


def _torn_detail(check: FileCheck) -> str:
    return f"{len(check.torn)} bytes after the last complete line, at offset {check.torn_offset}"
