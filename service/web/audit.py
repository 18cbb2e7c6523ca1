"""Auditors' HTTP endpoints (off unless HERALD_AUDIT_HTTP=1): one decision explained, the summary."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("audit", __name__)
