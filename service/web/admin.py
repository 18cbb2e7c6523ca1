"""Admin endpoints (keys with the role admin, or HERALD_ADMIN_HTTP=1 without keys): reload the rules."""

from __future__ import annotations

from flask import Blueprint, Response

from service.web.problems import ApiProblem
from service.web.runtime import runtime
from service.web.status import json_response

bp = Blueprint("admin", __name__)


@bp.post("/v1/ruleset/reload")
def reload() -> Response:
    """Load the rules directory now in this worker. Other workers follow at their next check
    (within HERALD_RELOAD_INTERVAL). A broken ruleset is a 422 listing every problem."""
    rt = runtime()
    reloader = rt.reloader
    assert reloader is not None  # create_app always makes one
    outcome = reloader.check(force=True)
    if outcome.status == "rejected" and outcome.rejection is not None:
        errors = [
            {"location": f"{p.file}:{p.line}:{p.column}", "message": p.message, "type": p.code}
            for p in outcome.rejection.problems
        ]
        raise ApiProblem(
            422, "Rules rejected", f"the rules do not load; still serving {outcome.ruleset}", errors
        )
    return json_response({"status": outcome.status, "ruleset": outcome.ruleset})
