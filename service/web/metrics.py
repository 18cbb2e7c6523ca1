"""Prometheus metrics: requests, decisions, GeoIP outcomes, reloads, audit records and disk, refused keys.

Under `herald serve` every worker writes its values to PROMETHEUS_MULTIPROC_DIR and /metrics sums
them over all workers (prometheus-client's multiprocess mode). prometheus_client is imported
lazily, so that `herald serve` can set that directory before the library first reads it."""

from __future__ import annotations

import functools
import glob
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from service.audit.usage import Usage
from service.decision import Decision

log = logging.getLogger("herald.metrics")
F = TypeVar("F", bound=Callable[..., None])


def never_fails(method: F) -> F:
    """Counting must never fail a request (a full disk also stops the multiprocess files growing)."""

    @functools.wraps(method)
    def safe(*args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - any failure here is only a lost count
            log.warning("metric not recorded: %s", error)

    return cast(F, safe)


_METHODS = frozenset({"GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE", "PATCH"})
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """The service's metrics, in a registry of their own (so tests can build many apps)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Histogram(
            "herald_request_duration_seconds",
            "Requests by endpoint and status, with their latency.",
            ["endpoint", "method", "status"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.decisions = Counter(
            "herald_decisions_total",
            "Decisions answered, by reader country and location source.",
            ["country", "source"],
            registry=r,
        )
        self.notices = Counter(
            "herald_notices_shown_total",
            "Notices shown, by notice and reader country.",
            ["notice", "country"],
            registry=r,
        )
        self.geoip = Counter(
            "herald_geoip_lookups_total",
            "GeoIP lookups by outcome: found, found_anonymizer, not_found, anonymizer_no_country, "
            "not_global, no_database.",
            ["outcome"],
            registry=r,
        )
        self.reloads = Counter(
            "herald_ruleset_reloads_total", "Rules changes loaded or rejected.", ["outcome"], registry=r
        )
        self.ruleset = Gauge(
            "herald_ruleset_info",
            "The ruleset each worker serves (value 1).",
            ["hash"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.audit = Counter(
            "herald_audit_records_total", "Audit records written or lost.", ["outcome"], registry=r
        )
        self.witness = Counter(
            "herald_audit_witness_total",
            "Checkpoints for the witness (HERALD_AUDIT_WITNESS): sent, failed or dropped (queue full).",
            ["outcome"],
            registry=r,
        )
        self.what_ifs = Counter(
            "herald_what_if_decisions_total",
            "What-if decisions (asked with `at`): logged, but not page views, so not in the counts above.",
            registry=r,
        )
        self.refused = Counter(
            "herald_auth_refused_total",
            "Requests refused for a missing, unknown or weak key.",
            ["reason"],
            registry=r,
        )
        self.cdn = Counter(
            "herald_cdn_headers_total",
            "CDN location headers from trusted proxies by outcome: read, tor, unknown (XX), ignored "
            "(an invalid country or region, left out).",
            ["outcome"],
            registry=r,
        )
        self.geo_built = Gauge(
            "herald_geoip_build_timestamp_seconds",
            "Build time of the GeoIP data each worker serves, by kind (city, anonymous-ip).",
            ["kind"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.geo_age = Gauge(
            "herald_geoip_age_days",
            "Age of the GeoIP data served, in days since its build, by kind; the oldest of any worker.",
            ["kind"],
            registry=r,
            multiprocess_mode="max",
        )
        self.geo_refused = Gauge(
            "herald_geoip_files_refused",
            "Replaced GeoIP files refused since start (not a database of the kind, or damaged), by kind.",
            ["kind"],
            registry=r,
            multiprocess_mode="max",
        )
        # Measured when scraped, for the whole audit directory (any worker sees every writer's files):
        # the most recent worker's measure is the node's.
        self.disk_free = Gauge(
            "herald_audit_disk_free_bytes",
            "Free space on the audit log's disk.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.disk_min_free = Gauge(
            "herald_audit_disk_min_free_bytes",
            "HERALD_AUDIT_MIN_FREE_MB in bytes: alert when herald_audit_disk_free_bytes falls under it.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.write_rate = Gauge(
            "herald_audit_bytes_per_minute",
            "Bytes written to the audit log's files over about the last minute, by every writer.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self._hash: str | None = None
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # Counters alerts watch start at 0 in every worker: an absent series cannot be alerted on,
        # and the worker's metrics file is then made at start, not first when the disk is full.
        for outcome in ("written", "lost"):
            self.child(self.audit, outcome)

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: `labels()` checks and locks on every call."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    @never_fails
    def decision(self, decision: Decision, *, what_if: bool = False) -> None:
        self.decided((decision,), what_if=what_if)

    @never_fails
    def decided(self, decisions: Sequence[Decision], *, what_if: bool = False) -> None:
        """The decisions of one request, counted together: one increment per series, not per decision."""
        if what_if:
            self.what_ifs.inc(len(decisions))
            return
        counts: dict[tuple[Any, tuple[str, ...]], int] = {}
        for decision in decisions:
            country = decision.reader.country or "unknown"
            series: list[tuple[Any, tuple[str, ...]]] = [(self.decisions, (country, decision.reader.source))]
            series += [(self.notices, (notice.id, country)) for notice in decision.notices]
            for key in series:
                counts[key] = counts.get(key, 0) + 1
        for (metric, labels), n in counts.items():
            self.child(metric, *labels).inc(n)

    @never_fails
    def located(self, source: str) -> None:
        self.child(self.geoip, source).inc()

    @never_fails
    def cdn_header(self, outcome: str) -> None:
        self.child(self.cdn, outcome).inc()

    @never_fails
    def geo_data(self, kind: str, built: float, age_days: float | None = None) -> None:
        self.geo_built.labels(kind).set(built)
        if age_days is not None:
            self.geo_age.labels(kind).set(age_days)

    @never_fails
    def geo_refusals(self, kind: str, count: int) -> None:
        self.geo_refused.labels(kind).set(count)

    @never_fails
    def serving(self, ruleset_hash: str) -> None:
        if self._hash is not None:
            # In multiprocess mode `remove` leaves the value in this worker's file: zero it first.
            self.ruleset.labels(self._hash).set(0)
            self.ruleset.remove(self._hash)
        self.ruleset.labels(ruleset_hash).set(1)
        self._hash = ruleset_hash

    @never_fails
    def reload(self, outcome: str) -> None:
        self.reloads.labels(outcome).inc()

    @never_fails
    def audit_record(self, outcome: str, n: int = 1) -> None:
        self.child(self.audit, outcome).inc(n)

    @never_fails
    def audit_witness(self, outcome: str, n: int) -> None:
        self.child(self.witness, outcome).inc(n)

    @never_fails
    def request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        # The method is the client's to choose: bound the label, or /metrics grows without limit.
        method = method if method in _METHODS else "other"
        self.child(self.requests, endpoint, method, str(status)).observe(seconds)

    @never_fails
    def auth_refused(self, reason: str) -> None:
        self.refused.labels(reason).inc()

    @never_fails
    def audit_disk(self, usage: Usage, min_free_bytes: int) -> None:
        self.disk_min_free.set(min_free_bytes)
        if usage.free_bytes is not None:
            self.disk_free.set(usage.free_bytes)
        if usage.bytes_per_minute is not None:
            self.write_rate.set(usage.bytes_per_minute)

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if multiprocess():
            registry = CollectorRegistry()
            registry.register(_ReadableFiles(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


class _ReadableFiles:
    """prometheus-client's multiprocess collection, skipping empty files: a worker that first counts
    while the disk is full leaves one (it cannot size it), and /metrics must not fail for it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Any:
        from prometheus_client import multiprocess as mp

        files = [f for f in glob.glob(os.path.join(self.path, "*.db")) if os.path.getsize(f) > 0]
        return mp.MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
