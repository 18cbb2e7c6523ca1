"""The fields of each kind of record: decisions, and the events around them (start, rules, stop)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from service.audit.bounds import bounded_article
from service.decision import Decision
from service.inputs import Article
from service.ruleset import Ruleset

SCHEMA = 1  # `v` of every record; bump on an incompatible change of the fields below

Fields = dict[str, Any]


def iso(instant: datetime) -> str:
    """UTC with microseconds and a Z: `2025-06-01T12:00:00.000000Z` (sorts as text)."""
    # Not strftime: its %Y writes year 1 as "1", which would not sort (and glibc-dependent).
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def decision_fields(
    decision_id: str,
    article: Article,
    decision: Decision,
    network: str | None,
    *,
    what_if: bool = False,
    named_tags: frozenset[str] = frozenset(),
    reader: Fields | None = None,
) -> Fields:
    """A decision as logged: the inputs the engine saw (so it can be replayed) and what it answered.

    `what_if` is present, and true, only on a what-if decision (asked with `at`, not a page view):
    records written before it existed, and every page view, simply lack it (read it as false).
    Long ids, urls and tags are cut (service/audit/bounds.py; the tags in `named_tags`, which rules
    name, never are); `cut` is present only when something was, and says what and how much.
    `reader`: `reader_fields(decision, network)` when the caller has it already (a batch's decisions
    share one reader)."""
    recorded, cut = bounded_article(
        {
            "id": article.id,
            "url": article.url,
            "publisher": article.publisher,
            "section": article.section,
            "language": article.language,
            "type": article.type,
        },
        article.tags,
        named_tags,
    )
    fields: Fields = ({"what_if": True} if what_if else {}) | ({"cut": cut} if cut else {})
    return fields | {
        "decision_id": decision_id,
        "ruleset": decision.ruleset,
        "at": iso(decision.at),
        "article": recorded,
        "reader": reader if reader is not None else reader_fields(decision, network),
        "rules": list(decision.rules),
        "matches": [
            {"rule": m.rule, "reason": m.reason, "region": m.region, "code": m.code} for m in decision.matches
        ],
        "notices": [{"id": n.id, "language": n.language, "rules": list(n.rules)} for n in decision.notices],
        "effects": list(decision.effects),
    }


def reader_fields(decision: Decision, network: str | None) -> Fields:
    """The reader as logged: where the decision placed it, its languages and its reduced address."""
    location = decision.reader
    return {
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
