"""Production serving: gunicorn running the app factory, one app per worker on the master's ruleset."""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from service.config import Settings
from service.engine import Engine
from service.geo_watch import DatabaseWatch, write_state
from service.loader import failure, load_ruleset
from service.problems import RulesetInvalid
from service.ruleset import Ruleset
from service.web import create_app, logs
from service.web.geodata import watches
from service.web.reload import fingerprint
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

    def __init__(self, settings: Settings, options: dict[str, Any], ruleset: Ruleset, files: str) -> None:
        self.settings = settings
        self.options = options
        # Rules are loaded and compiled here in the master (by `herald serve` at start, then by the
        # watcher or on SIGHUP), and forked workers inherit them: a large pack costs its parse
        # once, not once per worker.
        self.last_good = Engine(ruleset)
        self.previous: Ruleset | None = None  # the rules served before `last_good`, for the audit log
        self.files = files  # fingerprint of the rules directory `last_good` was loaded from
        self.rejected: tuple[str, RulesetInvalid] | None = None  # the change that failed, while it stands
        self._refreshing = threading.Lock()  # the watcher and SIGHUP may both refresh
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
        self.cfg.set("when_ready", lambda server: self._watch())
        self._refresh_rules()  # at start, the rules `herald serve` has just loaded: nothing to do
        self._refresh_geoip(force=True)

    def _watch(self) -> None:
        """In the master once it is ready: check the rules directory every HERALD_RELOAD_INTERVAL
        seconds; on a change, parse it here once and restart the workers gracefully (SIGHUP), so
        they are forked on the new rules, or on the last good ones with the rejection shown.
        Requests in flight finish on the workers that took them; the listening socket stays open."""
        interval = self.settings.reload_interval
        if interval <= 0:
            return

        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    if self._refresh_rules():
                        os.kill(os.getpid(), signal.SIGHUP)
                except Exception:  # the watcher must outlive any surprise; the next tick tries again
                    log.exception("rules check failed")

        threading.Thread(target=loop, name="herald-rules-watch", daemon=True).start()

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

    def _refresh_rules(self) -> bool:
        """Parse the rules directory if it changed; whether workers must be told. New workers start
        on the last good ruleset: a broken change must not stop them booting, and nothing in a
        rule file may stop the master (it would take every worker with it)."""
        with self._refreshing:
            return self._refresh(fingerprint(self.settings.rules_dir))

    def _refresh(self, files: str) -> bool:
        if files == self.files:  # the files of the rules in force: nothing to parse, nothing rejected
            changed, self.rejected = self.rejected is not None, None
            return changed
        if self.rejected is not None and files == self.rejected[0]:  # the same broken files again
            return False
        try:
            ruleset = load_ruleset(
                self.settings.rules_dir, max_total_bytes=self.settings.rules_max_bytes, positions=False
            )
            engine = self.last_good if ruleset.hash == self.last_good.hash else Engine(ruleset)
        except RulesetInvalid as invalid:
            self.rejected = (files, invalid)
            log.error("rules rejected, workers keep %s:\n%s", self.last_good.hash, invalid)
            return True
        except Exception as error:  # compiling failed (memory) or a bug: the master lives on
            log.exception("rules not loaded, workers keep %s", self.last_good.hash)
            self.rejected = (files, RulesetInvalid([failure(str(self.settings.rules_dir), error)]))
            return True
        if engine is not self.last_good:
            self.previous = self.last_good.ruleset
            log.info("rules loaded: %s -> %s; workers restart on them", self.last_good.hash, engine.hash)
        self.last_good, self.files, self.rejected = engine, files, None
        return True

    def load(self) -> Flask:
        # Called in each worker after the fork: every worker opens its own files and readers. It
        # does not watch the rules directory (the master does); its reloader serves only
        # POST /v1/ruleset/reload, which parses in the worker that answers, so that it can answer
        # with the outcome. The master sees the same change and restarts every worker on it.
        logs.configure()
        app = create_app(
            self.settings,
            engine=self.last_good,
            previous=self.previous,
            files=self.files,
            geoip_state=self.geo_state,
        )
        rt = runtime(app)
        if rt.reloader is not None and self.rejected is not None:  # the master's last load failed
            rt.reloader.seen = self.rejected[0]
            rt.reloader.reject(*self.rejected)
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


def serve(
    settings: Settings, ruleset: Ruleset, files: str, host: str, port: int, workers: int, threads: int
) -> None:
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
    HeraldServer(settings, options, ruleset, files).run()
