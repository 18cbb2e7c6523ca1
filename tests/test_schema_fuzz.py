"""Schemathesis against the app's own /openapi.json: no 5xx, and every response fits the schema."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import positive_data_acceptance

from service.config import Settings
from service.web import create_app
from tests.conftest import RULES
from tests.mmdb import build_city_db

_DIR = Path(tempfile.mkdtemp(prefix="herald-fuzz-"))
APP = create_app(
    Settings(
        rules_dir=RULES,
        geoip_db=build_city_db(_DIR / "City.mmdb"),
        audit_dir=_DIR / "audit",
        audit_http=True,  # POST /v1/audit/checkpoints is in the schema: serve it
    ),
    log_decision=lambda answered: None,
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_fits_its_schema(case: Case) -> None:
    # Schema-valid data may still be refused (422): the schema cannot say which country codes ISO
    # lists, nor that an IP address must parse. Every other check holds: no 5xx, declared status
    # codes and content types, responses that fit their schemas, schema-invalid data refused.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
