"""One audit file's chain, record by record: the first record out of place, and what it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from service.audit.chain import GENESIS, Chain, canonical
from service.audit.files import parse_name


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
    rulesets: set[str] = field(default_factory=set)  # ruleset hashes its records name
    at_checkpoint: str | None = None  # hash of the record its checkpoint names, once seen
    head: list[dict[str, Any]] = field(default_factory=list)  # its first three parsed records

    @property
    def ok(self) -> bool:
        return self.problem is None


def parse_record(raw: bytes) -> dict[str, Any] | None:
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
        want: int | None = None,
        start: tuple[int, str] | None = None,
        keep: list[dict[str, Any]] | None = None,
    ) -> None:
        self.check, self.lines, self.chain, self.want = check, lines, chain, want
        self.start, self.keep = start, keep

    def run(self) -> Finding | None:
        first = parse_record(self.lines[0]) if self.lines else None
        if self.start is not None:
            seq, prev = self.start  # a part of a file, after records already checked (shipping)
        elif first is not None and "follows" in first:
            seq, prev = int(first["seq"]), str(first["prev"])  # the link is checked across files
        else:
            seq, prev = 0, GENESIS
        seen: set[int] = set()
        for index, raw in enumerate(self.lines):
            record = parse_record(raw)
            line = index + 1
            if record is None or not self._sealed(record) or canonical(record) != raw:
                if record is not None and (wrong := self._wrong_key(record)) is not None:
                    kind = "key needed" if self.chain.key is None else "wrong key"
                    return Finding(kind, record["seq"], line, wrong)
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
                if got == self.want:
                    self.check.at_checkpoint = str(record["hash"])
                if "ruleset" in record and record.get("kind") in ("decision", "ruleset_loaded"):
                    self.check.rulesets.add(str(record["ruleset"]))
                continue
            return self._misplaced(record, line, seq, seen, index)
        return None

    def _sealed(self, record: dict[str, Any]) -> bool:
        return record.get("key") in self.chain.fingerprints and self.chain.check(record)

    def _wrong_key(self, record: dict[str, Any]) -> str | None:
        keyed = record.get("key")
        if keyed in self.chain.fingerprints:
            return None
        if keyed is None:
            return "records are not keyed, but a key was given"
        if self.chain.fingerprint is None:
            return (
                f"records are sealed with an HMAC key (key id {keyed}): nothing can be checked "
                "without it; give --key or HERALD_AUDIT_KEY"
            )
        return f"records are keyed with key id {keyed}, not {self.chain.fingerprint}"

    def _chains_from(self, index: int, seq: int, prev: str) -> bool:
        following = parse_record(self.lines[index]) if index < len(self.lines) else None
        return following is not None and following["seq"] == seq and following["prev"] == prev

    def _misplaced(self, record: dict[str, Any], line: int, seq: int, seen: set[int], index: int) -> Finding:
        got = int(record["seq"])
        if got in seen:
            return Finding("inserted", got, line, f"a second record with seq {got}")
        later = {r["seq"] for raw in self.lines[index + 1 :] if (r := parse_record(raw)) is not None}
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


def check_file(path: Path, chain: Chain, want: int | None = None) -> FileCheck:
    """One file's chain; `want` is the seq whose hash its checkpoint states (kept in `at_checkpoint`)."""
    return check_data(path, path.read_bytes(), chain, want)


def check_data(
    path: Path,
    data: bytes,
    chain: Chain,
    want: int | None = None,
    start: tuple[int, str] | None = None,
    keep: list[dict[str, Any]] | None = None,
) -> FileCheck:
    """The chain of one file's bytes, read from disk or rebuilt from the database's canonical text.
    `start` (seq, prev) checks a part of a file that follows records already checked (shipping);
    `keep` receives each record that checks, parsed (so a caller need not parse it again)."""
    check = FileCheck(path)
    cut = data.rfind(b"\n") + 1
    check.torn, check.torn_offset = data[cut:], cut
    lines = data[:cut].splitlines()
    check.head = [r for raw in lines[:3] if (r := parse_record(raw)) is not None]
    check.problem = _Scan(check, lines, chain, want, start, keep).run()
    if check.problem is None:
        check.problem = _named(check)
    return check


def _named(check: FileCheck) -> Finding | None:
    """A file names itself, its node and its writer in its first record: a renamed file is found."""
    opened = first_says(check)
    if opened is None:
        return None
    parts = parse_name(check.path.name)
    said = (opened.get("file"), opened.get("node"), opened.get("pid"))
    if said[0] == check.path.name and parts and (parts.node, parts.pid) == said[1:]:
        return None
    seq = check.first["seq"] if check.first else None
    detail = f"its first record says it is {said[0]} (node {said[1]}, pid {said[2]})"
    return Finding("renamed", seq, 1, detail)


def first_says(check: FileCheck) -> dict[str, Any] | None:
    """What a file's first record says of it (files written before checkpoints say nothing)."""
    opened = check.first.get("opened") if check.first else None
    return opened if isinstance(opened, dict) else None
