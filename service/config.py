"""Settings from the environment (HERALD_*), validated at start with messages naming the variable."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.loader import MAX_TOTAL_BYTES
from service.network import IPNetwork, parse_networks


def _networks(value: Any) -> Any:
    return parse_networks(value) if isinstance(value, str) else value


def _empty_is_none(value: Any) -> Any:
    """`HERALD_X=` (set but empty) means the default, as in most Unix tools."""
    return None if isinstance(value, str) and not value.strip() else value


def _split(value: Any) -> Any:
    return tuple(e for e in re.split(r"[,\s]+", value.strip()) if e) if isinstance(value, str) else value


_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?/?$")
_DEFAULT_PORT = {"http": "80", "https": "443"}
MIN_KEY_BYTES = 32  # HERALD_AUDIT_KEY: 256 bits, the HMAC-SHA256 block's worth of guessing


def _origin(text: str) -> str:
    """An origin as browsers send it: lower-case `scheme://host[:port]`, no default port, no slash."""
    match = _ORIGIN.match(text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not an origin: give scheme://host[:port], e.g. https://www.rferl.org")
    scheme, host, port = match.groups()
    return f"{scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORT[scheme] else "")


class Settings(BaseSettings):
    """Every setting has a default and help; `herald settings` and the README list them all."""

    model_config = SettingsConfigDict(env_prefix="HERALD_", frozen=True, extra="forbid")

    rules_dir: Path = Field(Path("rules"), description="Directory of YAML rule files.")
    rules_max_bytes: int = Field(
        MAX_TOTAL_BYTES,
        ge=1024,
        description="Most bytes of all rule files together (each file: at most 5 MiB); more is a "
        "rejection, as a broken file is.",
    )
    geoip_db: Annotated[Path | None, BeforeValidator(_empty_is_none)] = Field(
        None,
        description="GeoIP2/GeoLite2 City (or GeoIP2 Enterprise) .mmdb file, kept current by geoipupdate. "
        "Default (also when empty): the embedded GeoLite2 City of 2019, demo data only.",
    )
    anonymous_ip_db: Annotated[Path | None, BeforeValidator(_empty_is_none)] = Field(
        None,
        description="MaxMind GeoIP2 Anonymous IP .mmdb file: readers behind a VPN, proxy, Tor or hosting "
        "provider are anonymized. Default: none (only a CDN's Tor code and old City traits say so).",
    )
    geoip_reload_interval: float = Field(
        60.0,
        ge=0,
        description="Seconds between checks of the GeoIP files for a replacement (as geoipupdate makes); "
        "every worker serves a good new file within two intervals (0: only on SIGHUP).",
    )
    geoip_max_age_days: float = Field(
        35.0,
        gt=0,
        description="GeoIP data older than this many days is reported stale in /readyz (still ready).",
    )
    audit_dir: Path = Field(Path("var/audit"), description="Directory of the audit log.")
    audit: Literal["on", "off"] = Field(
        "on", description="off: log no decisions. For benchmarks and development only, never in production."
    )
    audit_fsync: str = Field(
        "1",
        description="When audit records are forced to disk: none (the OS decides; a crash of the "
        "process loses nothing, a power cut may), always (every record), or N seconds at most between "
        "fsyncs. Every record is written and flushed to the OS before its answer leaves, whatever this says.",
    )
    audit_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=4096,
        description="Size at which an audit file is rotated; files also rotate daily (UTC).",
    )
    audit_key: SecretStr | None = Field(
        None,
        description="Secret for HMAC-SHA256 audit chains and checkpoints, at least 32 bytes: without it "
        "nobody can rewrite the log unseen.",
    )
    audit_checkpoint_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds between checkpoints: each audit writer logs its chain head (file, seq, hash) "
        "at least this often, and when it closes a file; verify finds any cut below a checkpoint.",
    )
    audit_checkpoint_dir: Path | None = Field(
        None,
        description="Directory of the checkpoint log; best on another disk or mount, writable by Herald "
        "only. Default: checkpoints/ in HERALD_AUDIT_DIR.",
    )
    audit_witness: str | None = Field(
        None,
        description="URL to POST every checkpoint to, e.g. another Herald's "
        "https://witness.example/v1/audit/checkpoints (in the background: never slows a decision).",
    )
    audit_witness_key: SecretStr | None = Field(
        None,
        description="Key sent to HERALD_AUDIT_WITNESS as a Bearer token (a key with the role audit there).",
    )
    audit_address: Literal["network", "full", "hash", "none"] = Field(
        "network",
        description="What the audit log keeps of the reader's address: network (IPv4 /24, IPv6 /48), "
        "full, hash (HMAC with HERALD_AUDIT_ADDRESS_KEY) or none.",
    )
    audit_address_key: SecretStr | None = Field(None, description="Secret for HERALD_AUDIT_ADDRESS=hash.")
    audit_node: str | None = Field(
        None, description="Node name in audit records and file names. Default: host name."
    )
    audit_db: SecretStr | None = Field(
        None,
        description="PostgreSQL URL of the central audit store (postgresql://user:password@host/db) that "
        "`herald audit ship` fills from every node. When set, the audit tools, /v1/audit/* and /audit "
        "read from it instead of HERALD_AUDIT_DIR. Default: none (read the files).",
    )
    audit_http: bool = Field(
        False,
        description="1: serve /v1/audit/* and /audit without keys, to anyone who can reach the service "
        "(development, or a network only auditors reach). With HERALD_KEYS_FILE they are served "
        "anyway, to keys with the role audit.",
    )
    reload_interval: float = Field(
        2.0,
        ge=0,
        description="Seconds between the master's checks of the rules directory for changes; a "
        "change is parsed once and the workers restart on it (0: never; SIGHUP and "
        "POST /v1/ruleset/reload still work).",
    )
    admin_http: bool = Field(
        False,
        description="1: serve POST /v1/ruleset/reload to anyone who can reach the service "
        "without keys (development). With HERALD_KEYS_FILE it is served anyway, to keys with the role admin.",
    )
    keys_file: Path | None = Field(
        None,
        description="API keys file (`herald keys add` writes it). When set, audit endpoints need a key "
        "with the role audit and admin endpoints one with admin. Default: no keys.",
    )
    decisions_need_key: bool = Field(
        False,
        description="1: decision endpoints need a key with the role decide (default: open, for browsers).",
    )
    audit_min_free_mb: int = Field(
        1024,
        ge=0,
        description="Free space (MiB) on the audit log's disk under which /readyz says degraded, "
        "with how long the space lasts at the current rate: an alert before the disk is full (0: never).",
    )
    audit_failure: Literal["open", "closed"] = Field(
        "open",
        description="When an audit record cannot be written: open (answer anyway, count the lost record, "
        "mark /readyz degraded, log an event once writable again) or closed (answer 503).",
    )
    access_log: bool = Field(True, description="0: no JSON access log line per request on stderr.")
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode, BeforeValidator(_networks)] = Field(
        (),
        description="CIDRs of proxies whose X-Forwarded-For and country header are believed "
        "(comma-separated). Default: none.",
    )
    allowed_origins: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)] = Field(
        (),
        description="Origins whose pages may call the decision endpoints from the browser (CORS), "
        "comma-separated, e.g. https://www.rferl.org; * for any. Default: none (no CORS headers).",
    )
    cdn: Literal["none", "cloudfront", "cloudflare", "fastly", "akamai"] = Field(
        "none",
        description="The CDN in front of Herald: sets the country and region headers it sends (read only "
        'from HERALD_TRUSTED_PROXIES). See the README\'s "Running behind a CDN".',
    )
    country_header: str | None = Field(
        None,
        description="Request header with the reader's country (ISO 3166-1 alpha-2) set by a trusted proxy; "
        "overrides HERALD_CDN's.",
    )
    region_header: str | None = Field(
        None,
        description="Request header with the reader's subdivision (the ISO 3166-2 part after the dash, "
        "e.g. 43) set by a trusted proxy; overrides HERALD_CDN's.",
    )
    proxy_header: Literal["x-forwarded-for", "forwarded"] = Field(
        "x-forwarded-for",
        description="The one header a trusted proxy writes the client address into: X-Forwarded-For or "
        "Forwarded (RFC 7239). The other is never read.",
    )
    max_batch: int = Field(100, ge=1, le=10_000, description="Most articles in one batch request.")
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted, in bytes (larger: 413)."
    )
    locate_private: bool = Field(
        False,
        description="Look up non-global addresses (private, documentation ranges) in the GeoIP "
        "database instead of treating them as unknown. For tests and labs only.",
    )

    @property
    def audit_key_bytes(self) -> bytes | None:
        return self.audit_key.get_secret_value().encode() if self.audit_key else None

    @property
    def audit_db_url(self) -> str | None:
        return self.audit_db.get_secret_value() if self.audit_db else None

    @property
    def audit_address_key_bytes(self) -> bytes | None:
        return self.audit_address_key.get_secret_value().encode() if self.audit_address_key else None

    @property
    def audit_checkpoint_path(self) -> Path:
        from service.audit.checkpoint import CHECKPOINTS

        return self.audit_checkpoint_dir or self.audit_dir / CHECKPOINTS

    @field_validator("audit_key")
    @classmethod
    def _audit_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_KEY_BYTES:
            raise ValueError(
                f"too short: give at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`); a short "
                "key can be guessed from the log itself"
            )
        return value

    @field_validator("audit_witness")
    @classmethod
    def _witness(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value or None

    @field_validator("audit_fsync")
    @classmethod
    def _fsync(cls, value: str) -> str:
        from service.audit.writer import parse_fsync

        try:
            parse_fsync(value)
        except ValueError:
            raise ValueError(f"{value!r}: give none, always or a number of seconds > 0") from None
        return value

    @model_validator(mode="after")
    def _address_key(self) -> Settings:
        if self.audit_address == "hash" and self.audit_address_key is None:
            raise ValueError("HERALD_AUDIT_ADDRESS=hash needs HERALD_AUDIT_ADDRESS_KEY")
        return self

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in value:
            if len(value) > 1:
                raise ValueError("* allows every origin: give it alone")
            return value
        return tuple(dict.fromkeys(_origin(entry) for entry in value))

    @field_validator("country_header", "region_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"{value!r} is not an HTTP header name")
        return value or None


class SettingsError(Exception):
    """Settings that do not validate; the message names each bad variable."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with `overrides` (e.g. from command-line options) on top."""
    unknown = sorted(k for k in os.environ if k.startswith("HERALD_") and k[7:].lower() not in _NAMES)
    if unknown:
        raise SettingsError(f"{unknown[0]}: unknown setting; known: {', '.join(env_names())}")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        lines = []
        for e in error.errors():
            name = "HERALD_" + str(e["loc"][0]).upper() if e["loc"] else "HERALD_*"
            lines.append(f"{name}: {str(e['msg']).removeprefix('Value error, ')}")
        raise SettingsError("\n".join(lines)) from None


_NAMES = set(Settings.model_fields)


def env_names() -> list[str]:
    return ["HERALD_" + name.upper() for name in Settings.model_fields]


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default is None or default == () else str(default)
        rows.append(("HERALD_" + name.upper(), shown, field.description or ""))
    return rows
