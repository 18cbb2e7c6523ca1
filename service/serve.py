"""Production serving: gunicorn running the app factory, one app (ruleset, GeoIP reader) per worker."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from service.config import Settings
from service.web import create_app
from service.web.runtime import runtime


def worker_exit(server: Any, worker: Any) -> None:
    """Gunicorn hook, in the worker as it exits: the `stopped` event closes its audit file."""
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        runtime(app).audit.stopped("worker exit")


class HeraldServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn with its options given in code, not read from a config file or argv."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Called in each worker after the fork: every worker opens its own files and readers.
        return create_app(self.settings)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def serve(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        # gthread: a slow client holds a thread, not a whole worker.
        "worker_class": "gthread" if threads > 1 else "sync",
        "threads": threads,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "graceful_timeout": 10,
        "proc_name": "herald",
        "control_socket_disable": True,  # one shared socket path would clash between servers
        "worker_exit": worker_exit,
    }
    HeraldServer(settings, options).run()
