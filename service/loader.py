"""Reads a rule directory of YAML files into a validated Ruleset; every error at file:line:column."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from service import gcpause, graphs, plainyaml
from service.model import RULE_FILE, RuleFile
from service.problems import Problem, RulesetInvalid
from service.ruleset import Origin, Ruleset, SourcedCase, SourceFile

RULE_FILE_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 8 * 1024 * 1024
"""Default bound on all rule files of a directory together (HERALD_RULES_MAX_BYTES)."""
MAX_REGION_DEPTH = 16
"""Most levels of regions including regions; real packs use two or three."""

Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class Parsed:
    """One file: its name for messages, the YAML tree (keeps positions) and the validated model.
    A file read by `plainyaml` has no tree, only where its items are: enough to serve and lint;
    to report problems, it is read again the positional way (see `_load`)."""

    name: str
    tree: Any
    model: RuleFile
    items: Mapping[str, list[plainyaml.Item]] | None = None

    def item(self, section: str, index: int) -> tuple[int, int, dict[str, tuple[int, int]]]:
        """Line and column of an item of a section, and of each of its keys."""
        if self.items is not None:
            found = self.items[section][index]
            return found.line, found.column, found.keys
        node = self.tree[section][index]
        keys = {str(k): (node.lc.key(k)[0] + 1, node.lc.key(k)[1] + 1) for k in node}
        return (*position(self.tree, (section, index)), keys)

    def problem(self, loc: Loc, code: str, message: str, *, at_key: bool = False) -> Problem:
        line, column = position(self.tree, loc, at_key=at_key)
        return Problem(self.name, line, column, code, message)


def load_ruleset(
    directory: Path, *, max_total_bytes: int = MAX_TOTAL_BYTES, positions: bool = True
) -> Ruleset:
    """Load and validate every rule file below `directory`. Raises RulesetInvalid with all problems,
    and nothing else: any other failure while loading (a recursion or memory limit, an overflow, a
    bug) is a problem too, at the file being read when it happened, else at the directory. A
    service keeps its last good rules on RulesetInvalid; no rule file may take it down.

    `positions`: keep where each item is defined (`Ruleset.origins`, for lint's warnings). A
    server passes False: it never reads them, and 10,000 rules' positions weigh megabytes in
    every worker. Errors keep their positions either way."""
    try:
        with gcpause.paused():
            return _load(directory, max_total_bytes, positions)
    except RulesetInvalid:
        raise
    except Exception as error:
        raise RulesetInvalid([failure(str(directory), error)]) from error


def failure(where: str, error: BaseException) -> Problem:
    """A problem for an exception nobody foresaw while loading rules."""
    if isinstance(error, RecursionError):
        text = "nested too deeply to load (recursion limit)"
    elif isinstance(error, MemoryError):
        text = "too large to load (out of memory)"
    else:
        text = f"{type(error).__name__}: {error}"[:300]
    return Problem(where, 1, 1, "load-failed", f"the rules could not be loaded: {text}")


def _load(directory: Path, max_total_bytes: int, positions: bool) -> Ruleset:
    problems: list[Problem] = []
    parsed: list[Parsed] = []
    files: list[SourceFile] = []
    contents: dict[str, bytes] = {}  # of the files read fast, in case they must be read again
    paths = rule_files(directory)
    if not paths:
        raise RulesetInvalid([Problem(str(directory), 1, 1, "no-files", "no rule files (*.yaml) found")])
    # A file over MAX_FILE_BYTES is refused by itself, at its name; it counts as read that far.
    total = sum(min(path.stat().st_size, MAX_FILE_BYTES + 1) for path in paths)
    if total > max_total_bytes:
        raise RulesetInvalid([_too_large(str(directory), total, max_total_bytes)])
    left = max_total_bytes
    for path in paths:
        name = _display_name(path)
        try:
            with path.open("rb") as file:
                # A huge file is refused without reading it all; so are files grown since listed.
                data = file.read(min(MAX_FILE_BYTES, left) + 1)
            left -= len(data)
            if left < 0:
                raise RulesetInvalid([_too_large(str(directory), max_total_bytes - left, max_total_bytes)])
            files.append(SourceFile(name, hashlib.sha256(data).hexdigest()))
            one, found = parse_file(name, data)
            if one is not None and one.tree is None:
                contents[name] = data
        except RulesetInvalid:
            raise
        except OSError as error:
            one, found = None, [Problem(name, 1, 1, "unreadable", f"file not readable: {error.strerror}")]
        except Exception as error:
            one, found = None, [failure(name, error)]
        problems += found
        if one is not None:
            parsed.append(one)
    across = cross_check(parsed)
    if across and contents:  # the positional way, to point at each problem
        parsed = [p if p.tree is not None else _positional(p.name, contents[p.name]) for p in parsed]
        across = cross_check(parsed)
    problems += across
    if problems:
        raise RulesetInvalid(problems)
    return Ruleset.build(
        regions=[r for p in parsed for r in p.model.regions],
        notices=[n for p in parsed for n in p.model.notices],
        rules=[r for p in parsed for r in p.model.rules],
        cases=tuple(
            SourcedCase(case, p.name, *p.item("cases", i)[:2])
            for p in parsed
            for i, case in enumerate(p.model.cases)
        ),
        files=tuple(files),
        origins=_origins(parsed) if positions else None,
    )


def _too_large(directory: str, total: int, limit: int) -> Problem:
    message = f"the rule files hold {total} bytes, more than {limit} (HERALD_RULES_MAX_BYTES)"
    return Problem(directory, 1, 1, "too-large", message)


def _origins(parsed: Sequence[Parsed]) -> dict[tuple[str, str], Origin]:
    origins = {}
    for p in parsed:
        for section in ("regions", "notices", "rules"):
            for i, item in enumerate(getattr(p.model, section)):
                line, column, keys = p.item(section, i)
                origins[section, item.id] = Origin(p.name, line, column, keys)
    return origins


def rule_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise RulesetInvalid([Problem(str(directory), 1, 1, "no-directory", "rule directory not found")])
    return sorted(
        p
        for p in directory.rglob("*")
        if p.suffix in RULE_FILE_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def _display_name(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _positional(name: str, data: bytes) -> Parsed:
    parsed, _ = parse_file(name, data, fast=False)
    assert parsed is not None, "a file valid when read fast is valid when read the positional way"
    return parsed


def parse_file(name: str, data: bytes, *, fast: bool = True) -> tuple[Parsed | None, list[Problem]]:
    """Parse and validate one file's structure (cross-file references are checked later).
    With `fast`, a plain file is read by libyaml (see `plainyaml`); a file that is not plain or
    not valid is read the positional way, so that every problem is at its line and column."""
    if len(data) > MAX_FILE_BYTES:
        return None, [Problem(name, 1, 1, "too-large", f"file is larger than {MAX_FILE_BYTES} bytes")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, [Problem(name, 1, 1, "encoding", f"file is not UTF-8 text ({e.reason})")]
    if fast:
        try:
            read = plainyaml.read(text)
            if isinstance(read.data, dict | None):
                model = RuleFile.model_validate(read.data or {}, context=RULE_FILE)
                return Parsed(name, None, model, read.items), []
        except (plainyaml.NotPlain, ValidationError):
            pass  # read again below, the way that says where
    try:
        tree = _yaml().load(text)
        plain = to_plain(tree)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(part) for part in (e.context, e.problem) if part) or "invalid YAML"
        return None, [Problem(name, line, column, "yaml", message.replace("\n", " "))]
    except (YAMLError, AliasUsed) as e:
        return None, [Problem(name, 1, 1, "yaml", str(e))]
    if plain is None:
        plain = {}
    if not isinstance(plain, dict):
        return None, [Problem(name, 1, 1, "not-a-mapping", _TOP_LEVEL)]
    try:
        model = RuleFile.model_validate(plain, context=RULE_FILE)
    except ValidationError as e:
        return None, [_problem_from_pydantic(name, tree, error) for error in e.errors()]
    return Parsed(name, tree, model), []


_TOP_LEVEL = "a rule file is a mapping with any of the keys regions, notices, rules, cases"


class AliasUsed(Exception):
    """YAML anchors and aliases are refused: they make files hard to review and can explode."""


_ALIAS = "YAML aliases (*name) are not allowed in rule files; write the value out"


MAX_DEPTH = 32


class _Composer(Composer):
    """Refuses, where they are written: every alias (scalars too), explicit tags such as
    `!!python/object` (rule files are plain data), and nesting deeper than MAX_DEPTH."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if self.parser.check_event(AliasEvent):
            raise ComposerError(None, None, _ALIAS, event.start_mark)
        if getattr(event, "tag", None) is not None:
            message = f"YAML tags ({event.tag}) are not allowed in rule files: they hold plain data"
            raise ComposerError(None, None, message, event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep; rule files are never that deep"
                raise ComposerError(None, None, message, event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Constructor(RoundTripConstructor):
    """Keeps an impossible date such as 2024-02-30 as text instead of crashing, so that
    validation reports it at its line, together with every other problem of the file."""

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return super().construct_yaml_timestamp(node, values)
        except ValueError:
            return str(node.value)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Composer = _Composer
    yaml.Constructor = _Constructor
    return yaml


def to_plain(node: Any, _seen: set[int] | None = None) -> Any:
    """The YAML tree as plain dicts, lists and scalars, refusing aliases (shared nodes)."""
    seen = set() if _seen is None else _seen
    if isinstance(node, dict | list):
        if id(node) in seen:
            raise AliasUsed(_ALIAS)
        seen.add(id(node))
    if isinstance(node, dict):
        return {to_plain(k, seen): to_plain(v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v, seen) for v in node]
    if isinstance(node, bool | int | float | str) and type(node) not in (bool, int, float, str):
        for plain_type in (bool, int, float, str):
            if isinstance(node, plain_type):
                return plain_type(node)
    if isinstance(node, datetime) and type(node) is not datetime:
        return datetime(*node.timetuple()[:6], node.microsecond, tzinfo=node.tzinfo)
    return node


def position(tree: Any, loc: Loc, *, at_key: bool = False) -> tuple[int, int]:
    """1-based line and column of the node at `loc` (the deepest existing part of it)."""
    line, column = 0, 0
    node = tree
    for depth, part in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            line, column = node.lc.key(part) if (last and at_key) else node.lc.value(part)
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, column = node.lc.item(part)
            node = node[part]
        elif isinstance(node, CommentedMap | CommentedSeq):
            if (line, column) == (0, 0) or isinstance(part, str):
                line, column = node.lc.line, node.lc.col
            if isinstance(part, int) or part in node:
                break
    return line + 1, column + 1


# ---- pydantic errors, reworded for editors ------------------------------------------------


def _all_keys() -> list[str]:
    keys: set[str] = set()
    pending: list[type[BaseModel]] = [RuleFile]
    while pending:
        model = pending.pop()
        for name, field in model.model_fields.items():
            keys.add(field.alias or name)
            pending += [t for t in _model_types(field.annotation) if t.__name__ not in keys]
            keys.update(t.__name__ for t in _model_types(field.annotation))
    return sorted(k for k in keys if k.islower())


def _keys_at(loc: Loc) -> list[str]:
    """The keys allowed in the mapping at `loc`; every key when that cannot be told."""
    models: list[type[BaseModel]] = [RuleFile]
    for part in loc:
        fields = [f for m in models for n, f in m.model_fields.items() if (f.alias or n) == part]
        if fields:
            models = [t for f in fields for t in _model_types(f.annotation)]
        # else a list index or a dict key (a language under `texts`): the same models hold below
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()}) or _all_keys()


def _model_types(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _model_types(arg)
    for meta in getattr(annotation, "__metadata__", ()):
        yield from _model_types(meta)
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and origin is not annotation:
        yield from _model_types(origin)


_PATTERNS = {
    "^[a-z0-9][a-z0-9._-]*$": "is not a valid id: use lower-case letters, digits, '.', '_' and '-'",
    "^[a-z]{2,3}(-[a-z0-9]{2,8})*$": "is not a language tag such as 'en', 'ru' or 'pt-br'",
    r"^https?://\S+$": "is not an http(s) URL",
}


def _problem_from_pydantic(name: str, tree: Any, error: Any) -> Problem:
    loc: Loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
    kind = error["type"]
    value = error.get("input")
    where = ".".join(str(p) for p in loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _keys_at(loc[:-1]), n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"unknown key {key!r}{hint}" if len(loc) > 1 else f"unknown section {key!r}; {_TOP_LEVEL}"
        line, column = position(tree, loc, at_key=True)
        return Problem(name, line, column, "unknown-key", message)
    if kind == "missing":
        message = f"missing required key {loc[-1]!r}"
        loc = loc[:-1]
    elif kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        message = f"{where}: {value!r} {_PATTERNS.get(pattern, 'has the wrong form')}"
    elif kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        message = f"{where}: expected {expected}, got {value!r}"
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",")]
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
        message += f"; did you mean {close[0]!r}?" if close else ""
    elif kind in ("value_error", "assertion_error", "no_time_zone", "until_not_after_from"):
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        message = f"{where}: {message}" if where and not isinstance(loc[-1], int) else message
    elif kind in ("unknown_country", "unknown_subdivision"):  # our own: the message says it all
        message = str(error["msg"])
    else:
        message = f"{where}: {error['msg'][:1].lower()}{error['msg'][1:]}"
        if not isinstance(value, dict | list):
            message += f", got {value!r}"
    line, column = position(tree, loc)
    return Problem(name, line, column, kind.replace("_", "-"), message)


# ---- checks across files -------------------------------------------------------------------


def cross_check(parsed: Sequence[Parsed]) -> list[Problem]:
    """Unique ids, references that resolve, and regions that do not include themselves."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str], tuple[Parsed, int]] = {}
    for p in parsed:
        for section in ("regions", "notices", "rules"):
            for i, item in enumerate(getattr(p.model, section)):
                key = (section, item.id)
                if key in seen:
                    first, j = seen[key]
                    where = f"{first.name}:{position(first.tree, (section, j, 'id'))[0]}"
                    problems.append(
                        p.problem(
                            (section, i, "id"),
                            "duplicate-id",
                            f"{section[:-1]} id {item.id!r} is already defined at {where}",
                        )
                    )
                else:
                    seen[key] = (p, i)
    regions = {r.id: r for p in parsed for r in p.model.regions}
    notices = {n.id for p in parsed for n in p.model.notices}
    for p in parsed:
        for i, region in enumerate(p.model.regions):
            for j, child in enumerate(region.include):
                if child not in regions:
                    problems.append(_unknown(p, ("regions", i, "include", j), "region", child, regions))
        for i, rule in enumerate(p.model.rules):
            if rule.notice not in notices:
                problems.append(_unknown(p, ("rules", i, "notice"), "notice", rule.notice, notices))
            for j, region_id in enumerate(rule.reader.regions):
                if region_id not in regions:
                    loc = ("rules", i, "reader", "regions", j)
                    problems.append(_unknown(p, loc, "region", region_id, regions))
        for i, case in enumerate(p.model.cases):
            expect = case.expect
            for field in ("notices", "includes", "excludes"):
                for j, notice_id in enumerate(getattr(expect, field) or ()):
                    if notice_id not in notices:
                        loc = ("cases", i, "expect", field, j)
                        problems.append(_unknown(p, loc, "notice", notice_id, notices))
        for i, notice in enumerate(p.model.notices):
            for j, other in enumerate(notice.supersedes):
                if other not in notices:
                    problems.append(_unknown(p, ("notices", i, "supersedes", j), "notice", other, notices))
    includes = {r.id: r.include for r in regions.values()}
    supersedes = {n.id: n.supersedes for p in parsed for n in p.model.notices}
    cycles = _cycles(parsed, "regions", "include", includes, "region-cycle", "includes itself")
    problems += cycles or _too_deep(parsed, includes)
    problems += _cycles(parsed, "notices", "supersedes", supersedes, "supersede-cycle", "supersedes itself")
    return problems


def _unknown(p: Parsed, loc: Loc, kind: str, name: str, known: Any) -> Problem:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return p.problem(loc, f"unknown-{kind}", f"unknown {kind} {name!r}{hint}")


def _cycles(
    parsed: Sequence[Parsed], section: str, key: str, graph: dict[str, Any], code: str, verb: str
) -> list[Problem]:
    problems: list[Problem] = []
    looping = graphs.on_cycles(graph)
    for p in parsed:
        for i, item in enumerate(getattr(p.model, section)):
            if item.id in looping:
                path = graphs.cycle_from(item.id, graph)
                message = f"{section[:-1]} {item.id!r} {verb}: {_chain(path)}"
                problems.append(p.problem((section, i, key), code, message))
    return problems


def _too_deep(parsed: Sequence[Parsed], includes: dict[str, Any]) -> list[Problem]:
    """Regions nested more than MAX_REGION_DEPTH levels, each named once: at the outermost
    region of every chain that is too deep (the others are inside it)."""
    depth = graphs.depths(includes)
    deep = {region for region, levels in depth.items() if levels > MAX_REGION_DEPTH}
    inside = {child for region in deep for child in includes[region]}
    return [
        p.problem(
            ("regions", i, "include"),
            "region-too-deep",
            f"region {region.id!r} nests regions {depth[region.id]} levels deep, more than "
            f"{MAX_REGION_DEPTH}: {_chain(graphs.deepest_path(region.id, includes, depth))}",
        )
        for p in parsed
        for i, region in enumerate(p.model.regions)
        if region.id in deep and region.id not in inside
    ]


def _chain(path: list[str], most: int = 8) -> str:
    """`a -> b -> c`, shortened in the middle when long."""
    if len(path) <= most:
        return " -> ".join(path)
    return " -> ".join([*path[: most // 2], f"... ({len(path) - most} more)", *path[-most // 2 :]])
