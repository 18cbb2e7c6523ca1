"""What changed between two rulesets: items added, removed, changed, and which readers gain or lose what."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any, Literal

from service.decision import Decision
from service.engine import Engine
from service.inputs import Article, Location, Reader
from service.model import NoticeSeverity, Rule
from service.ruleset import Ruleset

Kind = Literal["rule", "notice", "region"]
Status = Literal["added", "removed", "changed"]

ANY_PUBLISHER = "*"  # stands for every publisher that no rule names
SECTIONS: tuple[tuple[str, Kind], ...] = (("rules", "rule"), ("notices", "notice"), ("regions", "region"))


@dataclass(frozen=True, slots=True)
class ItemChange:
    """A rule, notice or region added, removed or changed; `keys` are its top-level keys that differ."""

    kind: Kind
    id: str
    status: Status
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind} {self.id!r} {self.status}" + (f": {', '.join(self.keys)}" if self.keys else "")


@dataclass(frozen=True, slots=True)
class Change:
    """One thing a reader gains or loses: a notice (with its severity) or an effect."""

    gained: bool
    kind: Literal["notice", "effect"]
    id: str
    severity: str | None = None

    @property
    def order(self) -> tuple[bool, bool, int, str]:
        """Notices before effects, gains before losses, the most serious first."""
        rank = NoticeSeverity[self.severity] if self.severity else 0
        return (self.kind == "effect", not self.gained, rank, self.id)

    def __str__(self) -> str:
        sign = "+" if self.gained else "-"
        return f"{sign} {self.id} ({self.severity})" if self.kind == "notice" else f"{sign} effect {self.id}"


@dataclass(frozen=True, slots=True)
class Viewer:
    """One article of a publisher (plain, or a rule's witness) read by one kind of reader."""

    article: Article
    reader: Reader
    # A country-only reader of a country some region lists subdivisions of: derived from the
    # reader, so it takes no part in equality.
    partial: bool = field(default=False, compare=False)

    @property
    def qualifier(self) -> str:
        """The article's conditions beyond its publisher: 'section=news, tags=russia'."""
        a = self.article
        parts = [("section", a.section), ("tags", "+".join(sorted(a.tags))), ("language", a.language)]
        return ", ".join(f"{key}={value}" for key, value in (*parts, ("type", a.type)) if value)

    @property
    def label(self) -> str:
        """'rferl' or 'rferl [section=news]'."""
        return self.article.publisher + (f" [{self.qualifier}]" if self.qualifier else "")

    @property
    def reader_label(self) -> str:
        location = self.reader.location
        if location.known:
            code = location.subdivision or location.country or ""
            return f"{code} (subdivision unknown)" if self.partial else code
        label = "anonymized" if location.anonymized else "unknown location"
        return label + (f" (prefers {', '.join(self.reader.languages)})" if self.reader.languages else "")

    @property
    def article_order(self) -> tuple[bool, str, bool, str]:
        publisher = self.article.publisher
        return (publisher == ANY_PUBLISHER, publisher, bool(self.qualifier), self.qualifier)

    @property
    def reader_order(self) -> tuple[int, str]:
        """Countries and subdivisions by code, then unknown, anonymized, and language readers."""
        location = self.reader.location
        if location.known:
            return (0, location.subdivision or location.country or "")
        if self.reader.languages:
            return (3, ",".join(self.reader.languages))
        return (2 if location.anonymized else 1, "")


@dataclass(frozen=True, slots=True)
class Impact:
    """What one viewer gains and loses from `start` until `until` (exclusive; None: no end in sight).

    A witness article's or a language reader's changes are those beyond its plain article's and the
    unknown-location reader's, so one change is not repeated on every row."""

    viewer: Viewer
    start: datetime
    until: datetime | None
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class RulesetDiff:
    """Two rulesets compared at `now` and at every later effective date (`instants`, `now` first)."""

    old: str
    new: str
    now: datetime
    instants: tuple[datetime, ...]
    items: tuple[ItemChange, ...]
    impacts: tuple[Impact, ...]

    @property
    def different(self) -> bool:
        return bool(self.items or self.impacts)


def diff(old: Ruleset, new: Ruleset, now: datetime) -> RulesetDiff:
    """Compare `old` with `new`; impact now (a timezone-aware instant) and at each later `from`/`until`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    rules = [*old.rules.values(), *new.rules.values()]
    later = {t for r in rules for t in (r.effective.start, r.effective.until) if t is not None and t > now}
    instants = (now, *sorted(later))
    before, after = Engine(old), Engine(new)
    viewers = _viewers(old, new, rules)
    full = {
        v: [
            _changes(before.decide(v.article, v.reader, t), after.decide(v.article, v.reader, t))
            for t in instants
        ]
        for v in viewers
    }
    impacts: list[Impact] = []
    for viewer in viewers:
        parents = _parents(viewer)
        own = [changes.difference(*(full[p][i] for p in parents)) for i, changes in enumerate(full[viewer])]
        impacts += _spans(viewer, own, instants)
    impacts.sort(key=_impact_order)
    return RulesetDiff(old.hash, new.hash, now, instants, tuple(_items(old, new)), tuple(impacts))


def _impact_order(i: Impact) -> tuple[Any, ...]:
    span = (i.start, i.until is None, i.until or i.start)
    return (i.viewer.article_order, i.viewer.reader_order, span, [c.order for c in i.changes])


# ---- items ---------------------------------------------------------------------------------


def _items(old: Ruleset, new: Ruleset) -> Iterator[ItemChange]:
    """Added, removed and changed items by id, comparing canonical dumps (defaults left out)."""
    before, after = old.canonical(), new.canonical()
    for section, kind in SECTIONS:
        was = {item["id"]: item for item in before[section]}
        now = {item["id"]: item for item in after[section]}
        for item_id in sorted(was.keys() | now.keys()):
            if item_id not in now:
                yield ItemChange(kind, item_id, "removed")
            elif item_id not in was:
                yield ItemChange(kind, item_id, "added")
            elif was[item_id] != now[item_id]:
                a, b = was[item_id], now[item_id]
                keys = tuple(sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)))
                yield ItemChange(kind, item_id, "changed", keys)


# ---- impact --------------------------------------------------------------------------------


def _viewers(old: Ruleset, new: Ruleset, rules: list[Rule]) -> list[Viewer]:
    """Every publisher's plain article and rule witnesses, each with every kind of reader."""
    named = sorted({p for r in rules for p in r.article.publisher})
    publishers = named + ([ANY_PUBLISHER] if any(not r.article.publisher for r in rules) else [])
    readers = _readers(old, new, rules)
    areas = [*old.areas.values(), *new.areas.values()]
    partly = {country for area in areas for country in area.partly()}
    viewers = []
    for publisher in publishers:
        articles = {Article(publisher)}
        for rule in rules:
            if not rule.article.publisher or publisher in rule.article.publisher:
                articles |= {w for w in [_witness(rule, publisher)] if w is not None}
        viewers += [
            Viewer(article, reader, reader.location.partial and reader.location.country in partly)
            for article in articles
            for reader in readers
        ]
    return viewers


def _readers(old: Ruleset, new: Ruleset, rules: list[Rule]) -> list[Reader]:
    """Every country of every area (and every country an area lists only some subdivisions of, as a
    reader whose subdivision is unknown), every subdivision areas list or exclude, unknown and
    anonymized readers, and an unknown-location reader for each language a rule's language signal
    names."""
    areas = [*old.areas.values(), *new.areas.values()]
    countries = {c for a in areas for c in (*a.countries, *a.partly())}
    subdivisions = {s for a in areas for s in a.subdivisions}
    subdivisions |= {s for a in areas for excluded in a.countries.values() for s in excluded}
    languages = sorted({tag for r in rules for tag in r.reader.languages})
    return [
        *(Reader(Location(c, None, "explicit")) for c in sorted(countries)),
        *(Reader(Location(s.split("-", 1)[0], s, "explicit")) for s in sorted(subdivisions)),
        Reader(),
        Reader(Location(anonymized=True)),
        *(Reader(languages=(tag,)) for tag in languages),
    ]


def _witness(rule: Rule, publisher: str) -> Article | None:
    """An article of `publisher` that meets the rule's other article conditions, if it states any.
    Each list's first value in sorted order, so reordering a list in a file changes nothing."""
    a = rule.article
    if not (a.section or a.tags.any or a.tags.all or a.language or a.type):
        return None
    some = sorted(set(a.tags.any) - set(a.tags.none))[:1]
    return Article(
        publisher,
        section=min(a.section, default=None),
        tags=frozenset([*a.tags.all, *some]),
        language=min(a.language, default=None),
        type=min(a.type, default=None),
    )


def _parents(viewer: Viewer) -> list[Viewer]:
    """Rows whose changes a witness article or a language reader does not repeat."""
    parents = []
    if viewer.article != Article(viewer.article.publisher):
        parents.append(Viewer(Article(viewer.article.publisher), viewer.reader))
    if viewer.reader.languages:
        parents.append(Viewer(viewer.article, Reader(viewer.reader.location)))
    return parents


def _changes(old: Decision, new: Decision) -> frozenset[Change]:
    was = {n.id: n.severity for n in old.notices}
    now = {n.id: n.severity for n in new.notices}
    return frozenset(
        [
            *(Change(True, "notice", i, s) for i, s in now.items() if i not in was),
            *(Change(False, "notice", i, s) for i, s in was.items() if i not in now),
            *(Change(True, "effect", e) for e in set(new.effects) - set(old.effects)),
            *(Change(False, "effect", e) for e in set(old.effects) - set(new.effects)),
        ]
    )


def _spans(viewer: Viewer, changes: list[frozenset[Change]], instants: tuple[datetime, ...]) -> list[Impact]:
    """Each change over the consecutive instants it holds, as [start, until); one Impact per span."""
    by_span: dict[tuple[datetime, datetime | None], set[Change]] = defaultdict(set)
    for change in frozenset[Change]().union(*changes):
        start: int | None = None
        for i, present in enumerate([*(change in c for c in changes), False]):
            if present and start is None:
                start = i
            elif not present and start is not None:
                by_span[instants[start], instants[i] if i < len(instants) else None].add(change)
                start = None
    return [
        Impact(viewer, start_at, until, tuple(sorted(found, key=lambda c: c.order)))
        for (start_at, until), found in by_span.items()
    ]


# ---- output --------------------------------------------------------------------------------


def instant(at: datetime) -> str:
    """A date when it is midnight UTC, else the full RFC 3339 instant."""
    at = at.astimezone(UTC)
    return at.date().isoformat() if at.time() == time() else at.isoformat().replace("+00:00", "Z")


def _span(impact: Impact, now: datetime) -> str:
    until = f"until {instant(impact.until)}" if impact.until else ""
    if impact.start == now:
        return f"now, {until}" if until else "from now"
    return " ".join(p for p in (f"from {instant(impact.start)}", until) if p)


def render_text(d: RulesetDiff, old: str = "old", new: str = "new") -> str:
    """The comparison for a reviewer to read or paste: sections Rules, Notices, Regions, Impact."""
    lines = [f"old: {old} ({_short(d.old)})", f"new: {new} ({_short(d.new)})"]
    if not d.different:
        return "\n".join([*lines, "", "no differences"])
    for title, kind in (("Rules", "rule"), ("Notices", "notice"), ("Regions", "region")):
        found = [f"  {item}" for item in d.items if item.kind == kind]
        lines += ["", title, *(found or ["  no changes"])]
    later = ", ".join(instant(t) for t in d.instants[1:]) or "none"
    lines += ["", f"Impact (now is {instant(d.now)}; later effective dates: {later})"]
    lines += _impact_lines(d) or ["  no reader gains or loses a notice or an effect"]
    return "\n".join(lines)


def _impact_lines(d: RulesetDiff) -> list[str]:
    """One line per article, span and set of changes, naming every reader it applies to."""
    groups: dict[tuple[Any, ...], list[Viewer]] = defaultdict(list)
    for i in d.impacts:
        span = (i.start, i.until is None, i.until or i.start)
        groups[i.viewer.article_order, i.viewer.label, span, _span(i, d.now), i.changes].append(i.viewer)
    ordered = sorted(groups.items(), key=lambda g: (g[0][0], min(v.reader_order for v in g[1]), g[0][2]))
    lines = [
        f"  {label} × {', '.join(v.reader_label for v in viewers)}: "
        f"{', '.join(str(c) for c in changes)} — {when}"
        for (_, label, _, when, changes), viewers in ordered
    ]
    notes = []
    if any(i.viewer.article.publisher == ANY_PUBLISHER for i in d.impacts):
        notes.append("* is any publisher no rule names")
    if any(i.viewer.qualifier or i.viewer.reader.languages for i in d.impacts):
        notes.append(
            "a [qualified] article or a reader who (prefers …) a language lists only the changes "
            "beyond the plain article and the unknown-location reader"
        )
    return lines + [f"  note: {note}" for note in notes]


def _short(ruleset_hash: str) -> str:
    return ruleset_hash[: len("sha256:") + 12]


def as_dict(d: RulesetDiff, old: str = "old", new: str = "new") -> dict[str, Any]:
    """The comparison as JSON-ready data: every impact per single reader, with full instants."""
    body: dict[str, Any] = {
        "old": {"source": old, "ruleset": d.old},
        "new": {"source": new, "ruleset": d.new},
        "now": _iso(d.now),
        "instants": [_iso(t) for t in d.instants],
        "different": d.different,
    }
    for section, kind in SECTIONS:
        body[section] = [
            {"id": i.id, "change": i.status, "keys": list(i.keys)} for i in d.items if i.kind == kind
        ]
    body["impact"] = [_impact_dict(i) for i in d.impacts]
    return body


def _impact_dict(impact: Impact) -> dict[str, Any]:
    a, location = impact.viewer.article, impact.viewer.reader.location
    article = {"publisher": a.publisher, "section": a.section, "tags": sorted(a.tags) or None}
    article |= {"language": a.language, "type": a.type}
    return {
        "article": {k: v for k, v in article.items() if v is not None},
        "reader": {
            "label": impact.viewer.reader_label,
            "subdivision_unknown": impact.viewer.partial,
            "country": location.country,
            "subdivision": location.subdivision,
            "anonymized": location.anonymized,
            "languages": list(impact.viewer.reader.languages),
        },
        "from": _iso(impact.start),
        "until": _iso(impact.until) if impact.until else None,
        "gained": _listed(c for c in impact.changes if c.gained),
        "lost": _listed(c for c in impact.changes if not c.gained),
    }


def _listed(changes: Iterable[Change]) -> dict[str, list[Any]]:
    found = list(changes)
    return {
        "notices": [{"id": c.id, "severity": c.severity} for c in found if c.kind == "notice"],
        "effects": [c.id for c in found if c.kind == "effect"],
    }


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
