"""Settings: parsed from HERALD_* variables, each documented in the README."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from service.config import SettingsError, env_names, load_settings
from tests.conftest import REPO


def test_defaults() -> None:
    settings = load_settings()
    assert str(settings.rules_dir) == "rules" and settings.geoip_db is None
    assert settings.trusted_proxies == () and settings.country_header is None


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32 192.0.2.1")
    monkeypatch.setenv("HERALD_COUNTRY_HEADER", "CF-IPCountry")
    settings = load_settings()
    assert settings.trusted_proxies == (
        ip_network("10.0.0.0/8"),
        ip_network("2001:db8::/32"),
        ip_network("192.0.2.1/32"),
    )
    assert settings.country_header == "CF-IPCountry"


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_RULES_DIR", "/from/env")
    assert str(load_settings(rules_dir="/from/option").rules_dir) == "/from/option"
    assert str(load_settings(rules_dir=None).rules_dir) == "/from/env"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HERALD_MAX_BATCH", "0", "HERALD_MAX_BATCH: Input should be greater than or equal to 1"),
        (
            "HERALD_COUNTRY_HEADER",
            "CF IPCountry",
            "HERALD_COUNTRY_HEADER: 'CF IPCountry' is not an HTTP header name",
        ),
        ("HERALD_TRUSTED_PROXIES", "nonsense", "HERALD_TRUSTED_PROXIES: 'nonsense' is not a network"),
        ("HERALD_GEOIP", "x", "HERALD_GEOIP: unknown setting"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(message)


def test_every_setting_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [name for name in env_names() if f"`{name}`" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"
