"""The HTTP contract as pydantic models: request bodies are validated with them, and
/openapi.json is generated from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.model import ArticleFields, CountryCode, Instant, LanguageTags, SubdivisionCode
from service.network import parse_ip_cached


def _ip(text: str) -> str:
    return str(parse_ip_cached(text))


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReaderIn(Contract):
    """Where the reader is. All optional: with nothing, the caller's address and Accept-Language."""

    ip: Annotated[str, Field(max_length=100), AfterValidator(_ip)] | None = None
    country: CountryCode | None = None
    subdivision: SubdivisionCode | None = None
    languages: Annotated[LanguageTags, Field(max_length=10)] | None = None

    @property
    def located(self) -> bool:
        return self.ip is not None or self.country is not None or self.subdivision is not None


_AT = (
    "RFC 3339 instant to decide at; default now (a page view). With `at` the decision is a what-if: "
    "made on the rules in force at that instant (from the ruleset archive; 409 when none is archived "
    "for it), marked what_if, logged apart from page views. A date-time must say its zone "
    "(2024-03-01T12:00:00Z or an offset; without one: 422); a date alone is midnight UTC."
)


class DecisionRequest(Contract):
    article: ArticleFields
    reader: ReaderIn | None = None
    at: Instant | None = Field(None, description=_AT)


class BatchRequest(Contract):
    reader: ReaderIn | None = None
    articles: list[ArticleFields] = Field(min_length=1)
    at: Instant | None = Field(None, description=_AT)


class SaidOut(Contract):
    """What one source said of the reader, before the sources were merged."""

    source: Literal["header", "geoip", "anonymous-ip"]
    country: str | None
    subdivision: str | None
    anonymizers: list[str] = []
    data: str | None = Field(
        None, description="The data that said it: a database and its build date, or a header."
    )
    note: str | None = Field(None, description="What was read differently or left out, e.g. a disagreement.")


class ReaderOut(Contract):
    country: str | None
    subdivision: str | None
    source: Literal["explicit", "header", "geoip", "unknown"] = Field(
        description="The source of the country: the caller (explicit), a CDN header, GeoIP, or none."
    )
    anonymized: bool
    anonymizers: list[str] = Field(
        [],
        description="Kinds of anonymizer seen: vpn, public_proxy, residential_proxy, tor, hosting_provider.",
    )
    said: list[SaidOut] = Field(
        [], description="What each source said before they were merged (empty for explicit locations)."
    )


class NoticeOut(Contract):
    id: str
    severity: Literal["legal", "warning", "info"]
    placement: str
    language: str
    title: str
    body: str
    link: str | None
    rules: list[str]


class SupersededOut(Contract):
    """A notice that applied but is replaced by a stricter one that is shown (`by`)."""

    id: str
    by: str
    rules: list[str]


class DecisionBody(Contract):
    ruleset: str
    what_if: bool = Field(
        description="True when asked with `at`: a question about another instant, not a page view; "
        "its audit record says so and summaries leave it out of served counts."
    )
    at: str
    reader: ReaderOut
    notices: list[NoticeOut]
    effects: list[str]
    superseded: list[SupersededOut]


class DecisionOut(DecisionBody):
    decision_id: str
    warnings: list[str] = Field(
        description="What in the article no rule names, e.g. \"publisher 'rfrl' appears in no rule; did you "
        "mean 'rferl'?\": a likely typo or a misconfigured site. Warnings never change the decision."
    )


class CheckOut(Contract):
    condition: str
    held: bool
    detail: str


class VerdictOut(Contract):
    rule: str
    notice: str
    applies: bool
    checks: list[CheckOut]


class ExplanationOut(DecisionBody):
    """A decision (not logged, no id) and why each rule did or did not apply."""

    rules: list[VerdictOut]


class BatchOut(Contract):
    reader: ReaderOut
    ruleset: str
    decisions: list[DecisionOut]


class RulesetOut(Contract):
    hash: str
    loaded_at: str
    counts: dict[str, int]
    files: list[dict[str, str]]
    geoip: dict[str, Any] | None = Field(description="The City database: path, type, build date, age.")
    anonymous_ip: dict[str, Any] | None = Field(None, description="The Anonymous IP database, if any.")
    geoip_refused: dict[str, Any] | None = Field(
        None, description="Replacement GeoIP files refused (by kind), while the old data serves."
    )
    rejected: dict[str, Any] | None = Field(None, description="The last rules change that failed to load.")


class ProblemError(Contract):
    location: str = Field(description="JSON Pointer to the offending value, e.g. /reader/ip")
    message: str
    type: str


class Problem(Contract):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


class Health(Contract):
    status: str
    reasons: list[str] = []
    warnings: list[str] = Field(
        [], description="What leaves the service ready but needs an operator: stale or refused GeoIP data."
    )
    ruleset: str | None = None
    geoip: dict[str, Any] | None = None
    anonymous_ip: dict[str, Any] | None = None
    geoip_refused: dict[str, Any] | None = None
    rejected: dict[str, Any] | None = None
    worker: int | None = None
    audit: dict[str, Any] | None = Field(
        None,
        description="The audit log's disk: free_bytes, bytes_per_minute, minutes_left, min_free_bytes, low.",
    )


class ReloadOut(Contract):
    """What POST /v1/ruleset/reload did."""

    status: str = Field(description="`loaded` (a new ruleset) or `unchanged`.")
    ruleset: str = Field(description="The hash of the ruleset now served.")


class AuditDecisionOut(Contract):
    """One logged decision and why: GET /v1/audit/decisions/{decision_id}."""

    record: dict[str, Any] = Field(description="The audit record as logged (see the README's record).")
    explanation: dict[str, Any] = Field(
        description="Its matches, the replay verdict, and every rule's conditions on the rules then in force."
    )


class AuditSummaryOut(Contract):
    """GET /v1/audit/summary: counted as `herald audit summary` counts, both ends included."""

    from_: str | None = Field(alias="from")
    to: str | None
    by: Literal["logged", "decided"]
    what_if: Literal["exclude", "include", "only"]
    rows: list[dict[str, Any]] = Field(description="Decisions and notices shown by day and country.")
