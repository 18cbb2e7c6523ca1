"""CORS (HERALD_ALLOWED_ORIGINS) and cache headers for the decision endpoints, as request hooks."""

from __future__ import annotations

from flask import Flask, Response, request

from service.config import Settings

# Path -> the methods a browser may use on it across origins.
DECISION_METHODS = {"/v1/decisions": "GET, POST", "/v1/decisions/batch": "POST"}
# A browser may reuse a GET answer for a minute (the back button, a page that loads the widget twice):
# such a reuse is not logged again, and a rule change reaches that reader a minute late at most.
MAX_AGE = 60
PREFLIGHT_MAX_AGE = 600  # Chromium caps it at 7200, Firefox at 86400
ALLOWED_HEADERS = "Content-Type, Authorization"


def install(app: Flask, settings: Settings) -> None:
    """Answer preflights from allowed origins, and mark every decision response: who may read it
    (CORS) and who may keep it (`private`: the answer depends on the reader's address)."""
    origins = settings.allowed_origins
    vary = ["Accept-Language", "X-Forwarded-For", *filter(None, [settings.country_header]), "Origin"]

    def allowed_origin() -> str | None:
        """The value of Access-Control-Allow-Origin for this request, or None."""
        origin = request.headers.get("Origin")
        if origin is None or not origins:
            return None
        if origins == ("*",):
            return "*"
        return origin if origin.lower() in origins else None

    def is_preflight() -> bool:
        return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers

    @app.before_request
    def _preflight() -> Response | None:
        if not is_preflight() or request.path not in DECISION_METHODS:
            return None
        origin = allowed_origin()
        if origin is None:
            return None  # Flask's own OPTIONS answer, without CORS headers: the browser refuses
        response = Response(status=204)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = DECISION_METHODS[request.path]
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        response.vary.update(["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"])
        return response

    @app.after_request
    def _decision_headers(response: Response) -> Response:
        if request.path not in DECISION_METHODS or is_preflight():
            return response
        origin = allowed_origin()
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
        if request.method in ("GET", "HEAD") and response.status_code == 200:
            response.headers["Cache-Control"] = f"private, max-age={MAX_AGE}"
        else:  # a POST is one logged page view; an error is not worth keeping
            response.headers["Cache-Control"] = "no-store"
        response.vary.update(vary)
        return response
