"""The rule files' vocabulary as pydantic models: regions, notices, rules and editor test cases."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time
from enum import IntEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from service import iso
from service.inputs import Article, Location, Reader
from service.network import parse_ip


class Strict(BaseModel):
    """Unknown keys are errors, so a typo in a rule file never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


RULE_FILE = {"rule_file": True}  # validation context of the loader
ARCHIVE = {"archive": True}  # validation context of a ruleset read back from the audit archive


def _listify(value: Any, info: ValidationInfo) -> Any:
    """Let editors write `publisher: rferl` for `publisher: [rferl]` in rule files. The HTTP
    contract stays as its JSON schema says: a list is a list."""
    return [value] if isinstance(value, str) and info.context == RULE_FILE else value


# Interned: 10,000 rules name the same few hundred ids, codes and tags tens of thousands of times;
# one object per distinct text keeps megabytes out of every worker (and makes comparisons cheap).
def _lower(value: Any) -> Any:
    return _interned(value.strip().lower()) if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return _interned(value.strip().upper()) if isinstance(value, str) else value


def _interned(text: str) -> str:
    return sys.intern(text) if len(text) <= 200 else text


def _country(code: str) -> str:
    if problem := iso.country_problem(code):
        raise PydanticCustomError("unknown_country", problem)
    return code


def _subdivision(code: str) -> str:
    if problem := iso.subdivision_problem(code):
        raise PydanticCustomError("unknown_subdivision", problem)
    return code


def _ip(text: str) -> str:
    return str(parse_ip(text))


def to_utc(value: Any) -> Any:
    """A date means midnight UTC; a date-time must say its zone (`Z` or an offset) and is converted
    to UTC. Numbers are refused: an instant is written as an RFC 3339 text, never as seconds."""
    if isinstance(value, int | float):
        raise ValueError("expected an RFC 3339 date-time such as 2025-01-01T00:00:00Z, not a number")
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return datetime.combine(date.fromisoformat(value.strip()), time(), tzinfo=UTC)
        except ValueError:
            return value
    return value


def _aware(value: datetime) -> datetime:
    """`value` in UTC. A date-time without a zone is refused, with the fixed form in the message:
    `2024-03-01T12:00:00` read as UTC would move a rule by hours for an editor who meant Moscow
    time, silently. An offset that carries it past year 9999 or before year 1
    is a ValueError (a 422 or a file:line error), not the OverflowError Python raises."""
    if value.tzinfo is None:
        shown = value.isoformat(timespec="seconds" if not value.microsecond else "microseconds")
        raise PydanticCustomError(
            "no_time_zone",
            f"date-time {shown} has no time zone; write {shown}Z for UTC, or give an offset "
            f"such as {shown}+03:00 (a date alone, {value.date().isoformat()}, means midnight UTC)",
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{value.isoformat()} is outside the calendar once converted to UTC (years 1 to 9999)"
        ) from None


def _shown(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# The JSON schemas say what callers may send: letters in either case (they are normalized).
Identifier = Annotated[
    str,
    BeforeValidator(_lower),
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "maxLength": 100}),
]
Word = Annotated[str, BeforeValidator(_lower), StringConstraints(min_length=1, max_length=200)]
# Tags are editorial keywords (a page of RFE/RL carries fewer than 20, each a few words): these
# caps keep what one article brings to a decision, and to the engine's memo, under about 10 KB.
MAX_TAGS = 50
MAX_TAG_LENGTH = 100
Tag = Annotated[str, BeforeValidator(_lower), StringConstraints(min_length=1, max_length=MAX_TAG_LENGTH)]
LanguageTag = Annotated[
    str,
    BeforeValidator(_lower),
    StringConstraints(pattern=r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$", max_length=35),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", "maxLength": 35}),
]
CountryCode = Annotated[
    str,
    BeforeValidator(_upper),
    StringConstraints(max_length=10),
    AfterValidator(_country),
    WithJsonSchema(
        {"type": "string", "enum": sorted(iso.countries()), "description": "ISO 3166-1 alpha-2 (or XK)"}
    ),
]
SubdivisionCode = Annotated[
    str,
    BeforeValidator(_upper),
    StringConstraints(max_length=10),
    AfterValidator(_subdivision),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$", "description": "ISO 3166-2"}
    ),
]
Instant = Annotated[datetime, BeforeValidator(to_utc), AfterValidator(_aware)]


T = TypeVar("T")
# A list field that also takes one bare value.
ListOf = Annotated[tuple[T, ...], BeforeValidator(_listify)]
Identifiers = ListOf[Identifier]
Words = ListOf[Word]
LanguageTags = ListOf[LanguageTag]


# ---- regions -------------------------------------------------------------------------------


class Exclusion(Strict):
    countries: ListOf[CountryCode] = ()
    subdivisions: ListOf[SubdivisionCode] = ()


class Region(Strict):
    """A named set of countries and subdivisions, possibly built from other regions."""

    id: Identifier
    name: str | None = None
    countries: ListOf[CountryCode] = ()
    subdivisions: ListOf[SubdivisionCode] = ()
    include: Identifiers = ()
    exclude: Exclusion = Exclusion()


# ---- notices -------------------------------------------------------------------------------


class NoticeSeverity(IntEnum):
    """A notice's severity, ordered so that the most serious sorts first (how bad a problem in a
    rule file is, is `problems.ProblemLevel`)."""

    legal = 0
    warning = 1
    info = 2


Placement = Literal["top", "bottom", "inline", "banner"]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]


class NoticeText(Strict):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    link: HttpUrl | None = None


class Notice(Strict):
    """What a reader is shown: texts per language, a severity and a placement hint."""

    id: Identifier
    severity: Literal["legal", "warning", "info"]
    priority: int = 0
    placement: Placement = "top"
    default_language: LanguageTag
    texts: dict[LanguageTag, NoticeText] = Field(min_length=1)
    # When this notice and one of these apply to the same reader, only this one is shown.
    supersedes: Identifiers = ()

    @model_validator(mode="after")
    def _default_language_has_text(self) -> Notice:
        if self.default_language not in self.texts:
            raise ValueError(
                f"default_language {self.default_language!r} has no text; "
                f"texts are given for {', '.join(sorted(self.texts))}"
            )
        return self

    @property
    def rank(self) -> tuple[int, int, str]:
        """Order of display: severity, then higher priority first, then id."""
        return (NoticeSeverity[self.severity], -self.priority, self.id)


# ---- rules ---------------------------------------------------------------------------------

# What a page may be asked to do besides showing the notice. A closed list, so typos are caught.
Effect = Literal[
    "discourage_sharing",  # show a warning next to share, like and comment controls
    "hide_share_buttons",
    "hide_comments",
    "withhold_article",  # do not show the article body at all
]
Show = Literal["show", "skip"]


class TagCondition(Strict):
    """Tags as articles carry them: a rule's tag longer than MAX_TAG_LENGTH could never match."""

    any: ListOf[Tag] = ()
    all: ListOf[Tag] = ()
    none: ListOf[Tag] = ()


class ArticleCondition(Strict):
    """Every condition given must hold; an empty list means "any"."""

    publisher: Identifiers = ()
    section: Words = ()
    tags: TagCondition = TagCondition()
    language: LanguageTags = ()
    type: Words = ()


class ReaderCondition(Strict):
    """The reader matches by region, by an unknown or anonymized location, or by language."""

    regions: Identifiers = ()
    unknown_location: Show = "skip"
    anonymized: Show = "skip"
    languages: LanguageTags = ()


class Period(Strict):
    """`from` inclusive, `until` exclusive, both UTC; a date means midnight UTC."""

    start: Instant | None = Field(default=None, alias="from")
    until: Instant | None = None

    @model_validator(mode="after")
    def _until_after_from(self, info: ValidationInfo) -> Period:
        # An error, not a warning: such a rule can never match, and the editor meant something else.
        # Archived rulesets are read as they were served: one loaded when this was only a warning
        # must still replay.
        if info.context == ARCHIVE:
            return self
        if self.empty and self.start is not None and self.until is not None:  # (the types' sake)
            raise PydanticCustomError(
                "until_not_after_from",
                f"until ({_shown(self.until)}) is not after from ({_shown(self.start)}): "
                "the rule could never apply; `until` is exclusive",
            )
        return self

    # The one place the period's bounds are read: the engine (by window), explain and lint. In
    # effect at `at`: started and not ended.
    def started(self, at: datetime) -> bool:
        return self.start is None or self.start <= at

    def ended(self, at: datetime) -> bool:
        return self.until is not None and self.until <= at

    @property
    def empty(self) -> bool:
        """No instant is in the period: `until` is not after `from`."""
        return self.start is not None and self.until is not None and self.until <= self.start

    def overlaps(self, other: Period) -> bool:
        """Some instant is in both periods."""
        return (self.until is None or other.start is None or other.start < self.until) and (
            other.until is None or self.start is None or self.start < other.until
        )


class Rule(Strict):
    """When a notice applies: article conditions x reader conditions x an effective period."""

    id: Identifier
    notice: Identifier
    description: str | None = None
    article: ArticleCondition = ArticleCondition()
    reader: ReaderCondition
    effective: Period = Period()
    effects: ListOf[Effect] = ()

    @model_validator(mode="after")
    def _names_readers(self) -> Rule:
        r = self.reader
        if not (r.regions or r.languages or "show" in (r.unknown_location, r.anonymized)):
            raise ValueError(
                "rule names no readers: give reader.regions, reader.languages, "
                "or set unknown_location or anonymized to show"
            )
        return self


# ---- articles and editor test cases --------------------------------------------------------


class ArticleFields(Strict):
    """An article as callers and test cases describe it: the fields rules can condition on.
    Only `publisher` is required."""

    publisher: Identifier
    id: Annotated[str, StringConstraints(max_length=500)] | None = None
    url: Annotated[str, StringConstraints(max_length=2000)] | None = None
    section: Word | None = None
    tags: Annotated[tuple[Tag, ...], Field(max_length=MAX_TAGS), BeforeValidator(_listify)] = ()
    language: LanguageTag | None = None
    type: Word | None = None
    # No `published_at`: no rule could condition on it, and the audit record does not keep it, so
    # a replay could not reproduce a decision that used it. Accepting it and dropping it would
    # let a publisher believe it counts; an unknown field is refused (422), as every other is.

    def to_article(self) -> Article:
        return Article(
            publisher=self.publisher,
            id=self.id,
            url=self.url,
            section=self.section,
            tags=frozenset(self.tags),
            language=self.language,
            type=self.type,
        )


class CaseReader(Strict):
    """A test case's reader: explicit codes, or an `ip` looked up in the configured GeoIP data."""

    ip: Annotated[str, StringConstraints(max_length=100), AfterValidator(_ip)] | None = None
    country: CountryCode | None = None
    subdivision: SubdivisionCode | None = None
    anonymized: bool = False
    languages: LanguageTags = ()

    @model_validator(mode="after")
    def _ip_or_codes(self) -> CaseReader:
        if self.ip is not None and (self.country or self.subdivision):
            raise ValueError("give either ip or country/subdivision, not both")
        return self

    def to_reader(self, located: Location | None = None) -> Reader:
        """The reader; `located` is where `ip` was found (the caller looks it up)."""
        if located is not None:
            location = Location(
                located.country, located.subdivision, located.source, located.anonymized or self.anonymized
            )
        else:
            location = Location.explicit(self.country, self.subdivision, self.anonymized)
        return Reader(location, self.languages)


class Expectation(Strict):
    """`notices` is the exact list (in display order); `includes`/`excludes` are partial checks."""

    notices: Identifiers | None = None
    includes: Identifiers = ()
    excludes: Identifiers = ()
    effects: ListOf[Effect] | None = None
    languages: dict[Identifier, LanguageTag] = {}


class Case(Strict):
    """An editor's test case: this article, this reader, this instant gives these notices."""

    name: Annotated[str, StringConstraints(min_length=1)]
    article: ArticleFields
    reader: CaseReader = CaseReader()
    at: Instant | None = None
    expect: Expectation


class RuleFile(Strict):
    """One YAML file. Any file may hold any section; the layout of rules/ is a convention."""

    regions: list[Region] = []
    notices: list[Notice] = []
    rules: list[Rule] = []
    cases: list[Case] = []
