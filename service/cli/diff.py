"""`herald rules diff OLD NEW`: two rule directories or git revisions compared, with their impact."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import click
from pydantic import TypeAdapter, ValidationError

from service import diff as compare
from service.cli import common
from service.loader import RULE_FILE_SUFFIXES, load_ruleset
from service.model import Instant
from service.problems import Problem, RulesetInvalid, tally
from service.ruleset import Ruleset

INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


class DiffError(click.ClickException):
    """A side that cannot be read; exit 2, as diff(1) and git diff --exit-code do for trouble."""

    exit_code = 2


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for reviewers, json for machines.",
)
@click.option(
    "--at",
    metavar="INSTANT",
    help="Instant taken as now (RFC 3339, or a date: midnight UTC). Default: the clock.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when the rule sets differ (like git diff).")
def diff(old: str, new: str, output: str, at: str | None, exit_code: bool) -> None:
    """Compare two rule sets: rules, notices and regions added, removed and changed, and which
    notices and effects each publisher's readers gain or lose, now and at every later
    effective date.

    OLD and NEW are each a rule directory or a git revision: REV (its copy of the configured
    rules directory, HERALD_RULES_DIR) or REV:PATH (PATH from the top of the repository).

    Exit status: 0 (also when they differ, unless --exit-code), 1 when they differ with
    --exit-code, 2 when a side cannot be read or does not validate."""
    now = _now(at)
    result = compare.diff(_load(old, "OLD"), _load(new, "NEW"), now)
    if output == "json":
        click.echo(json.dumps(compare.as_dict(result, old, new), indent=2, ensure_ascii=False))
    else:
        click.echo(compare.render_text(result, old, new))
    sys.exit(1 if exit_code and result.different else 0)


def _now(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return INSTANT.validate_python(at)
    except ValidationError as error:
        # Our own refusals (a date-time without its zone) say how to fix it; pydantic's do not.
        first = error.errors()[0]
        message = f"{at!r}: {first['msg']}" if first["type"] == "no_time_zone" else None
        message = message or f"{at!r} is not an RFC 3339 instant or a date"
        raise click.BadParameter(message, param_hint="--at") from None


def _load(argument: str, side: str) -> Ruleset:
    """A rule directory if one exists at `argument`, else a git revision of one."""
    if Path(argument).is_dir():
        try:
            return load_ruleset(Path(argument))
        except RulesetInvalid as invalid:
            raise _invalid(side, argument, invalid.problems) from None
    return _load_revision(argument, side)


def _invalid(side: str, source: str, problems: list[Problem]) -> DiffError:
    listed = "\n".join(str(p) for p in problems)
    return DiffError(f"{side} {source}: {tally(problems, 'error')}\n{listed}")


def _git(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise DiffError("git is not installed: give rule directories instead of revisions") from None


def _load_revision(argument: str, side: str) -> Ruleset:
    """Copy the revision's rule files (only *.yaml, *.yml) to a temporary directory and load them.
    Blobs are read with ls-tree and cat-file rather than git archive, which export-ignore could thin."""
    revision, has_path, path = argument.partition(":")
    top = _git("rev-parse", "--show-toplevel")
    known = (
        top.returncode == 0
        and revision
        and not revision.startswith("-")
        and _git("rev-parse", "--verify", "-q", f"{revision}^{{tree}}").returncode == 0
    )
    if not known:
        raise DiffError(f"{side} {argument!r} is neither a directory nor a git revision")
    if not has_path:
        path = _default_path(Path(top.stdout.decode().strip()))
    tree = f"{revision}:{path}"
    kind = _git("cat-file", "-t", tree)
    if kind.returncode != 0:
        raise DiffError(f"{side}: revision {revision!r} has no {path or '.'!r}")
    if kind.stdout.strip() != b"tree":
        raise DiffError(f"{side}: {tree} is not a directory")
    with tempfile.TemporaryDirectory(prefix="herald-diff-") as temporary:
        root = Path(temporary)
        _export(tree, root)
        try:
            return load_ruleset(root)
        except RulesetInvalid as invalid:
            prefix = f"{tree}/" if path and not path.endswith("/") else tree
            problems = [replace(p, file=_renamed(p.file, root, prefix)) for p in invalid.problems]
            raise _invalid(side, argument, problems) from None


def _default_path(top: Path) -> str:
    """The configured rules directory, relative to the top of the git repository."""
    rules_dir = common.settings().rules_dir.resolve()
    try:
        return rules_dir.relative_to(top.resolve()).as_posix()
    except ValueError:
        raise DiffError(f"the rules directory {rules_dir} is outside the git repository {top}") from None


def _export(tree: str, root: Path) -> None:
    """Write the tree's rule files below `root`, keeping their relative paths."""
    listing = _git("ls-tree", "-r", "-z", "--full-tree", tree)
    if listing.returncode != 0:
        raise DiffError(f"git ls-tree {tree}: {listing.stderr.decode(errors='replace').strip()}")
    files: list[tuple[str, str]] = []
    for entry in listing.stdout.split(b"\0"):
        if not entry:
            continue
        meta, name = entry.decode("utf-8", "surrogateescape").split("\t", 1)
        mode, kind, oid = meta.split()
        if kind == "blob" and mode in ("100644", "100755") and name.endswith(RULE_FILE_SUFFIXES):
            files.append((oid, name))
    read = _git("cat-file", "--batch", stdin="".join(f"{oid}\n" for oid, _ in files).encode())
    if read.returncode != 0:
        raise DiffError(f"git cat-file {tree}: {read.stderr.decode(errors='replace').strip()}")
    batch = read.stdout
    offset = 0
    for _, name in files:
        header_end = batch.index(b"\n", offset)
        size = int(batch[offset:header_end].split()[2])
        target = root.joinpath(*PurePosixPath(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(batch[header_end + 1 : header_end + 1 + size])
        offset = header_end + 1 + size + 1


def _renamed(file: str, root: Path, prefix: str) -> str:
    """A temporary file name as the revision's path: HEAD~1:rules/policies/x.yaml."""
    try:
        relative = Path(file).resolve().relative_to(root.resolve())
    except ValueError:
        return file
    return prefix.rstrip("/") if relative == Path() else prefix + relative.as_posix()
