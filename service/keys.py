"""API keys: a file of named keys with roles, stored only as SHA-256 hashes, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

Role = Literal["decide", "audit", "admin", "metrics"]  # metrics: /metrics only (a Prometheus scraper)
ROLES: tuple[Role, ...] = get_args(Role)
PREFIX = "hk_"


class KeysError(Exception):
    """A keys file that cannot be read or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    roles: frozenset[str]
    digest: bytes  # sha256 of the key


def digest(key: str) -> bytes:
    # Keys are 256 random bits: a fast hash is enough, no salt or slow hash is needed.
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def read_keys(path: Path) -> list[Key]:
    try:
        data = json.loads(path.read_text()) if path.exists() else {"keys": []}
        return [
            Key(k["name"], frozenset(k["roles"]), bytes.fromhex(k["sha256"])) for k in data.get("keys", [])
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise KeysError(f"{path}: not a keys file ({error})") from None


def write_keys(path: Path, keys: list[Key]) -> None:
    """Replace the file atomically, readable by its owner only."""
    body = {"keys": [{"name": k.name, "roles": sorted(k.roles), "sha256": k.digest.hex()} for k in keys]}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(body, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)


def add_key(path: Path, name: str, roles: set[str], *, replace: bool = False) -> str:
    """Create a key, store its hash under `name` and return it. A name already there is refused
    unless `replace`: a typo must not silently revoke someone's key (and give its name to another)."""
    unknown = roles - set(ROLES)
    if unknown:
        raise KeysError(f"unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")
    stored = read_keys(path)
    if not replace and any(k.name == name for k in stored):
        raise KeysError(
            f"a key named {name!r} is already in {path}: give --replace to revoke it and make a new one"
        )
    key = new_key()
    keys = [k for k in stored if k.name != name]
    write_keys(path, [*keys, Key(name, frozenset(roles), digest(key))])
    return key


class KeyStore:
    """The keys of a file, re-read when the file changes (checked at most once a second)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: list[Key] = []
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        import time

        now = time.monotonic()
        if not force and now - self._checked < 1.0:
            return
        with self._lock:
            self._checked = now
            try:
                stat = self.path.stat()
                stamp = (stat.st_mtime, stat.st_size)
            except OSError:
                stamp = (0.0, -1)
            if stamp != self._stamp:
                self._keys = read_keys(self.path)
                self._stamp = stamp

    def find(self, presented: str) -> Key | None:
        """The key `presented` is, comparing with every stored hash in constant time."""
        self._refresh()
        wanted = digest(presented)
        found = None
        for key in self._keys:  # no early exit: the time taken does not say which key matched
            if hmac.compare_digest(key.digest, wanted):
                found = key
        return found
