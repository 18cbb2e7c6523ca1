"""Why each rule did or did not apply to one article and reader: the editors' and auditors' view.

Written plainly against the ruleset (no index), so it also cross-checks the engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service import languages
from service.decision import Decision
from service.engine import Engine
from service.inputs import Article, Location, Reader
from service.model import Rule
from service.ruleset import Ruleset


@dataclass(frozen=True, slots=True)
class Check:
    """One condition of a rule: which, whether it held, and what was compared."""

    condition: str
    held: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Verdict:
    rule: str
    notice: str
    applies: bool
    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.held)


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    verdicts: tuple[Verdict, ...]  # rules that apply first, then by id


def explain(engine: Engine, article: Article, reader: Reader, at: datetime) -> Explanation:
    """The decision, and for every rule of the ruleset why it did or did not apply."""
    verdicts = [verdict(rule, engine.ruleset, article, reader, at) for rule in engine.ruleset.rules.values()]
    verdicts.sort(key=lambda v: (not v.applies, v.rule))
    return Explanation(engine.decide(article, reader, at), tuple(verdicts))


def verdict(rule: Rule, ruleset: Ruleset, article: Article, reader: Reader, at: datetime) -> Verdict:
    checks = [_period(rule, at), *_article_checks(rule, article), _reader_check(rule, ruleset, reader)]
    return Verdict(rule.id, rule.notice, all(c.held for c in checks), tuple(checks))


def _period(rule: Rule, at: datetime) -> Check:
    period = rule.effective
    start, until = period.start, period.until
    begins = start.isoformat() if start else "the beginning"
    span = f"from {begins} until {until.isoformat() if until else 'further notice'}"
    if not period.started(at):
        return Check("effective", False, f"{at.isoformat()} is before the rule takes effect ({span})")
    if period.ended(at):
        return Check("effective", False, f"{at.isoformat()} is after the rule ended ({span})")
    return Check("effective", True, f"{at.isoformat()} is within {span}")


def _one_of(condition: str, wanted: tuple[str, ...], value: str | None) -> Check | None:
    if not wanted:
        return None
    held = value is not None and value in wanted
    return Check(condition, held, f"{value!r} {'is' if held else 'is not'} one of {list(wanted)}")


def _article_checks(rule: Rule, article: Article) -> list[Check]:
    a = rule.article
    checks = [
        _one_of("article.publisher", a.publisher, article.publisher),
        _one_of("article.section", a.section, article.section),
        _one_of("article.type", a.type, article.type),
    ]
    if a.language:
        lang = article.language
        held = languages.covered(lang, a.language)
        checks.append(
            Check(
                "article.language", held, f"{lang!r} {'is' if held else 'is not'} one of {list(a.language)}"
            )
        )
    tags = sorted(article.tags)
    if a.tags.any:
        held = not set(a.tags.any).isdisjoint(article.tags)
        checks.append(
            Check(
                "article.tags.any",
                held,
                f"tags {tags} {'share' if held else 'share nothing with'} {list(a.tags.any)}",
            )
        )
    if a.tags.all:
        missing = sorted(set(a.tags.all) - article.tags)
        checks.append(
            Check(
                "article.tags.all",
                not missing,
                f"tags {tags} lack {missing}"
                if missing
                else f"tags {tags} include all of {list(a.tags.all)}",
            )
        )
    if a.tags.none:
        present = sorted(set(a.tags.none) & article.tags)
        checks.append(
            Check(
                "article.tags.none",
                not present,
                f"tags {tags} include {present}"
                if present
                else f"tags {tags} include none of {list(a.tags.none)}",
            )
        )
    return [c for c in checks if c is not None]


def _reader_check(rule: Rule, ruleset: Ruleset, reader: Reader) -> Check:
    r, location = rule.reader, reader.location
    reasons: list[str] = []
    for region_id in r.regions:
        path = region_path(region_id, ruleset, location)
        if path:
            reasons.append("in region " + " > ".join(path))
        elif ruleset.areas[region_id].possibly(location.country, location.subdivision):
            possibly = f"possibly in region {region_id} (subdivision unknown in {location.country})"
            if r.unknown_location == "show":
                reasons.append(f"{possibly}, and the rule shows to unknown locations")
    if r.unknown_location == "show" and not location.known:
        reasons.append("location unknown, and the rule shows to unknown locations")
    if r.anonymized == "show" and location.anonymized:
        reasons.append("reader anonymized, and the rule shows to anonymized readers")
    signal = [t for t in reader.languages if languages.covered(t, r.languages)]
    if signal:
        reasons.append(f"reader prefers {signal[0]!r}, one of the rule's languages {list(r.languages)}")
    if reasons:
        return Check("reader", True, "; ".join(reasons))
    where = _where(location)
    misses = [f"not in region{'s' if len(r.regions) > 1 else ''} {list(r.regions)}"] if r.regions else []
    partly_in = [i for i in r.regions if ruleset.areas[i].possibly(location.country, location.subdivision)]
    if partly_in:
        misses.append(f"possibly in {partly_in} (subdivision unknown), and the rule skips unknown locations")
    if r.unknown_location == "show":
        misses.append("location is known")
    if r.anonymized == "show":
        misses.append("not anonymized")
    if r.languages:
        misses.append(f"prefers none of {list(r.languages)}")
    return Check("reader", False, f"reader {where}: " + ", ".join(misses))


def _where(location: Location) -> str:
    parts = [p for p in (location.country, location.subdivision) if p]
    said = "; ".join(
        f"{s.source} said {'/'.join(c for c in (s.country, s.subdivision) if c) or 'nothing'}"
        + (f" ({s.note})" if s.note else "")
        for s in location.said
    )
    return f"{'/'.join(parts) or 'unknown'} ({location.source}{': ' + said if said else ''})"


def region_path(region_id: str, ruleset: Ruleset, location: Location) -> list[str]:
    """How the reader is in the region, e.g. ['europe', 'russia', 'country RU'], or [] if not.
    Whether the reader is in is the area's answer (`Area.match`); the path follows, from the
    region down, an included region whose area holds the reader by the same code, until the
    region that lists the code itself. The loader bounds the nesting depth."""
    code = ruleset.areas[region_id].match(location.country, location.subdivision)
    return [] if code is None else _path(region_id, code, ruleset, location)


def _path(region_id: str, code: str, ruleset: Ruleset, location: Location) -> list[str]:
    region = ruleset.regions[region_id]
    if code in region.subdivisions:
        return [region_id, f"subdivision {code}"]
    if code in region.countries:
        return [region_id, f"country {code}"]
    for child in region.include:
        if ruleset.areas[child].match(location.country, location.subdivision) == code:
            return [region_id, *_path(child, code, ruleset, location)]
    return [region_id]  # not reached: an area holds only what its regions list
