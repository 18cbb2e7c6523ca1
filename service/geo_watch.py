"""GeoIP files replaced under a running service: notice the change, check the new file, publish it.

`geoipupdate` writes a new file and renames it over the old one. `DatabaseWatch` notices that by
the file's identity (device, inode, size, modification time), opens the new file as the kind of
database it must be and asks it a few addresses, then keeps a sealed snapshot of it (see
`geo.snapshot`). A file that fails any of that is refused: the old data keeps serving, and the
refusal is counted and shown. Under gunicorn the master watches and publishes the snapshot paths
in a small JSON state file; each worker follows that file and swaps its readers between requests.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from service.geo import GeoDatabase, GeoDatabaseError, Kind, snapshot

# Asked of every new file before it is published: a truncated or scrambled tree fails here.
_PROBES = tuple(ip_address(a) for a in ("1.1.1.1", "8.8.8.8", "77.88.8.8", "5.59.104.1", "2a02:6b8::1"))

Identity = tuple[int, int, int, int]


def identity(path: Path) -> Identity | None:
    """What changes when the file is replaced or rewritten; None when it is missing."""
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def check_database(path: Path, kind: Kind, source: Path) -> None:
    """Raise GeoDatabaseError unless `path` opens as a `kind` database and answers the probes."""
    with GeoDatabase.open(path, kind=kind, source=source, locate_non_global=True, cache_size=0) as db:
        for probe in _PROBES:
            db.said(probe)
            if db.errors:
                raise GeoDatabaseError(f"GeoIP database {source} is damaged: {db.last_error}")


def _close_snapshot(path: Path) -> None:
    """Close this process's descriptor of a snapshot (/proc/self/fd/N or /proc/PID/fd/N)."""
    if path.parent.name == "fd" and path.parent.parent.name in ("self", str(os.getpid())):
        with contextlib.suppress(OSError, ValueError):
            os.close(int(path.name))


@dataclass
class DatabaseWatch:
    """One configured database file and the snapshot of it being served."""

    kind: Kind
    source: Path
    seal: bool = True  # snapshot into sealed memory (served mode); False: serve the file itself
    served: Path | None = None
    seen: Identity | None = None
    generation: int = 0
    refused: dict[str, str] | None = None
    refusals: int = 0

    def check(self, now: datetime, force: bool = False) -> bool:
        """Take the file if it was replaced since the last check (or always, with `force`).
        True when what is served or refused changed."""
        current = identity(self.source)
        if current == self.seen and not force:
            return False
        self.seen = current
        try:
            fresh = snapshot(self.source) if self.seal else self.source
        except OSError as error:
            return self._refuse(now, f"GeoIP database {self.source} cannot be read: {error.strerror}")
        try:
            check_database(fresh, self.kind, self.source)
        except GeoDatabaseError as error:
            if fresh != self.source:
                _close_snapshot(fresh)
            return self._refuse(now, str(error))
        old, self.served = self.served, self._shared(fresh)
        if old is not None and old != self.served and self.seal:
            _close_snapshot(old)  # processes that opened it keep their own mapping
        self.generation += 1
        self.refused = None
        return True

    def _shared(self, path: Path) -> Path:
        """A snapshot path other processes can open too: /proc/PID/fd/N, not /proc/self/fd/N."""
        if path.parent == Path("/proc/self/fd"):
            return Path(f"/proc/{os.getpid()}/fd/{path.name}")
        return path

    def _refuse(self, now: datetime, error: str) -> bool:
        self.refusals += 1
        self.refused = {"at": now.isoformat().replace("+00:00", "Z"), "error": error}
        return True

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.served) if self.served is not None else None,
            "source": str(self.source),
            "generation": self.generation,
            "refused": self.refused,
            "refusals": self.refusals,
        }


def write_state(path: Path, watches: list[DatabaseWatch]) -> None:
    """The watches' state for the workers, replaced atomically (a reader never sees half)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(json.dumps({w.kind: w.state() for w in watches}).encode())
    os.replace(temporary, path)


def read_state(path: Path) -> dict[str, dict[str, Any]]:
    """The state the master wrote; empty if there is none (yet)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
