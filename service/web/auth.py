"""Access control: which role each endpoint needs, checked from `Authorization: Bearer <key>`."""

from __future__ import annotations

import base64
import logging

from flask import Flask, request

from service.keys import KeyStore
from service.web.logs import reduced_peer
from service.web.problems import ApiProblem
from service.web.runtime import runtime

log = logging.getLogger("herald.auth")

# Blueprint name -> role. Endpoints of other blueprints (health, status, OpenAPI, widget) are open.
# /metrics tells what readers see where and when: a scraper's key (metrics) or an auditor's (audit).
ROLE_OF_BLUEPRINT = {
    "audit": "audit",
    "witness": "audit",
    "pages_audit": "audit",
    "admin": "admin",
    "metrics": "metrics",
}
ALSO_ALLOWED = {"metrics": frozenset({"audit"})}  # role -> other roles that may do the same
OPERATOR_ROLES = frozenset({"admin", "audit", "metrics"})  # see paths on this server (/readyz)
DECISION_BLUEPRINTS = {"decisions", "explain"}
DECISION_ENDPOINTS = {"pages.preview"}  # the widget script itself stays open: browsers fetch it
PAGE_BLUEPRINTS = {"pages_audit"}


def presented_key(header: str) -> str | None:
    """The key in `Authorization: Bearer <key>`, or the password of `Basic` (what a browser sends)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return password or None
    return None


def install(app: Flask, keys: KeyStore | None, decisions_need_key: bool) -> None:
    """Check keys before every request. Without a keys file nothing is checked (audit and admin
    endpoints are then only served when HERALD_AUDIT_HTTP / HERALD_ADMIN_HTTP say so)."""
    if keys is None:
        return

    @app.before_request
    def _check() -> None:
        blueprint = request.blueprint or ""
        role = ROLE_OF_BLUEPRINT.get(blueprint)
        if (
            role is None
            and decisions_need_key
            and (blueprint in DECISION_BLUEPRINTS or request.endpoint in DECISION_ENDPOINTS)
        ):
            role = "decide"
        if role is None or request.method == "OPTIONS":
            return
        presented = presented_key(request.headers.get("Authorization", ""))
        key = keys.find(presented) if presented else None
        if key is None:
            _refused("no key" if not presented else "unknown key", role, None)
            # Pages ask the browser for the key as a password (any user name); APIs take a Bearer key.
            page = blueprint in PAGE_BLUEPRINTS
            how = "give it as the password (any user name) when the browser asks, or send" if page else "send"
            raise ApiProblem(
                401,
                "Unauthorized",
                f"this endpoint needs a key with the role {role!r}: {how} Authorization: Bearer <key>",
                headers={"WWW-Authenticate": 'Basic realm="herald"' if page else 'Bearer realm="herald"'},
            )
        if role not in key.roles and not key.roles & ALSO_ALLOWED.get(role, frozenset()):
            _refused("role missing", role, key.name)
            raise ApiProblem(403, "Forbidden", f"key {key.name!r} does not have the role {role!r}")


def operator_key(keys: KeyStore | None) -> bool:
    """The request bears a key of an operator (admin, audit or metrics): it may see server paths."""
    presented = presented_key(request.headers.get("Authorization", "")) if keys is not None else None
    key = keys.find(presented) if keys is not None and presented else None
    return key is not None and bool(key.roles & OPERATOR_ROLES)


def _refused(reason: str, role: str, name: str | None) -> None:
    """Log the attempt, never the key itself."""
    runtime().metrics.auth_refused(reason)
    log.warning(
        "access refused",
        extra={
            "reason": reason,
            "role": role,
            "key_name": name,
            "path": request.path,
            "peer": reduced_peer(),
        },
    )
