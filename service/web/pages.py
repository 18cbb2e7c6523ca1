"""The publisher's widget (GET /widget.js) and the editors' preview page (GET /preview)."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from pydantic import ValidationError

from service.inputs import UNKNOWN, Reader
from service.ruleset import Ruleset
from service.verdicts import explain
from service.web.decisions import render
from service.web.locate import locate
from service.web.problems import from_validation
from service.web.runtime import Runtime, runtime
from service.web.schemas import DecisionRequest

STATIC = Path(__file__).parent / "static"
bp = Blueprint(
    "pages", __name__, template_folder="templates", static_folder="static", static_url_path="/static/herald"
)
ARTICLE_FIELDS = ("publisher", "section", "tags", "language", "type")
READER_FIELDS = ("country", "subdivision", "ip", "languages")
LOCAL_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?")
FORM_FIELDS = (*ARTICLE_FIELDS, *READER_FIELDS, "at")
# The pages' own scripts and styles only. Inline styles are allowed: widget.js adds its <style>.
POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@bp.app_context_processor
def _navigation() -> dict[str, Any]:
    return {"audit_page": "pages_audit.dashboard" in current_app.view_functions}


@bp.get("/widget.js")
def widget() -> Response:
    """The publisher's script. Cached briefly: a new version reaches pages within five minutes."""
    response = Response((STATIC / "widget.js").read_bytes(), mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = 300
    response.add_etag()
    response.make_conditional(request)  # 304 when the browser has this version
    return response


@bp.get("/preview")
def preview() -> tuple[str, int, dict[str, str]]:
    """The form; with a publisher given, the decision as the widget renders it and why each rule
    did or did not apply. Read-only: nothing is logged, nothing is changed."""
    rt = runtime()
    form = {name: request.args.get(name, "").strip() for name in FORM_FIELDS}
    rules = rt.engine.ruleset
    context: dict[str, Any] = {"form": form, "choices": choices(rules), "ruleset": rules.hash, "result": None}
    context["errors"], status = {}, 200
    if form["publisher"]:
        try:
            body = DecisionRequest.model_validate(_body(form))
        except ValidationError as error:
            problems = from_validation(error).errors or []
            context["errors"] = {_field(e["location"]): e["message"] for e in reversed(problems)}
            status = 422
        else:
            context["result"] = preview_explanation(rt, body)
    return render_template("preview.html", **context), status, {"Content-Security-Policy": POLICY}


def preview_explanation(rt: Runtime, body: DecisionRequest) -> dict[str, Any]:
    """What POST /v1/explain answers, except that a reader given no place is unknown (not the
    editor's own address) and speaks only the languages given (not the editor's browser's)."""
    given = body.reader
    languages = tuple(given.languages or ()) if given is not None else ()
    if given is not None and given.located:
        reader, _ = locate(given.model_copy(update={"languages": languages}), request, rt)
    else:
        reader = Reader(UNKNOWN, languages)
    explanation = explain(rt.engine, body.article.to_article(), reader, body.at or rt.clock())
    return {
        **render(explanation.decision),
        "languages": list(reader.languages),
        "rules": [asdict(verdict) for verdict in explanation.verdicts],
    }


def _body(form: dict[str, str]) -> dict[str, Any]:
    article: dict[str, Any] = {k: form[k] for k in ARTICLE_FIELDS if form[k]}
    if "tags" in article:
        article["tags"] = _words(article["tags"])
    reader: dict[str, Any] = {k: form[k] for k in ("country", "subdivision", "ip") if form[k]}
    reader["languages"] = _words(form["languages"])
    return {"article": article, "reader": reader} | ({"at": _form_instant(form["at"])} if form["at"] else {})


def _form_instant(text: str) -> str:
    """The form's instant field is labelled UTC and a browser's datetime-local sends no zone
    (`2024-01-01T00:00`): the label is the zone. Anything else is validated as the API's `at`."""
    return f"{text}Z" if LOCAL_INSTANT.fullmatch(text.strip()) else text


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


def _field(location: str) -> str:
    """The form field a JSON Pointer into the request names: /reader/languages/0 -> languages."""
    parts = [p for p in location.split("/") if p and not p.isdigit()]
    return parts[-1] if parts else "publisher"


def choices(ruleset: Ruleset) -> dict[str, list[tuple[str, str]]]:
    """Values to pick from, as (value, label): what the rules name."""
    publishers = sorted({p for rule in ruleset.rules.values() for p in rule.article.publisher})
    places: dict[str, set[str]] = {}
    for region in ruleset.regions.values():
        for code in (*region.countries, *region.subdivisions):
            places.setdefault(code, set()).add(region.id)
    languages = sorted({lang for notice in ruleset.notices.values() for lang in notice.texts})
    return {
        "publishers": [(p, p) for p in publishers],
        "countries": [(c, ", ".join(sorted(r))) for c, r in sorted(places.items()) if "-" not in c],
        "subdivisions": [(c, ", ".join(sorted(r))) for c, r in sorted(places.items()) if "-" in c],
        "languages": [(lang, lang) for lang in languages],
    }
