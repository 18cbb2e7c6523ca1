"""Admin endpoints (keys with the role admin, or HERALD_ADMIN_HTTP=1 without keys): reload the rules."""

from __future__ import annotations

from flask import Blueprint, Response, request

from service.web.body import read_json
from service.web.problems import ApiProblem
from service.web.runtime import runtime
from service.web.status import json_response

bp = Blueprint("admin", __name__)


@bp.post("/v1/ruleset/reload")
def reload() -> Response:
    """Load the rules directory now in this worker. Other workers follow at their next check
    (within HERALD_RELOAD_INTERVAL). A broken ruleset is a 422 listing every problem.

    The request must say `Content-Type: application/json` (its body empty or `{}`): a page on another
    site can make a browser POST a form (urlencoded, multipart, text/plain) with the admin's
    credentials, but not JSON without a CORS preflight, which Herald never grants here."""
    if not request.is_json:
        raise ApiProblem(
            415,
            "Unsupported Media Type",
            "send Content-Type: application/json (with {} or no body), "
            f"not {request.mimetype or 'nothing'!r}",
        )
    data = request.get_data(cache=False)
    if data.strip() and read_json(data) != {}:
        raise ApiProblem(422, "Unprocessable Content", "the reload takes no parameters: send {} or no body")
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
