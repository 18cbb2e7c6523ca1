"""The engine's inputs: the article being viewed and the reader viewing it, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LocationSource = Literal["explicit", "header", "geoip", "unknown"]

# Kinds of anonymizer a source can report; the audit record keeps them apart.
ANONYMIZER_KINDS = (
    "vpn",
    "public_proxy",
    "residential_proxy",
    "tor",
    "hosting_provider",
    "anonymous_proxy",  # the deprecated City-record trait, still present in old data
)


@dataclass(frozen=True, slots=True)
class Said:
    """What one source said of the reader, as read (codes already ISO), before merging.

    `source` is explicit, header, geoip or anonymous-ip; `data` names the data that said it (a
    database type and build date, or a header name); `note` says what was ignored or read
    differently (an invalid region, a vendor code, a disagreement)."""

    source: str
    country: str | None = None
    subdivision: str | None = None
    anonymizers: tuple[str, ...] = ()
    data: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, object]:
        fields: dict[str, object] = {"source": self.source, "country": self.country}
        fields["subdivision"] = self.subdivision
        if self.anonymizers:
            fields["anonymizers"] = list(self.anonymizers)
        if self.data is not None:
            fields["data"] = self.data
        if self.note is not None:
            fields["note"] = self.note
        return fields


@dataclass(frozen=True, slots=True)
class Location:
    """Where a reader is, and how we know. Codes are upper-case; `subdivision` is full ISO 3166-2.

    `source` names the source of the country; `anonymizers` the kinds of anonymizer seen (an
    anonymized reader may have none named, e.g. one an editor's case marks anonymized). `said`
    keeps what each source said before they were merged, for the audit record and `explain`:
    it is evidence, not part of the location's value, so it takes no part in equality."""

    country: str | None = None
    subdivision: str | None = None
    source: LocationSource = "unknown"
    anonymized: bool = False
    anonymizers: tuple[str, ...] = ()
    said: tuple[Said, ...] = field(default=(), compare=False, repr=False)

    @property
    def partial(self) -> bool:
        """The country is known and the subdivision is not."""
        return self.country is not None and self.subdivision is None

    @property
    def known(self) -> bool:
        return self.country is not None or self.subdivision is not None

    @classmethod
    def explicit(cls, country: str | None, subdivision: str | None, anonymized: bool = False) -> Location:
        """Codes given by the caller; a subdivision alone implies its own country (UA-43: UA).
        With neither, the location is unknown."""
        if country is None and subdivision is None:
            return cls(anonymized=anonymized)
        return cls(country or (subdivision or "").split("-", 1)[0], subdivision, "explicit", anonymized)


UNKNOWN = Location()


@dataclass(frozen=True, slots=True)
class Reader:
    """A located reader with preferred languages, best first (lower-case BCP 47 tags)."""

    location: Location = UNKNOWN
    languages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Article:
    """Metadata of one page. Only `publisher` is required; tags are lower-case."""

    publisher: str
    id: str | None = None
    url: str | None = None
    section: str | None = None
    tags: frozenset[str] = field(default_factory=frozenset)
    language: str | None = None
    type: str | None = None
