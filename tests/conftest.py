"""Shared fixtures: a GeoIP database built for the tests, settings on the bundled rules, an app."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.audit.store import connect, upgrade
from service.config import Settings
from service.web import create_app
from service.web.runtime import Answered
from tests.mmdb import build_city_db
from tests.postgres import Postgres, running

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_city_db(tmp_path_factory.mktemp("geo") / "City-Test.mmdb")


@pytest.fixture
def watched(tmp_path: Path, city_db: Path) -> Path:
    """A copy of the test City database in tmp_path, for tests that replace it as geoipupdate does."""
    path = tmp_path / "GeoLite2-City.mmdb"
    shutil.copyfile(city_db, path)
    return path


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HERALD_* variable from the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("HERALD_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(city_db: Path, tmp_path: Path) -> Settings:
    return Settings(rules_dir=RULES, geoip_db=city_db, audit_dir=tmp_path / "audit")


@pytest.fixture
def logged() -> list[Answered]:
    return []


@pytest.fixture
def make_app(logged: list[Answered]) -> Callable[..., Flask]:
    def make(settings: Settings) -> Flask:
        return create_app(settings, log_decision=logged.append, clock=lambda: NOW)

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask], settings: Settings) -> Flask:
    return make_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server, started once for the session (tests/postgres.py), with a template
    database at Herald's latest schema."""
    with running() as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE herald_template")
        with connect(server.url("herald_template")) as conn:
            upgrade(conn)
        yield server


@pytest.fixture
def audit_db(postgres: Postgres) -> str:
    """The URL of a fresh audit database of its own for one test, already initialised."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE herald_template STRATEGY FILE_COPY")
    return postgres.url(name)
