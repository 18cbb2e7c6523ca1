"""`herald explain`: the decision for one article and reader, and why each rule did or did not apply."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from service import geo as geoip
from service.cli import common
from service.engine import Engine
from service.inputs import Location, Reader
from service.network import parse_ip
from service.verdicts import Explanation, explain
from service.web.decisions import render
from service.web.schemas import DecisionRequest


@click.command("explain")
@click.argument("request_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--publisher", help="Article publisher.")
@click.option("--section", help="Article section.")
@click.option("--tags", help="Article tags, comma-separated.")
@click.option("--language", help="Article language.")
@click.option("--type", "type_", help="Article type.")
@click.option("--country", help="Reader country (ISO 3166-1 alpha-2).")
@click.option("--subdivision", help="Reader subdivision (ISO 3166-2).")
@click.option("--ip", help="Reader address, looked up in the GeoIP database.")
@click.option("--languages", help="Reader languages, best first, comma-separated.")
@click.option("--at", help="Instant (RFC 3339); default now.")
@click.option(
    "--rules", "rules_dir", type=click.Path(path_type=Path), help="Rule directory [HERALD_RULES_DIR]."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, as POST /v1/explain answers.")
def explain_command(
    request_file: Path | None, rules_dir: Path | None, as_json: bool, **options: str | None
) -> None:
    """Explain a decision. Give the article and reader as options, or a JSON file with the same
    body as POST /v1/decisions."""
    body = _body(request_file, options)
    try:
        request = DecisionRequest.model_validate(body)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise click.ClickException(details) from None
    settings = common.settings(rules_dir=rules_dir)
    engine = Engine(common.ruleset(settings.rules_dir))
    reader = _reader(request, settings)
    result = explain(engine, request.article.to_article(), reader, request.at or datetime.now(UTC))
    if as_json:
        verdicts = [asdict(v) for v in result.verdicts]
        click.echo(json.dumps({**render(result.decision), "rules": verdicts}, indent=2, ensure_ascii=False))
    else:
        click.echo(text(result))


def _body(request_file: Path | None, options: dict[str, str | None]) -> dict[str, Any]:
    if request_file is not None:
        try:
            loaded = json.loads(request_file.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise click.ClickException(f"{request_file}: not JSON ({error})") from None
        if not isinstance(loaded, dict):
            raise click.ClickException(f"{request_file}: expected a JSON object")
        return loaded
    if not options.get("publisher"):
        raise click.ClickException(
            "give --publisher (and the other article and reader options), or a JSON file"
        )
    article: dict[str, Any] = {k: options[k] for k in ("publisher", "section", "language") if options.get(k)}
    article |= {"type": options["type_"]} if options.get("type_") else {}
    article |= {"tags": [t for t in (options["tags"] or "").split(",") if t]} if options.get("tags") else {}
    reader: dict[str, Any] = {k: options[k] for k in ("country", "subdivision", "ip") if options.get(k)}
    reader |= {"languages": (options["languages"] or "").split(",")} if options.get("languages") else {}
    return {"article": article, "reader": reader} | ({"at": options["at"]} if options.get("at") else {})


def _reader(request: DecisionRequest, settings: Any) -> Reader:
    given = request.reader
    if given is None:
        return Reader()
    languages = given.languages or ()
    if given.country or given.subdivision:
        return Reader(Location.explicit(given.country, given.subdivision), languages)
    if given.ip:
        try:
            database = geoip.GeoDatabase.open(
                settings.geoip_db or geoip.embedded_database_path(), locate_non_global=settings.locate_private
            )
        except geoip.GeoDatabaseError as error:
            raise click.ClickException(str(error)) from None
        return Reader(database.lookup(parse_ip(given.ip)), languages)
    return Reader(languages=languages)


def text(result: Explanation) -> str:
    """The explanation for a terminal: the decision, then every rule with its checks."""
    d = result.decision
    where = "/".join(p for p in (d.reader.country, d.reader.subdivision) if p) or "unknown"
    lines = [
        f"decision at {d.at.isoformat()} on {d.ruleset}",
        f"reader: {where} ({d.reader.source}{', anonymized' if d.reader.anonymized else ''})"
        + (f", prefers {', '.join(d.languages)}" if d.languages else ""),
        "notices: " + ("none" if not d.notices else ""),
    ]
    lines += [f"  {n.id} ({n.severity}, {n.language}) from {', '.join(n.rules)}" for n in d.notices]
    lines += [f"  {s.id} superseded by {s.by}" for s in d.superseded]
    lines.append(f"effects: {', '.join(d.effects) or 'none'}")
    lines.append("rules:")
    for v in result.verdicts:
        lines.append(f"  {'APPLIES' if v.applies else 'no     '} {v.rule} -> {v.notice}")
        lines += [f"      {'ok ' if c.held else 'NOT'} {c.condition}: {c.detail}" for c in v.checks]
    return "\n".join(lines)
