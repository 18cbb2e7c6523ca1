"""Audit records keep bounded fields: a huge request writes a small record that still replays the same."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from flask import Flask

from service.audit.bounds import ID_MAX, MARK, TAG_MAX, TAGS_MAX, URL_MAX
from service.audit.files import log_files
from service.audit.reader import records
from service.cli import main
from service.config import Settings
from service.model import MAX_TAG_LENGTH, MAX_TAGS
from service.web import create_app
from service.web.runtime import runtime
from tests.conftest import RULES

NAMED = (
    "z" * 100
)  # a long tag (at the contract's cap) that a rule names: it decides, so the record keeps it whole


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """The bundled rules, with the RFE/RL rule not applying to articles tagged NAMED."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    policy = rules / "policies" / "rferl.yaml"
    text = policy.read_text().replace(
        "      publisher: [rferl]\n", f"      publisher: [rferl]\n      tags: {{none: [{NAMED}]}}\n"
    )
    policy.write_text(text)
    app = create_app(settings.model_copy(update={"rules_dir": rules}))
    yield app
    runtime(app).audit.stopped()


def decisions(directory: Path) -> list[dict[str, Any]]:
    return [r for r in records([directory]) if r["kind"] == "decision"]


def huge_article(n: int = 0) -> dict[str, Any]:
    return {
        "publisher": "rferl",
        "id": f"{n:03d}-" + "i" * 496,
        "url": "https://www.rferl.org/a/" + "u" * 1970,
        # as many and as long tags as the contract takes (MAX_TAGS, MAX_TAG_LENGTH)
        "tags": [f"{n:03d}-tag-{i:03d}-" + "t" * (MAX_TAG_LENGTH - 12) for i in range(MAX_TAGS - 1)]
        + [NAMED],
    }


def test_a_huge_request_writes_a_bounded_record_that_replays_the_same(app: Flask) -> None:
    client = app.test_client()
    article = huge_article()
    body = {"article": article, "reader": {"country": "RU"}}
    answer = client.post("/v1/decisions", json=body).get_json()
    assert answer["notices"] == []  # NAMED keeps the rule off
    directory = runtime(app).settings.audit_dir
    (record,) = decisions(directory)
    line = next(line for line in log_files([directory])[0].read_bytes().splitlines() if b'"decision"' in line)
    assert len(line) < 4096 < len(orjson.dumps(body)) * 0.6
    kept = record["article"]
    assert kept["id"] == article["id"][:ID_MAX] + MARK and kept["url"] == article["url"][:URL_MAX] + MARK
    assert NAMED in kept["tags"] and len(kept["tags"]) == TAGS_MAX + 1
    assert all(t == NAMED or (len(t) == TAG_MAX + 1 and t.endswith(MARK)) for t in kept["tags"])
    assert record["cut"] == {
        "article.id": {"chars": 500 - ID_MAX},
        "article.url": {"chars": len(article["url"]) - URL_MAX},
        "article.tags": {"items": MAX_TAGS - 1 - TAGS_MAX, "chars": TAGS_MAX * (MAX_TAG_LENGTH - TAG_MAX)},
    }
    result = CliRunner().invoke(main, ["audit", "replay", answer["decision_id"], "-d", str(directory)])
    assert (result.exit_code, result.output.split()) == (0, [answer["decision_id"], "same"])


def test_a_large_batch_writes_a_fraction_of_its_size(app: Flask) -> None:
    client = app.test_client()
    body = orjson.dumps({"articles": [huge_article(n) for n in range(100)], "reader": {"country": "RU"}})
    directory = runtime(app).settings.audit_dir
    before = sum(p.stat().st_size for p in log_files([directory]))
    response = client.post("/v1/decisions/batch", data=body, content_type="application/json")
    assert response.status_code == 200 and len(body) > 700_000
    written = sum(p.stat().st_size for p in log_files([directory])) - before
    assert written < len(body) / 2, (written, len(body))  # before: about the size of the request


def test_an_ordinary_request_is_recorded_whole(app: Flask) -> None:
    client = app.test_client()
    article = {"publisher": "rferl", "id": "33012345", "url": "https://www.rferl.org/a/33012345.html",
               "tags": ["russia", "b" * TAG_MAX] + [f"t{i}" for i in range(TAGS_MAX - 2)]}  # fmt: skip
    client.post("/v1/decisions", json={"article": article, "reader": {"country": "RU"}})
    (record,) = decisions(runtime(app).settings.audit_dir)
    assert "cut" not in record and record["article"]["tags"] == sorted(article["tags"])
    assert (record["article"]["id"], record["article"]["url"]) == (article["id"], article["url"])
