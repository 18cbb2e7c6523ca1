"""One worker's GeoIP readers: opened at start, swapped between requests when new data is published.

Under `herald serve` the gunicorn master watches the files (`geo_watch`) and publishes sealed
snapshots in a state file that each worker follows. A process without a master (tests, `flask
run`) watches the files itself and serves them directly."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from service.config import Settings
from service.geo import GeoDatabase, GeoDatabaseError, Kind, embedded_database_path
from service.geo_watch import DatabaseWatch, identity, read_state
from service.web.runtime import Runtime

log = logging.getLogger("herald.geoip")


def sources(settings: Settings) -> dict[Kind, Path]:
    """The database files the settings name: a City database always (the embedded one by
    default), an Anonymous IP database when configured."""
    found: dict[Kind, Path] = {"city": settings.geoip_db or embedded_database_path()}
    if settings.anonymous_ip_db is not None:
        found["anonymous-ip"] = settings.anonymous_ip_db
    return found


def watches(settings: Settings, seal: bool) -> list[DatabaseWatch]:
    return [DatabaseWatch(kind, path, seal) for kind, path in sources(settings).items()]


def stale_warning(db: GeoDatabase, now: datetime, max_age_days: float) -> str | None:
    """Why the data should not be trusted for production, or None."""
    built = f"built {db.build_date:%Y-%m-%d}, {db.age_days(now):.0f} days ago"
    if db.path == embedded_database_path():
        return f"GeoIP data is stale: {built}, the embedded demo data (set HERALD_GEOIP_DB)"
    if db.age_days(now) > max_age_days:
        return f"GeoIP data is stale: {db.database_type} {built} (HERALD_GEOIP_MAX_AGE_DAYS={max_age_days:g})"
    return None


def geo_warnings(rt: Runtime) -> list[str]:
    """What /readyz warns of (still ready): stale data, and new files that were refused."""
    now = rt.clock()
    warnings = [
        warning
        for db in (rt.geo, rt.anonymous)
        if db is not None and (warning := stale_warning(db, now, rt.settings.geoip_max_age_days))
    ]
    for kind, refused in sorted(rt.geo_refused.items()):
        if refused is not None and (kind != "city" or rt.geo is not None):
            warnings.append(
                f"new GeoIP {kind} data refused at {refused['at']}, old data serving: {refused['error']}"
            )
    return warnings


class GeoFollower:
    """Keeps the runtime's readers (`rt.geo`, `rt.anonymous`) on the published data.

    `state_file`: the master's (served mode); None: watch the configured files here."""

    def __init__(self, rt: Runtime, state_file: Path | None) -> None:
        self.rt = rt
        self.state_file = state_file
        self.local = watches(rt.settings, seal=False) if state_file is None else []
        self.generations: dict[str, int] = {}
        self._seen: object = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def check(self, force: bool = False) -> bool:
        """Swap in what was published since the last check; True when anything was (new data, or a
        refusal)."""
        with self._lock:
            if self.state_file is not None:
                current = identity(self.state_file)
                if current == self._seen and not force:
                    return False
                self._seen = current
                state = read_state(self.state_file)
            else:
                now = self.rt.clock()
                changed = [w.check(now, force) for w in self.local]
                if not any(changed):
                    return False
                state = {w.kind: w.state() for w in self.local}
            self._apply(state)
            return True

    def report(self) -> None:
        """The data's build time and age, for /metrics."""
        now = self.rt.clock()
        for kind, db in (("city", self.rt.geo), ("anonymous-ip", self.rt.anonymous)):
            if db is not None:
                self.rt.metrics.geo_data(kind, db.build_date.timestamp(), round(db.age_days(now), 2))

    def _apply(self, state: dict[str, dict[str, Any]]) -> None:
        for kind, entry in state.items():
            if kind not in ("city", "anonymous-ip"):
                continue
            self.rt.geo_refused[kind] = entry.get("refused")
            self.rt.metrics.geo_refusals(kind, int(entry.get("refusals") or 0))
            path, generation = entry.get("path"), entry.get("generation")
            if path is None or generation == self.generations.get(kind):
                continue
            try:
                db = GeoDatabase.open(
                    path,
                    kind=kind,  # type: ignore[arg-type]
                    locate_non_global=self.rt.settings.locate_private,
                    source=Path(str(entry.get("source"))),
                )
            except GeoDatabaseError as error:  # the master checked it: this worker cannot reach it
                log.error("GeoIP data not taken: %s", error)
                self.rt.geo_refused[kind] = {"at": self.rt.clock().isoformat(), "error": str(error)}
                continue
            self.generations[kind] = int(generation or 0)
            self._swap(kind, db)
        if self.rt.geo is None and (refused := self.rt.geo_refused.get("city")):
            self.rt.geo_error = f"{refused['error']} (set HERALD_GEOIP_DB to a GeoIP2/GeoLite2 City database)"

    def _swap(self, kind: str, db: GeoDatabase) -> None:
        """Between two requests: a request reads `rt.geo` once, so it sees the old or the new."""
        old = self.rt.geo if kind == "city" else self.rt.anonymous
        if kind == "city":
            self.rt.geo, self.rt.geo_error = db, None
        else:
            self.rt.anonymous = db
        self.report()
        if old is not None:
            log.info("GeoIP %s data replaced: %s -> %s", kind, old.data, db.data)
        # The old reader is not closed: a request in flight may still be reading it. It is
        # unmapped when the last reference goes.

    def start(self, interval: float) -> None:
        if interval > 0:
            threading.Thread(target=self._poll, args=(interval,), name="herald-geoip", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception:  # the poller must outlive any surprise; the next tick tries again
                log.exception("GeoIP check failed")
