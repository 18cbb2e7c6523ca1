"""GeoIP and CDN location against a real `herald serve`: presets, merging, files replaced under load."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RULES
from tests.live import Server, request, serving, workers_seen
from tests.maxmind_data import data_dir
from tests.mmdb import build_city_db
from tests.test_cdn import SEVASTOPOL
from tests.test_geodata import FRESH, MOVED

RFERL = {"publisher": "rferl"}
NOTICE = "rferl-undesirable"
INTERVAL = 2.0
RULES_DIR = {"HERALD_RULES_DIR": str(RULES)}
# The country header alone, as each CDN sends it without its region header.
COUNTRY_ONLY = {cdn: dict(list(headers.items())[:1]) for cdn, headers in SEVASTOPOL.items()}
COUNTRY_ONLY["akamai"] = {"X-Akamai-Edgescape": "georegion=246,country_code=UA"}


def decide(server: Server, headers: dict[str, str]) -> tuple[Any, ...]:
    status, body = request(server.base + "/v1/decisions", {"article": RFERL}, headers)
    assert status == 200, body
    reader = body["reader"]
    return reader["country"], reader["subdivision"], reader["source"], [n["id"] for n in body["notices"]]


@pytest.mark.parametrize("cdn", sorted(SEVASTOPOL))
def test_each_cdn_preset_on_a_real_server(cdn: str, tmp_path: Path, city_db: Path) -> None:
    env = {
        "HERALD_GEOIP_DB": str(city_db),
        "HERALD_TRUSTED_PROXIES": "127.0.0.1",
        "HERALD_CDN": cdn,
        **RULES_DIR,
    }
    with serving(tmp_path, env, workers=1) as server:
        # Sevastopol by the CDN's region, although GeoIP places the address in Kyiv
        assert decide(server, {"X-Forwarded-For": "93.72.0.1", **SEVASTOPOL[cdn]}) == (
            "UA",
            "UA-40",
            "header",
            [NOTICE],
        )
        # Kerch: the CDN's country agrees with GeoIP's, so GeoIP's subdivision stays
        assert decide(server, {"X-Forwarded-For": "5.59.104.1", **COUNTRY_ONLY[cdn]}) == (
            "UA",
            "UA-43",
            "header",
            [NOTICE],
        )
        # Kyiv by the CDN and by GeoIP: nothing
        assert decide(server, {"X-Forwarded-For": "93.72.0.1", **COUNTRY_ONLY[cdn]})[3] == []


class Load:
    """Decisions sent without pause from a thread until stopped, counted by status."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 60  # bounded, whatever happens to the test
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                status, _ = request(
                    self.server.base + "/v1/decisions", {"article": RFERL}, {"X-Forwarded-For": "5.59.104.1"}
                )
                self.statuses[status] += 1
            except OSError:
                self.errors += 1

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def live_env(watched: Path) -> dict[str, str]:
    return {
        "HERALD_GEOIP_DB": str(watched),
        "HERALD_TRUSTED_PROXIES": "127.0.0.1",
        "HERALD_GEOIP_RELOAD_INTERVAL": str(INTERVAL),
        **RULES_DIR,
    }


def test_a_file_renamed_over_under_load_reaches_every_worker_within_two_intervals(
    tmp_path: Path, watched: Path
) -> None:
    with serving(tmp_path, live_env(watched), workers=2) as server, Load(server) as load:
        time.sleep(0.5)
        fresh = tmp_path / "GeoLite2-City.mmdb.new"
        build_city_db(fresh, MOVED, build_epoch=FRESH)
        renamed = time.monotonic()
        fresh.replace(watched)
        workers_seen(
            server, lambda body: body["geoip"]["build_date"].startswith("2025-05-20"), 2, 3 * INTERVAL
        )
        took = time.monotonic() - renamed
        assert decide(server, {"X-Forwarded-For": "5.59.104.1"})[:2] == ("CZ", None)
    assert took <= 2 * INTERVAL + 0.5, took  # 0.5 s: sampling /readyz until both workers answered
    assert set(load.statuses) == {200} and load.errors == 0, (load.statuses, load.errors)
    assert load.statuses[200] > 20


def test_a_corrupt_replacement_is_refused_and_the_old_data_keeps_serving(
    tmp_path: Path, city_db: Path, watched: Path
) -> None:
    with serving(tmp_path, live_env(watched), workers=2) as server, Load(server) as load:
        broken = tmp_path / "GeoLite2-City.mmdb.new"
        broken.write_bytes(city_db.read_bytes()[: city_db.stat().st_size // 2])  # a truncated download
        broken.replace(watched)
        workers_seen(server, lambda body: body.get("geoip_refused") is not None, 2, 3 * INTERVAL)
        assert decide(server, {"X-Forwarded-For": "5.59.104.1"}) == ("UA", "UA-43", "geoip", [NOTICE])
        status, body = request(server.base + "/readyz")
        assert status == 200 and any("refused" in w for w in body["warnings"])
    assert set(load.statuses) == {200} and load.errors == 0


def test_a_database_of_the_wrong_kind_is_named_by_its_configured_path(tmp_path: Path) -> None:
    country = data_dir() / "test-data" / "GeoIP2-Country-Test.mmdb"
    with serving(tmp_path, {"HERALD_GEOIP_DB": str(country), **RULES_DIR}, workers=1) as server:
        status, body = request(server.base + "/readyz")
    assert status == 503
    # Named by its setting: /readyz shows no paths of the server's disk to callers without a key.
    assert body["reasons"][0].startswith("GeoIP database $HERALD_GEOIP_DB is a 'GeoIP2-Country' database")
    assert str(country) not in str(body)
    assert "/proc/" not in body["reasons"][0]
