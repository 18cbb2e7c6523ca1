"""The fields of each kind of record: decisions, and the events around them (start, rules, stop)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from service.decision import Decision
from service.inputs import Article
from service.ruleset import Ruleset

SCHEMA = 1  # `v` of every record; bump on an incompatible change of the fields below

Fields = dict[str, Any]


def iso(instant: datetime) -> str:
    """UTC with microseconds and a Z: `2025-06-01T12:00:00.000000Z` (sorts as text)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decision_fields(decision_id: str, article: Article, decision: Decision, network: str | None) -> Fields:
    """A decision as logged: the inputs the engine saw (so it can be replayed) and what it answered."""
    location = decision.reader
    return {
        "decision_id": decision_id,
        "ruleset": decision.ruleset,
        "at": iso(decision.at),
        "article": {
            "id": article.id,
            "url": article.url,
            "publisher": article.publisher,
            "section": article.section,
            "tags": sorted(article.tags),
            "language": article.language,
            "type": article.type,
        },
        "reader": {
            "country": location.country,
            "subdivision": location.subdivision,
            "source": location.source,
            "anonymized": location.anonymized,
            "languages": list(decision.languages),
            "network": network,
            # What each source said before merging, with the data that said it (GeoIP type and
            # build date, CDN header): present only when some source was asked.
            **({"said": [said.as_dict() for said in location.said]} if location.said else {}),
            **({"anonymizers": list(location.anonymizers)} if location.anonymizers else {}),
        },
        "rules": list(decision.rules),
        "matches": [
            {"rule": m.rule, "reason": m.reason, "region": m.region, "code": m.code} for m in decision.matches
        ],
        "notices": [{"id": n.id, "language": n.language, "rules": list(n.rules)} for n in decision.notices],
        "effects": list(decision.effects),
    }


def ruleset_fields(ruleset: Ruleset, previous: Mapping[str, Any] | None, previous_hash: str | None) -> Fields:
    """A `ruleset_loaded` event: what was loaded, and what changed against the ruleset before it."""
    return {
        "ruleset": ruleset.hash,
        "files": [{"path": f.path, "sha256": f.sha256} for f in ruleset.files],
        "counts": {
            "regions": len(ruleset.regions),
            "notices": len(ruleset.notices),
            "rules": len(ruleset.rules),
            "cases": len(ruleset.cases),
        },
        "previous": previous_hash,
        "changes": changes(previous, ruleset.canonical()) if previous is not None else None,
    }


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> Fields:
    """Ids added, removed and changed, per kind (regions, notices, rules), between canonical forms."""
    result: Fields = {}
    for kind in ("regions", "notices", "rules"):
        old = _by_id(before.get(kind, ()))
        new = _by_id(after.get(kind, ()))
        result[kind] = {
            "added": sorted(new.keys() - old.keys()),
            "removed": sorted(old.keys() - new.keys()),
            "changed": sorted(i for i in new.keys() & old.keys() if new[i] != old[i]),
        }
    return result


def _by_id(items: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(item["id"]): item for item in items}
