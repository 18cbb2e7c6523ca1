"""The auditors' dashboard (GET /audit): decisions and notices by day and country, a decision lookup,
and whether the log is intact. Served where the audit endpoints are (HERALD_AUDIT_HTTP, or keys)."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any, cast

from flask import Blueprint, render_template, request

from service.audit.logged_verdicts import explain_decision
from service.audit.query import By, WhatIf, end_after
from service.audit.summary import notice_ids
from service.web import chart
from service.web.audit import open_source_or_503
from service.web.pages import POLICY
from service.web.runtime import Runtime, runtime

# Blueprint name "pages_audit": service/web/auth.py gives it the auditor's role when keys are used.
bp = Blueprint("pages_audit", __name__, template_folder="templates")
DEFAULT_DAYS = 14
MAX_DAYS = 366


EARLIEST, LATEST = date(2000, 1, 1), date(9000, 1, 1)


@bp.get("/audit")
def dashboard() -> tuple[str, int, dict[str, str]]:
    rt = runtime()
    today = rt.clock().date()
    errors: list[str] = []
    last = _day(request.args.get("last"), "last", errors) or today
    first = _day(request.args.get("first"), "first", errors) or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        errors.append(f"the first day ({first}) is after the last ({last})")
        first = last
    if (last - first).days >= MAX_DAYS:
        errors.append(f"at most {MAX_DAYS} days at once: showing {MAX_DAYS} days up to {last}")
        first = last - timedelta(days=MAX_DAYS - 1)
    what_if = _choice("what_if", ("exclude", "include", "only"), errors)
    by = _choice("by", ("logged", "decided"), errors)
    unknown = sorted(set(request.args) - {"first", "last", "decision", "what_if", "by"})
    if unknown:
        errors.append(f"unknown parameter {unknown[0]!r}")
    # Both days included, as `herald audit summary --from FIRST --to LAST` counts them.
    with open_source_or_503(rt.settings) as source:
        rows = source.summarize(
            first.isoformat(), end_after(last.isoformat()), by=cast(By, by), what_if=cast(WhatIf, what_if)
        )
    days = chart.days_between(first, last)
    counts = chart.by_country(rows)
    notices = notice_ids(rows)
    table = [
        {"day": day, "country": country or chart.UNKNOWN, "decisions": row.decisions, "notices": row.notices}
        for (day, country, _), row in rows.items()
    ]
    context: dict[str, Any] = {
        "first": first.isoformat(),
        "last": last.isoformat(),
        "what_if": what_if,
        "by": by,
        "errors": errors,
        "chart": chart.build(rows, days),
        "table": table,
        "notice_ids": notices,
        "totals": {
            "decisions": sum(d for d, _ in counts.values()),
            "shown": sum(n for _, n in counts.values()),
            "by_notice": {n: sum(r.notices[n] for r in rows.values()) for n in notices},
        },
        "verification": _verification(rt),
        "lookup": _lookup(rt, request.args.get("decision", "").strip()),
    }
    status = 404 if context["lookup"] and context["lookup"]["record"] is None else 400 if errors else 200
    return render_template("audit.html", **context), status, {"Content-Security-Policy": POLICY}


def _choice(name: str, allowed: tuple[str, ...], errors: list[str]) -> str:
    """A parameter with a few allowed values, the first being the default."""
    value = request.args.get(name, allowed[0])
    if value not in allowed:
        errors.append(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        return allowed[0]
    return value


def _day(value: str | None, name: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        errors.append(f"{name}: {value!r} is not a date (YYYY-MM-DD)")
        return None
    if not EARLIEST <= day <= LATEST:  # keeps the range arithmetic inside the calendar
        errors.append(f"{name}: {value!r} is outside {EARLIEST.isoformat()}..{LATEST.isoformat()}")
        return None
    return day


_verified: dict[str, Any] = {}  # the last verification and when it ran (monotonic seconds)
VERIFY_EVERY = 60.0


def _verification(rt: Runtime) -> dict[str, Any]:
    """`herald audit verify` over the log, run at most once a minute by a worker: it reads every
    file, and a page anyone with the auditor key can reload must not make it run on every view."""
    where = rt.settings.audit_db_url or str(rt.settings.audit_dir)
    cached = _verified.get(where)
    if cached is not None and time.monotonic() - cached["at"] < VERIFY_EVERY:
        return dict(cached["report"])
    report = _verify(rt)
    _verified[where] = {"at": time.monotonic(), "report": report}
    return report


def _verify(rt: Runtime) -> dict[str, Any]:
    started = time.perf_counter()
    with open_source_or_503(rt.settings) as source:
        report = source.verify(rt.settings.audit_key_bytes, [rt.settings.audit_checkpoint_path])
    return {
        "ok": report.ok,
        "files": len(report.files),
        "records": sum(f.records for f in report.files),
        "rulesets": len(report.rulesets),
        "problems": [
            {
                "file": f.path.name,
                "kind": f.problem.kind,
                "seq": f.problem.seq,
                "line": f.problem.line,
                "detail": f.problem.detail,
            }
            for f in [*report.files, *report.checkpoints]  # the checkpoint log's own chain too
            if f.problem is not None
        ],
        "bad_rulesets": [r.path.name for r in report.rulesets if not r.ok],
        "seconds": time.perf_counter() - started,
    }


def _lookup(rt: Runtime, decision_id: str) -> dict[str, Any] | None:
    """The record of one decision and its explanation (replay verdict, every rule's checks)."""
    if not decision_id:
        return None
    with open_source_or_503(rt.settings) as source:
        record = source.find_decision(decision_id)
        if record is None:
            return {"id": decision_id, "record": None, "explanation": None}
        explanation = explain_decision(record, source.engines())
    return {"id": decision_id, "record": record, "explanation": explanation}
