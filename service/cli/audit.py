"""`herald audit verify|query|summary|export|replay|rules`: auditors' tools over many log directories."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from service.audit import history
from service.audit import query as q
from service.audit import summary as s
from service.audit.checkpoint import CHECKPOINTS
from service.audit.replay import Engines
from service.audit.replay import replay as replay_one
from service.audit.scan import FileCheck
from service.audit.source import FileSource, Source, open_source
from service.audit.store import StoreError
from service.cli import auditdb, common

DIRS = click.argument("directories", nargs=-1, type=click.Path(path_type=Path, file_okay=False))
DIR_OPTION = click.option(
    "-d",
    "--dir",
    "directories",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Log directory (repeat for several nodes) [default: HERALD_AUDIT_DIR].",
)


DB_OPTION = click.option(
    "--db",
    "db_url",
    envvar="HERALD_AUDIT_DB",
    help="Read the PostgreSQL audit store instead of log directories [HERALD_AUDIT_DB].",
)


def _source(directories: tuple[Path, ...], db_url: str | None) -> Source:
    """Log directories given on the command line win over HERALD_AUDIT_DB; --db with them is an error."""
    given = click.get_current_context().get_parameter_source("db_url")
    if directories and db_url and given == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give log directories or --db, not both")
    try:
        return open_source(
            common.settings(),
            None if directories else db_url,
            _directories(directories) if not db_url else (),
        )
    except StoreError as error:
        raise click.ClickException(str(error)) from None


def _directories(given: tuple[Path, ...]) -> list[Path]:
    directories = list(given) or [common.settings().audit_dir]
    missing = [str(d) for d in directories if not d.is_dir()]
    if missing:
        raise click.ClickException(f"no such log directory: {', '.join(missing)}")
    return directories


def _instant(_: Any, __: Any, value: str | None) -> str | None:
    """A date (YYYY-MM-DD) or an ISO instant, as text that compares with the records' `ts` and `at`."""
    if value is None:
        return None
    try:
        return q.bound(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 instant") from None


def _until(ctx: Any, param: Any, value: str | None) -> str | None:
    """`--to`, included: the exclusive end just after it (the next day of a date)."""
    to = _instant(ctx, param, value)
    return q.end_after(to) if to is not None else None


def _range(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--to", "end", callback=_until, help="Until this date (the whole day) or instant, included."
    )(f)
    return click.option(
        "--from", "start", callback=_instant, help="From this date or instant (UTC), included."
    )(f)


def _selection(what_if: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--by` and `--what-if`, with `what_if` as the default of the latter."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--what-if",
            "what_if",
            type=click.Choice(["exclude", "include", "only"]),
            default=what_if,
            show_default=True,
            help="What-if decisions (asked with `at`, not page views): leave out, include, or only them.",
        )(f)
        return click.option(
            "--by",
            type=click.Choice(["logged", "decided"]),
            default="logged",
            show_default=True,
            help="Which time --from/--to (and days) are about: when a record was written (ts), or the "
            "instant it was decided for (at).",
        )(f)

    return decorate


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (on stderr); nothing otherwise."""
    if not sys.stderr.isatty() or total <= 0:
        yield lambda _: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


@click.group()
def audit() -> None:
    """Read, check and replay the audit log."""


@audit.command()
@DIRS
@click.option(
    "--key", envvar="HERALD_AUDIT_KEY", help="HMAC key the log was written with [HERALD_AUDIT_KEY]."
)
@click.option(
    "--checkpoints",
    "checkpoint_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Checkpoint log directory (repeat) [default: each DIR's checkpoints/, and "
    "HERALD_AUDIT_CHECKPOINT_DIR when set].",
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A witness's checkpoint directory (its witnessed-*.jsonl): its checkpoints count too.",
)
@click.option(
    "--as-of",
    "as_of",
    callback=_instant,
    help="Judge which writers are alive as of this instant (the time a copy was taken) [default: now].",
)
@DB_OPTION
def verify(
    directories: tuple[Path, ...],
    key: str | None,
    checkpoint_dirs: tuple[Path, ...],
    witnesses: tuple[Path, ...],
    as_of: str | None,
    db_url: str | None,
) -> None:
    """Check every chain against its checkpoints, and every archived ruleset; one line per file;
    exit 1 unless all is intact.

    With --db, every chain is rebuilt from the database alone and checked by the same code."""
    with _source(directories, db_url) as source:
        own: list[Path] | None = None
        if isinstance(source, FileSource):
            own = list(checkpoint_dirs) or _checkpoint_dirs(source.directories)
        elif checkpoint_dirs or witnesses or as_of:
            # The database holds the checkpoints shipped, and knows live files from its shipper.
            raise click.UsageError("--checkpoints, --witness and --as-of are about log directories, not --db")
        report = source.verify(
            key.encode() if key else None,
            own,
            list(witnesses),
            datetime.fromisoformat(as_of.replace("Z", "+00:00")).replace(tzinfo=UTC) if as_of else None,
        )
    for check in report.files:
        click.echo(_verdict(check))
    for check in report.checkpoints:
        click.echo(_verdict(check, "checkpoints"))
    for ruleset in report.rulesets:
        word = "ok  " if ruleset.ok else "FAIL"
        click.echo(f"{word}  {ruleset.path}" + ("" if ruleset.ok else f": {ruleset.detail}"))
    bad = sum(not f.ok for f in [*report.files, *report.checkpoints]) + sum(not r.ok for r in report.rulesets)
    count = sum(f.records for f in report.files)
    stated = sum(c.records for c in report.checkpoints)
    totals = (
        f"{len(report.files)} files, {count} records, {len(report.rulesets)} rulesets, {stated} checkpoints"
    )
    key_id = report.key_needed
    if key_id is not None:
        click.echo(
            f"KEY NEEDED: the records are sealed with an HMAC key (key id {key_id}); nothing can be "
            "verified without it: give --key or set HERALD_AUDIT_KEY"
        )
    elif report.ok:
        live = sum("open: being written" in f.notes for f in report.files)
        click.echo(f"intact{' (open: being written: ' + str(live) + ' files)' if live else ''}: {totals}")
    else:
        click.echo(f"NOT INTACT: {bad} bad of {totals}")
    sys.exit(0 if report.ok else 1)


def _checkpoint_dirs(directories: list[Path]) -> list[Path]:
    """Each directory's own checkpoints/, and the configured checkpoint directory when set (read
    from the environment alone: other settings, such as an old short key, must not stop verify)."""
    chosen = [d / CHECKPOINTS for d in directories]
    configured = os.environ.get("HERALD_AUDIT_CHECKPOINT_DIR")
    if configured and Path(configured) not in chosen:
        chosen.append(Path(configured))
    return chosen


def _verdict(check: FileCheck, what: str = "records") -> str:
    if check.problem is None:
        seqs = f", seq {check.first['seq']}..{check.last['seq']}" if check.first and check.last else ""
        notes = f" ({'; '.join(check.notes)})" if check.notes else ""
        return f"ok    {check.path}: {check.records} {what}{seqs}{notes}"
    p = check.problem
    where = (f"seq {p.seq}" if p.seq is not None else "") + (f" (line {p.line})" if p.line else "")
    return f"FAIL  {check.path}: {where + ': ' if where else ''}{p.kind}: {p.detail}"


def _filters(f: Callable[..., Any]) -> Callable[..., Any]:
    for name, text in reversed(
        [
            ("publisher", "Article publisher."),
            ("article", "Article id or url."),
            ("notice", "A notice shown."),
            ("rule", "A rule that matched."),
            ("country", "Reader country (ISO 3166-1 alpha-2)."),
            ("subdivision", "Reader subdivision (ISO 3166-2)."),
            ("source", "How the reader was located: explicit, header, geoip, unknown."),
            ("ruleset", "Ruleset hash, or a prefix of its hex."),
        ]
    ):
        f = click.option(f"--{name}", help=text)(f)
    return _range(f)


@audit.command("query")
@DIRS
@_filters
@_selection(what_if="include")
@click.option("--kind", default="decision", show_default=True, help="Record kind, or 'all' (events too).")
@click.option("--format", "form", type=click.Choice(["jsonl", "table"]), default="jsonl", show_default=True)
@DB_OPTION
def query_command(
    directories: tuple[Path, ...], kind: str, form: str, db_url: str | None, **where: Any
) -> None:
    """Records that match every filter given, merged by time across directories."""
    where_ = q.Filter(kind=None if kind == "all" else kind, **where)
    with _source(directories, db_url) as source:
        found = source.select(where_)
        lines = q.jsonl(found) if form == "jsonl" else q.table(map(q.flat, found), q.TABLE, _WIDTHS)
        for line in lines:
            click.echo(line)


_WIDTHS = (27, 36, 7, 7, 11, 8, 12, 14, 30)


@audit.command("summary")
@DIRS
@_range
@_selection(what_if="exclude")
@click.option("--by-subdivision", is_flag=True, help="One row per subdivision too.")
@click.option(
    "--format", "form", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@DB_OPTION
def summary_command(
    directories: tuple[Path, ...],
    start: str | None,
    end: str | None,
    by: q.By,
    what_if: q.WhatIf,
    by_subdivision: bool,
    form: str,
    db_url: str | None,
) -> None:
    """Decisions and each notice shown, by day x country (x subdivision)."""
    where = q.Filter(start, end, by=by, what_if=what_if)
    with _source(directories, db_url) as source, _progress(source.size(where), "reading") as update:
        rows = source.summarize(
            start, end, by_subdivision=by_subdivision, by=by, what_if=what_if, progress=update
        )
    if form == "json":
        click.echo(orjson.dumps(s.as_json(rows, by_subdivision), option=orjson.OPT_INDENT_2).decode())
        return
    notices = s.notice_ids(rows)
    columns = ["day", "country"] + (["subdivision"] if by_subdivision else []) + ["decisions", *notices]
    flat = (_summary_row(key, row, notices) for key, row in rows.items())
    lines = (
        q.csv_lines(flat, columns)
        if form == "csv"
        else q.table(flat, columns, [max(len(c), 10) for c in columns])
    )
    for line in lines:
        click.echo(line)


def _summary_row(key: s.Key, row: s.Row, notices: list[str]) -> dict[str, Any]:
    day, country, subdivision = key
    counts = {n: row.notices.get(n, 0) for n in notices}
    return {"day": day, "country": country, "subdivision": subdivision, "decisions": row.decisions, **counts}


@audit.command("export")
@DIRS
@_range
@_selection(what_if="exclude")
@click.option("--format", "form", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.File("w"), default="-", help="File to write [default: stdout].")
@DB_OPTION
def export_command(
    directories: tuple[Path, ...],
    start: str | None,
    end: str | None,
    by: q.By,
    what_if: q.WhatIf,
    form: str,
    output: Any,
    db_url: str | None,
) -> None:
    """Decisions of a time range as CSV (one flat row each) or JSON Lines, for other tools."""
    with _source(directories, db_url) as source:
        found = source.select(q.Filter(start=start, end=end, by=by, what_if=what_if))
        lines = q.csv_lines(map(q.flat, found), q.COLUMNS) if form == "csv" else q.jsonl(found)
        for line in lines:
            output.write(line + "\n")


@audit.command("replay")
@click.argument("decision_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every decision in the range (--from/--to).")
@_range
@DIR_OPTION
@click.option("-v", "--verbose", is_flag=True, help="One line per decision, also when the same.")
@DB_OPTION
def replay_command(
    decision_ids: tuple[str, ...],
    every: bool,
    start: str | None,
    end: str | None,
    directories: tuple[Path, ...],
    verbose: bool,
    db_url: str | None,
) -> None:
    """Re-decide logged decisions on the archived ruleset then in force: same or different.

    Exit 1 if any decision comes out different (or its ruleset is not archived)."""
    if bool(decision_ids) == every:
        raise click.UsageError("give DECISION_ID... or --all")
    with _source(directories, db_url) as source:
        counts = _replay(source, decision_ids, every, start, end, verbose)
    if every or len(decision_ids) > 1:
        click.echo(", ".join(f"{n} {verdict}" for verdict, n in counts.items()))
    sys.exit(0 if counts["same"] == sum(counts.values()) else 1)


def _replay(
    source: Source,
    decision_ids: tuple[str, ...],
    every: bool,
    start: str | None,
    end: str | None,
    verbose: bool,
) -> dict[str, int]:
    engines = source.engines()
    chosen: Any
    if every:
        chosen = source.select(q.Filter(start, end))
    else:
        chosen = []
        for decision_id in decision_ids:
            record = source.find_decision(decision_id)
            if record is None:
                raise click.ClickException(f"decision {decision_id} is not in the log")
            chosen.append(record)
    counts = {"same": 0, "different": 0, "unavailable": 0}
    for record in chosen:
        result = replay_one(record, engines)
        counts[result.verdict] += 1
        if verbose or not every or result.verdict != "same":
            click.echo(f"{result.decision_id}  {result.verdict}")
            for difference in result.differences:
                click.echo(f"    {difference}")
    return counts


@audit.command("rules")
@click.argument("at", callback=_instant)
@DIR_OPTION
def rules_command(at: str, directories: tuple[Path, ...]) -> None:
    """Which ruleset was in force at AT (a date or instant), on which nodes, with its rules."""
    dirs = _directories(directories)
    found = history.in_force(dirs, at)
    if not found:
        raise click.ClickException(f"no ruleset was in force at {at} according to the log")
    engines = Engines(dirs)
    for ruleset in sorted({f.ruleset for f in found}):
        click.echo(ruleset)
        for f in (f for f in found if f.ruleset == ruleset):
            click.echo(f"    on {f.node} pid {f.pid}, loaded {f.since}")
        try:
            rules = engines.get(ruleset).ruleset.rules.values()
        except Exception as error:  # noqa: BLE001 - an archive problem is reported, not raised
            click.echo(f"    rules unavailable: {error}")
            continue
        for rule in rules:
            period = f"{_day(rule.effective.start)}..{_day(rule.effective.until)}"
            regions = ",".join(rule.reader.regions) or "-"
            click.echo(f"    rule {rule.id}: notice {rule.notice}; regions {regions}; in effect {period}")


def _day(instant: datetime | None) -> str:
    return "" if instant is None else instant.isoformat().replace("+00:00", "Z")


audit.add_command(auditdb.ship_command)
audit.add_command(auditdb.db)
