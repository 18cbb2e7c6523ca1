"""The Flask shell: `create_app(settings)` builds the app, its ruleset, GeoIP reader and logger."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from flask import Flask, g, has_request_context

from service.audit.archive import Archive
from service.audit.log import AuditLog, Events, NoAudit, open_audit
from service.audit.usage import UsageMeter
from service.config import Settings
from service.engine import Engine
from service.keys import KeyStore
from service.loader import load_ruleset
from service.problems import RulesetInvalid
from service.ruleset import Ruleset
from service.web import admin, audit, auth, decisions, explain_api, hooks, problems, status, witness
from service.web.dashboard import bp as dashboard_bp
from service.web.geodata import GeoFollower, geo_warnings
from service.web.pages import bp as pages_bp
from service.web.problems import ApiProblem
from service.web.reload import Reloader, fingerprint
from service.web.runtime import Answered, DecisionLogger, DecisionsLogger, Runtime, new_decision_id, utc_now
from service.web.whatif import PastRules

log = logging.getLogger("herald")


def create_app(
    settings: Settings | None = None,
    *,
    log_decision: DecisionLogger | None = None,
    clock: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = new_decision_id,
    engine: Engine | None = None,
    previous: Ruleset | None = None,
    files: str | None = None,
    geoip_state: Path | None = None,
) -> Flask:
    """The Herald app. Raises RulesetInvalid when the rules do not load: a broken ruleset never serves.

    Without an injected `log_decision`, decisions and events go to the audit log of the settings.
    An `engine` given (by the gunicorn master: the last good rules, compiled) is served instead of
    loading the directory; `files` is the fingerprint of the directory its rules were loaded from,
    so the reloader loads again only when the directory differs (without it, at its first check);
    `previous` is what was served before it, for the `ruleset_loaded` event's changes.
    `geoip_state` is the gunicorn master's GeoIP state file (see `geo_watch`); without it the app
    watches the GeoIP files itself."""
    settings = settings or Settings()
    # The app's clock is the log's too: a record's `ts` and a page view's `at` come from one clock.
    events: Events = NoAudit() if log_decision is not None else open_audit(settings, clock)
    events.started()
    if engine is not None:
        events.ruleset_loaded(engine.ruleset, previous=previous)
    else:
        # Taken before loading: a change made while the rules load is then seen at the first check.
        files = fingerprint(settings.rules_dir)
        engine = Engine(_load_rules(settings, events))
    app = Flask("herald")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    rt = Runtime(settings, engine, clock(), None, "GeoIP database not loaded", clock, new_id)
    rt.geo_follower = GeoFollower(rt, geoip_state)
    rt.geo_follower.check(force=True)
    for warning in geo_warnings(rt):
        log.warning(warning)
    rt.audit = events
    rt.past = PastRules(Archive(settings.audit_dir))
    rt.usage = UsageMeter(settings.audit_dir, wall=clock)
    rt.usage.measure()  # the first measure: the growth rate is measured from it
    rt.keys = KeyStore(settings.keys_file) if settings.keys_file else None
    if isinstance(events, AuditLog) and events.writer.witness is not None:
        events.writer.witness.count = rt.metrics.audit_witness  # failed and dropped ones in /metrics
    rt.log_decisions = _observed(rt, _one_by_one(log_decision) if log_decision else _to_audit(rt))
    rt.metrics.serving(engine.hash)
    rt.reloader = Reloader(rt, settings.rules_dir, settings.rules_max_bytes, rt.metrics, clock)
    rt.reloader.seen = files
    app.extensions["herald"] = rt
    problems.install(app)
    hooks.install(app, settings, rt.metrics)
    app.register_blueprint(status.metrics_bp)
    auth.install(app, rt.keys, settings.decisions_need_key)
    app.register_blueprint(decisions.bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(explain_api.bp)
    # With keys, audit and admin endpoints are served to keys with those roles; without keys, only
    # when asked for (development, or a network that only auditors and admins reach).
    if settings.audit_http or settings.keys_file:
        app.register_blueprint(audit.bp)
        app.register_blueprint(witness.bp)
        app.register_blueprint(dashboard_bp)
    if settings.admin_http or settings.keys_file:
        app.register_blueprint(admin.bp)
    return app


def _load_rules(settings: Settings, events: Events) -> Ruleset:
    try:
        ruleset = load_ruleset(settings.rules_dir, max_total_bytes=settings.rules_max_bytes, positions=False)
    except RulesetInvalid as error:
        events.ruleset_rejected([str(p) for p in error.problems])
        events.stopped("rules rejected")
        raise
    events.ruleset_loaded(ruleset)
    return ruleset


def _observed(rt: Runtime, log_decisions: DecisionsLogger) -> DecisionsLogger:
    """Count the decisions and name them in the access log, then record them."""

    def observed(batch: Sequence[Answered]) -> None:
        rt.metrics.decided([a.decision for a in batch], what_if=batch[0].what_if)
        if has_request_context() and "herald_decisions" in g:
            g.herald_decisions.extend(a.decision_id for a in batch)
        log_decisions(batch)

    return observed


def _one_by_one(log_decision: DecisionLogger) -> DecisionsLogger:
    """An injected logger (tests) is given the decisions of a request one by one."""

    def log_decisions(batch: Sequence[Answered]) -> None:
        for answered in batch:
            log_decision(answered)

    return log_decisions


def _to_audit(rt: Runtime) -> DecisionsLogger:
    """Write the decisions to the audit log before the answer leaves, a request's decisions in one
    group commit. If the log cannot be written, HERALD_AUDIT_FAILURE decides: closed answers 503;
    open (default) answers, counts the lost records, says so in /readyz, and logs a `records_lost`
    event once the log takes records again. Open is the default because a reader in Russia who is
    not warned is the greater harm; an auditor still learns how many answers went unrecorded, and when."""

    lock = threading.Lock()  # the count of lost records is shared by the worker's threads

    def log_decisions(batch: Sequence[Answered]) -> None:
        with lock:  # the writer serializes its writes anyway: this costs no extra waiting
            _record(batch)

    def _record(batch: Sequence[Answered]) -> None:
        first = batch[0]  # one request: one reader (address), one instant, one ruleset
        try:
            if rt.audit_lost and rt.audit_lost_since is not None:
                rt.audit.records_lost(rt.audit_lost, rt.audit_lost_since)
                rt.audit_lost, rt.audit_lost_since = 0, None
            rt.audit.decisions(
                [(a.decision_id, a.article, a.decision) for a in batch],
                first.address,
                what_if=first.what_if,
                named_tags=first.named_tags,
            )
        except (OSError, RuntimeError) as error:
            rt.metrics.audit_record("lost", len(batch))
            if rt.settings.audit_failure == "closed":
                raise ApiProblem(503, "Audit log unavailable", "the decision could not be recorded") from None
            if not rt.audit_lost:
                log.error("audit log not writable, answering without records: %s", error)
                rt.audit_lost_since = rt.clock()
            rt.audit_lost += len(batch)
            return
        rt.metrics.audit_record("written", len(batch))

    return log_decisions
