"""Production serving: gunicorn running the app factory, one app (ruleset, GeoIP reader) per worker."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from service.config import Settings
from service.geo_watch import DatabaseWatch, write_state
from service.loader import load_ruleset
from service.problems import RulesetInvalid
from service.ruleset import Ruleset
from service.web import create_app, logs
from service.web.geodata import watches
from service.web.runtime import runtime, utc_now

log = logging.getLogger("herald")


def child_exit(server: Any, worker: Any) -> None:
    """Gunicorn hook, in the master: a dead worker's live gauges leave the summed metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def worker_exit(server: Any, worker: Any) -> None:
    """Gunicorn hook, in the worker as it exits: the `stopped` event closes its audit file."""
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        runtime(app).audit.stopped("worker exit")


class HeraldArbiter(Arbiter):  # type: ignore[misc]
    """Gunicorn's master loop, which also lets the app do its periodic work (about once a second)."""

    def manage_workers(self) -> None:
        super().manage_workers()
        try:
            self.app.tick()
        except Exception:  # the master must outlive any surprise: it keeps every worker running
            log.exception("master tick failed")


class HeraldServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn with its options given in code, not read from a config file or argv."""

    def __init__(self, settings: Settings, options: dict[str, Any], ruleset: Ruleset) -> None:
        self.settings = settings
        self.options = options
        self.last_good = ruleset
        self.geo_watches: list[DatabaseWatch] = watches(settings, seal=True)
        self.geo_state = Path(tempfile.mkdtemp(prefix="herald-geoip-")) / "state.json"
        self._next_geo_check = 0.0
        super().__init__()

    def run(self) -> None:
        try:
            HeraldArbiter(self).run()
        except RuntimeError as error:
            log.error("gunicorn stopped: %s", error)
            raise SystemExit(1) from None

    def load_config(self) -> None:
        """In the master, at start and on SIGHUP (gunicorn then restarts the workers gracefully)."""
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self._refresh_rules()
        self._refresh_geoip(force=True)

    def tick(self) -> None:
        """In the master, about once a second: a replaced GeoIP file is checked and published."""
        interval = self.settings.geoip_reload_interval
        now = time.monotonic()
        if interval > 0 and now >= self._next_geo_check:
            self._next_geo_check = now + interval
            self._refresh_geoip()

    def _refresh_geoip(self, force: bool = False) -> None:
        """Workers read sealed in-memory copies of the GeoIP files, taken here in the master: at
        start, on SIGHUP, and when a file is replaced. Nothing done to a file afterwards can
        corrupt what they read; a replacement that is not a good database is refused."""
        now = utc_now()
        changed = [watch.check(now, force) for watch in self.geo_watches]
        if any(changed):
            for watch in self.geo_watches:
                if watch.refused is not None:
                    log.error(
                        "GeoIP %s file refused, old data serving: %s", watch.kind, watch.refused["error"]
                    )
            write_state(self.geo_state, self.geo_watches)

    def _refresh_rules(self) -> None:
        """New workers start on the last good ruleset: a broken change must not stop them booting."""
        try:
            self.last_good = load_ruleset(self.settings.rules_dir)
        except RulesetInvalid as invalid:
            log.error("rules rejected, workers keep %s:\n%s", self.last_good.hash, invalid)

    def load(self) -> Flask:
        # Called in each worker after the fork: every worker opens its own files and readers,
        # and watches the rules directory itself.
        logs.configure()
        app = create_app(self.settings, ruleset=self.last_good, geoip_state=self.geo_state)
        rt = runtime(app)
        if rt.reloader is not None:
            rt.reloader.start()
        if rt.geo_follower is not None:
            # Half the master's interval (a stat of a small file): the master notices a new file
            # within an interval (plus its ~1 s loop), the workers within half another.
            rt.geo_follower.start(self.settings.geoip_reload_interval / 2)
        return app


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Gunicorn's own messages (worker boots, exits, timeouts) as JSON lines too, like Herald's.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "service.web.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "INFO", "propagate": False},
        "herald": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


def metrics_directory() -> None:
    """Workers write their metrics to files in one directory, summed by /metrics. A fresh one per
    start, unless PROMETHEUS_MULTIPROC_DIR is set already; set before prometheus_client loads."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="herald-metrics-")


def serve(settings: Settings, ruleset: Ruleset, host: str, port: int, workers: int, threads: int) -> None:
    metrics_directory()
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        # gthread: a slow client holds a thread, not a whole worker.
        "worker_class": "gthread" if threads > 1 else "sync",
        "threads": threads,
        "accesslog": None,
        "errorlog": "-",
        "logconfig_dict": LOG_CONFIG,
        "loglevel": "info",
        "graceful_timeout": 10,
        "proc_name": "herald",
        "control_socket_disable": True,  # one shared socket path would clash between servers
        "worker_exit": worker_exit,
        "child_exit": child_exit,
    }
    HeraldServer(settings, options, ruleset).run()
