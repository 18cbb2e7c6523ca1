"""The audit log the service writes to: decisions and events, built from settings in one place."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from service.audit.address import AddressMode, reduce_address
from service.audit.archive import Archive, Load
from service.audit.chain import Chain
from service.audit.records import decision_fields, reader_fields, ruleset_fields
from service.audit.witness import Witness
from service.audit.writer import AuditWriter, parse_fsync
from service.config import Settings
from service.decision import Decision
from service.inputs import Article
from service.ruleset import Ruleset

Logged = tuple[str, Article, Decision]  # a decision id, the article and its decision


class Events(Protocol):
    """What the service tells the audit log. A later hot reload calls `ruleset_loaded`/`_rejected`."""

    def decision(
        self,
        decision_id: str,
        article: Article,
        decision: Decision,
        address: str | None,
        *,
        what_if: bool = ...,
        named_tags: frozenset[str] = ...,
    ) -> None: ...
    def decisions(
        self,
        batch: Sequence[Logged],
        address: str | None,
        *,
        what_if: bool = ...,
        named_tags: frozenset[str] = ...,
    ) -> None: ...
    def started(self) -> None: ...
    def stopped(self, reason: str = ...) -> None: ...
    def ruleset_loaded(self, ruleset: Ruleset, previous: Ruleset | None = ...) -> None: ...
    def ruleset_rejected(self, errors: Sequence[str]) -> None: ...
    def records_lost(self, count: int, since: datetime) -> None: ...


class NoAudit:
    """Logs nothing: `HERALD_AUDIT=off` (benchmarks, development), or tests that inject a logger."""

    def decision(
        self,
        decision_id: str,
        article: Article,
        decision: Decision,
        address: str | None,
        *,
        what_if: bool = False,
        named_tags: frozenset[str] = frozenset(),
    ) -> None:
        return None

    def decisions(
        self,
        batch: Sequence[Logged],
        address: str | None,
        *,
        what_if: bool = False,
        named_tags: frozenset[str] = frozenset(),
    ) -> None:
        return None

    def started(self) -> None:
        return None

    def stopped(self, reason: str = "exit") -> None:
        return None

    def ruleset_loaded(self, ruleset: Ruleset, previous: Ruleset | None = None) -> None:
        return None

    def ruleset_rejected(self, errors: Sequence[str]) -> None:
        return None

    def records_lost(self, count: int, since: datetime) -> None:
        return None


class AuditLog:
    """Writes records through one `AuditWriter` and keeps every loaded ruleset in the archive."""

    def __init__(
        self, writer: AuditWriter, archive: Archive, address: AddressMode, address_key: bytes | None
    ) -> None:
        self.writer = writer
        self.archive = archive
        self.address = address
        self.address_key = address_key
        self._stopped = False

    def decision(
        self,
        decision_id: str,
        article: Article,
        decision: Decision,
        address: str | None,
        *,
        what_if: bool = False,
        named_tags: frozenset[str] = frozenset(),
    ) -> None:
        """`named_tags`: the tags the decision's rules name, kept whole in the record (see bounds.py)."""
        self.decisions([(decision_id, article, decision)], address, what_if=what_if, named_tags=named_tags)

    def decisions(
        self,
        batch: Sequence[Logged],
        address: str | None,
        *,
        what_if: bool = False,
        named_tags: frozenset[str] = frozenset(),
    ) -> None:
        """The decisions of one request (one reader, one instant), written in one group commit: all
        are recorded or none is (and the caller counts them lost)."""
        network = reduce_address(address, self.address, self.address_key)
        # One reader, one instant: the reader's fields are built once (the writer serializes them
        # with each record, whose hash covers them).
        reader = reader_fields(batch[0][2], network) if batch else None
        self.writer.write_many(
            "decision",
            [
                decision_fields(
                    decision_id,
                    article,
                    decision,
                    network,
                    what_if=what_if,
                    named_tags=named_tags,
                    reader=reader,
                )
                for decision_id, article, decision in batch
            ],
        )

    def started(self) -> None:
        self._event("started", {"herald": _version()})

    def stopped(self, reason: str = "exit") -> None:
        if not self._stopped:
            self._stopped = True
            self._event("stopped", {"reason": reason})
            self.writer.close()

    def ruleset_loaded(self, ruleset: Ruleset, previous: Ruleset | None = None) -> None:
        """Archives `ruleset`, then logs it with its changes against `previous` (by default: the
        ruleset loaded most recently before, according to the archive)."""
        before: dict[str, Any] | None = None
        before_hash: str | None = None
        if previous is not None:
            self.archive.store(previous)
            before, before_hash = previous.canonical(), previous.hash
        else:
            before_hash = self.archive.latest(exclude=ruleset.hash)
            before = self.archive.canonical(before_hash) if before_hash else None
        self.archive.store(ruleset)
        record = self._event("ruleset_loaded", ruleset_fields(ruleset, before, before_hash))
        self.archive.note_loaded(Load(str(record["ts"]), ruleset.hash, self.writer.node, self.writer.pid))

    def ruleset_rejected(self, errors: Sequence[str]) -> None:
        self._event("ruleset_rejected", {"errors": list(errors)})

    def records_lost(self, count: int, since: datetime) -> None:
        """Once the log is writable again: how many decisions were answered but not recorded."""
        self._event("records_lost", {"count": count, "since": since.isoformat().replace("+00:00", "Z")})

    def _event(self, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Events name the process that wrote them (decisions do not: their file does)."""
        return self.writer.write(kind, {**fields, "pid": self.writer.pid})


def open_audit(settings: Settings, clock: Callable[[], datetime] | None = None) -> AuditLog | NoAudit:
    """The audit log the settings ask for, opened (a file of its own) and ready to write."""
    if settings.audit == "off":
        return NoAudit()
    key = settings.audit_key_bytes
    address_key = settings.audit_address_key_bytes
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    witness = None
    if settings.audit_witness:
        witness_key = settings.audit_witness_key.get_secret_value() if settings.audit_witness_key else None
        witness = Witness(settings.audit_witness, witness_key)
    writer = AuditWriter(
        settings.audit_dir,
        node=settings.audit_node or socket.gethostname(),
        chain=Chain(key),
        fsync=parse_fsync(settings.audit_fsync),
        max_bytes=settings.audit_max_bytes,
        checkpoint_dir=settings.audit_checkpoint_path,
        checkpoint_every=settings.audit_checkpoint_s,
        witness=witness,
        **extra,
    )
    writer.open()
    return AuditLog(writer, Archive(settings.audit_dir), settings.audit_address, address_key)


def _version() -> str:
    try:
        return version("herald")
    except PackageNotFoundError:
        return "unknown"
