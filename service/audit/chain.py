"""Canonical JSON of a record and the hash that chains it to the record before it."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

GENESIS = "0" * 64  # `prev` of the first record of a chain that continues no other file
KEY_ID_LABEL = b"herald-audit-key-id/v2"


def key_id(key: bytes) -> str:
    """What records carry to name their key: an HMAC of a fixed label, so it says nothing about the
    key (a plain hash of it would let anyone holding the log test guesses against it)."""
    return hmac.new(key, KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def legacy_key_id(key: bytes) -> str:
    """The key id of records written before version 2 (a hash of the key), still accepted by verify."""
    return hashlib.sha256(b"herald-audit-key:" + key).hexdigest()[:16]


def canonical(record: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same record always gives the same bytes."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


class Chain:
    """How records are hashed: SHA-256, or HMAC-SHA256 when a key is set (unforgeable without it)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or None
        # Records carry this fingerprint, so `verify` can tell a wrong key from a changed record.
        self.fingerprint = key_id(key) if key else None
        # Ids that verify accepts: records written before key ids became HMACs carry the legacy one.
        self.fingerprints = {key_id(key), legacy_key_id(key)} if key else {None}

    def digest(self, prev: str, body: bytes) -> str:
        """The hash of a record: over `prev` and the canonical JSON of the record without `hash`."""
        data = prev.encode() + b"\n" + body
        if self.key is not None:
            return hmac.new(self.key, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def seal(self, record: dict[str, Any]) -> bytes:
        """Adds `key` (when keyed) and `hash` to `record`; returns its line, newline included."""
        if self.fingerprint is not None:
            record["key"] = self.fingerprint
        record["hash"] = self.digest(record["prev"], canonical(record))
        return canonical(record) + b"\n"

    def check(self, record: dict[str, Any]) -> bool:
        """Whether `record["hash"]` is the hash of the rest of the record."""
        body = {k: v for k, v in record.items() if k != "hash"}
        return hmac.compare_digest(
            str(record.get("hash")), self.digest(str(record.get("prev")), canonical(body))
        )
