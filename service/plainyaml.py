"""Reads a rule file with libyaml when it is plain data; anything unusual is left to the positional reader.

The positional reader (ruamel.yaml, round trip, pure Python) keeps the line and column of every
node and says what is wrong where, but costs about 5 ms per rule. Most files are plain: block or
flow mappings, lists and scalars, no anchors, aliases or tags, no duplicate keys. Those are read
here from libyaml's events (C), with scalars resolved as ruamel resolves them (YAML 1.2): the same
values, and the positions lint needs (each item's and each of its keys'). Whatever this reader is
not sure of raises `NotPlain`, and the loader reads the file the positional way, which also words
every error."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

MAX_DEPTH = 32


class NotPlain(Exception):
    """The file has something this reader leaves to the positional one."""


@dataclass(frozen=True, slots=True)
class Item:
    """Where an item of a top-level section starts, and where each of its keys is (1-based)."""

    line: int
    column: int
    keys: dict[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class PlainFile:
    """The file's data as plain dicts, lists and scalars, and where each section's items are."""

    data: Any
    items: dict[str, list[Item]]


# First characters with which ruamel's YAML 1.2 resolver may read a plain scalar as other than
# text; a plain scalar starting otherwise is a str without further checks.
_SPECIAL_FIRST = frozenset(k for k in VersionedResolver(version=(1, 2)).versioned_resolver if k)
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\.[0-9]+\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?\Z"
)
_RESOLVER = VersionedResolver(version=(1, 2))
_INTERNED = 100
_STR = "tag:yaml.org,2002:str"


def _scalar(event: Any) -> Any:
    value: str = event.value
    if len(value) <= _INTERNED:  # ids, codes, tags: one object per distinct text, not per use
        value = sys.intern(value)
    if not event.implicit[0]:  # quoted or block text
        return value
    if value and value[0] not in _SPECIAL_FIRST:
        return value
    tag = str(_RESOLVER.resolve(ScalarNode, value, (True, False)))
    if tag == _STR:
        return value
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    if tag.endswith(":int") and _INT.match(value):
        return int(value)
    if tag.endswith(":float") and _FLOAT.match(value):
        return float(value)
    if tag.endswith(":timestamp"):
        try:
            if _DATE.match(value):
                return date.fromisoformat(value)
            if _DATETIME.match(value):
                return datetime.fromisoformat(value.replace("t", "T"))
        except ValueError:
            pass  # an impossible date: the positional reader keeps it as text for validation to report
    raise NotPlain(value)


def read(text: str) -> PlainFile:
    """The file as plain data with the positions of its items; `NotPlain` if it is not plain."""
    try:
        events = yaml.parse(text, Loader=yaml.CSafeLoader)
        return _build(iter(events))
    except NotPlain:
        raise
    except Exception as error:  # a YAML error, or anything odd: the positional reader words it
        raise NotPlain(str(error)) from error


def _build(events: Any) -> PlainFile:
    items: dict[str, list[Item]] = {}
    data: Any = None
    documents = 0
    for event in events:
        kind = type(event)
        if kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise NotPlain("more than one document")
            data = _node(events, next(events), 1, items, None)
        elif kind not in (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent):
            raise NotPlain(kind.__name__)
    return PlainFile(data, items)


def _node(events: Any, event: Any, depth: int, items: dict[str, list[Item]], section: str | None) -> Any:
    """The value starting at `event`; `section` names the top-level list being read, if any."""
    if (
        depth > MAX_DEPTH
        or getattr(event, "anchor", None) is not None
        or getattr(event, "tag", None)
        not in (
            None,
            "!",
        )
    ):
        raise NotPlain("deep, anchored or tagged")
    kind = type(event)
    if kind is yaml.ScalarEvent:
        if event.tag is not None:
            raise NotPlain("tagged")
        return _scalar(event)
    if kind is yaml.SequenceStartEvent:
        values: list[Any] = []
        for item in events:
            if type(item) is yaml.SequenceEndEvent:
                return values
            if section is not None and type(item) is yaml.MappingStartEvent:
                keys: dict[str, tuple[int, int]] = {}
                line, column = _at(item)
                values.append(_mapping(events, depth + 1, items, keys))
                items.setdefault(section, []).append(Item(line, column, keys))
            else:
                if section is not None:
                    items.setdefault(section, []).append(Item(*_at(item), {}))
                values.append(_node(events, item, depth + 1, items, None))
        raise NotPlain("unterminated sequence")
    if kind is yaml.MappingStartEvent:
        return _mapping(events, depth, items, None, top=depth == 1)
    raise NotPlain(kind.__name__)


def _mapping(
    events: Any,
    depth: int,
    items: dict[str, list[Item]],
    keys: dict[str, tuple[int, int]] | None,
    *,
    top: bool = False,
) -> dict[Any, Any]:
    if depth > MAX_DEPTH:
        raise NotPlain("deep")
    mapping: dict[Any, Any] = {}
    for event in events:
        if type(event) is yaml.MappingEndEvent:
            return mapping
        if type(event) is not yaml.ScalarEvent or event.anchor is not None or event.tag is not None:
            raise NotPlain("a key that is not a plain scalar")
        key = _scalar(event)
        if key in mapping or key == "<<" or isinstance(key, dict | list):
            raise NotPlain("duplicate or merge key")
        if keys is not None:
            keys[str(key)] = _at(event)
        section = key if top and key in ("regions", "notices", "rules", "cases") else None
        mapping[key] = _node(events, next(events), depth + 1, items, section)
    raise NotPlain("unterminated mapping")


def _at(event: Any) -> tuple[int, int]:
    """1-based line and column where the event starts."""
    mark = event.start_mark
    return mark.line + 1, mark.column + 1
