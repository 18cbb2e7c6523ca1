"""The engine's inputs: the article being viewed and the reader viewing it, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LocationSource = Literal["explicit", "header", "geoip", "unknown"]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a reader is, and how we know. Codes are upper-case; `subdivision` is full ISO 3166-2."""

    country: str | None = None
    subdivision: str | None = None
    source: LocationSource = "unknown"
    anonymized: bool = False

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
