"""The Flask shell: `create_app(settings)` builds the app, its ruleset, GeoIP reader and logger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from service.audit.log import Events, NoAudit, open_audit
from service.config import Settings
from service.engine import Engine
from service.geo import GeoDatabase, GeoDatabaseError, embedded_database_path
from service.loader import load_ruleset
from service.problems import RulesetInvalid
from service.ruleset import Ruleset
from service.web import admin, audit, decisions, explain, problems, status
from service.web.reload import Reloader, fingerprint
from service.web.runtime import Answered, DecisionLogger, Runtime, new_decision_id, utc_now

log = logging.getLogger("herald")


def open_geo(settings: Settings) -> tuple[GeoDatabase | None, str | None]:
    """The configured GeoIP database, or None and why. A missing database does not stop the
    service: readers are then located as unknown, and /readyz says so."""
    path = settings.geoip_db or embedded_database_path()
    try:
        return GeoDatabase.open(path, locate_non_global=settings.locate_private), None
    except GeoDatabaseError as error:
        message = f"{error} (set HERALD_GEOIP_DB to a GeoIP2/GeoLite2 City database)"
        log.error(message)
        return None, message


def create_app(
    settings: Settings | None = None,
    *,
    log_decision: DecisionLogger | None = None,
    clock: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = new_decision_id,
    ruleset: Ruleset | None = None,
) -> Flask:
    """The Herald app. Raises RulesetInvalid when the rules do not load: a broken ruleset never serves.

    Without an injected `log_decision`, decisions and events go to the audit log of the settings.
    A `ruleset` given (by the gunicorn master: the last good one) is served instead of loading the
    directory; the reloader then loads the directory at its first check."""
    settings = settings or Settings()
    events: Events = NoAudit() if log_decision is not None else open_audit(settings)
    events.started()
    if ruleset is not None:
        events.ruleset_loaded(ruleset)
    engine = Engine(ruleset or _load_rules(settings, events))
    geo, geo_error = open_geo(settings)
    app = Flask("herald")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    rt = Runtime(settings, engine, clock(), geo, geo_error, clock, new_id)
    rt.audit = events
    rt.log_decision = log_decision or _to_audit(events)
    rt.reloader = Reloader(rt, settings.reload_interval)
    if ruleset is None:
        rt.reloader.seen = fingerprint(settings.rules_dir)
    app.extensions["herald"] = rt
    problems.install(app)
    app.register_blueprint(decisions.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(explain.bp)
    if settings.audit_http:
        app.register_blueprint(audit.bp)
    if settings.admin_http:
        app.register_blueprint(admin.bp)
    return app


def _load_rules(settings: Settings, events: Events) -> Ruleset:
    try:
        ruleset = load_ruleset(settings.rules_dir)
    except RulesetInvalid as error:
        events.ruleset_rejected([str(p) for p in error.problems])
        events.stopped("rules rejected")
        raise
    events.ruleset_loaded(ruleset)
    return ruleset


def _to_audit(events: Events) -> DecisionLogger:
    def log_decision(answered: Answered) -> None:
        events.decision(answered.decision_id, answered.article, answered.decision, answered.address)

    return log_decision
