"""CORS (HERALD_ALLOWED_ORIGINS) and cache headers for the decision endpoints."""

from __future__ import annotations

from flask import Request, Response

from service.cdn import headers_for
from service.config import Settings

# Path -> the methods a browser may use on it across origins.
DECISION_METHODS = {"/v1/decisions": "GET, POST", "/v1/decisions/batch": "POST"}
# A browser may reuse a GET answer for a minute (the back button, a page that loads the widget twice):
# such a reuse is not logged again, and a rule change reaches that reader a minute late at most.
MAX_AGE = 60
PREFLIGHT_MAX_AGE = 600  # Chromium caps it at 7200, Firefox at 86400
ALLOWED_HEADERS = "Content-Type, Authorization"


class Cors:
    """Answers preflights from allowed origins, and marks every decision response: who may read it
    (CORS) and who may keep it (`private`: the answer depends on the reader's address)."""

    def __init__(self, settings: Settings) -> None:
        self.origins = settings.allowed_origins
        cdn = headers_for(settings.cdn, settings.country_header, settings.region_header)
        address = "Forwarded" if settings.proxy_header == "forwarded" else "X-Forwarded-For"
        located_by = filter(None, [cdn.country, cdn.region, cdn.edgescape])
        vary = ["Accept-Language", address, *located_by, "Origin"]
        self.vary = ", ".join(vary)
        self.private = f"private, max-age={MAX_AGE}"

    def allowed_origin(self, request: Request) -> str | None:
        """The value of Access-Control-Allow-Origin for this request, or None."""
        origin = request.headers.get("Origin")
        if origin is None or not self.origins:
            return None
        if self.origins == ("*",):
            return "*"
        return origin if origin.lower() in self.origins else None

    @staticmethod
    def is_preflight(request: Request) -> bool:
        return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers

    def preflight(self, request: Request) -> Response | None:
        """The answer to a preflight from an allowed origin; None for anything else."""
        if (
            request.method != "OPTIONS"
            or request.path not in DECISION_METHODS
            or not self.is_preflight(request)
        ):
            return None
        origin = self.allowed_origin(request)
        if origin is None:
            return None  # Flask's own OPTIONS answer, without CORS headers: the browser refuses
        response = Response(status=204)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = DECISION_METHODS[request.path]
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        response.vary.update(["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"])
        return response

    def decorate(self, request: Request, response: Response) -> None:
        """CORS and cache headers on a decision response (not on a preflight, which has its own)."""
        method = request.method
        if request.path not in DECISION_METHODS or (method == "OPTIONS" and self.is_preflight(request)):
            return
        headers = response.headers
        if self.origins:
            origin = self.allowed_origin(request)
            if origin is not None:
                headers["Access-Control-Allow-Origin"] = origin
        if method in ("GET", "HEAD") and response.status_code == 200:
            headers["Cache-Control"] = self.private
        else:  # a POST is one logged page view; an error is not worth keeping
            headers["Cache-Control"] = "no-store"
        # Set as one string: werkzeug's `response.vary` parses and rebuilds a header set each time.
        headers["Vary"] = f"{headers['Vary']}, {self.vary}" if "Vary" in headers else self.vary
