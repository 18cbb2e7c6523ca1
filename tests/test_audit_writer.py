"""The writer: what a record holds, addresses reduced, rotation, crash recovery, events, settings."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from flask import Flask

from service.audit.address import reduce_address
from service.audit.chain import Chain
from service.audit.files import log_files
from service.audit.reader import file_records, records
from service.audit.verify import verify
from service.audit.writer import AuditWriter
from service.config import Settings, SettingsError, load_settings
from service.problems import RulesetInvalid
from service.web import create_app
from service.web.runtime import runtime
from tests.audit_support import lines, ticking, write_log
from tests.conftest import RULES


def _app(settings: Settings, **changes: object) -> Flask:
    return create_app(settings.model_copy(update={"audit_node": "test", **changes}))


def _stop(app: Flask) -> None:
    runtime(app).audit.stopped()


def test_every_answered_decision_is_a_record(settings: Settings) -> None:
    app = _app(settings)
    client = app.test_client()
    one = client.post(
        "/v1/decisions",
        json={
            "article": {"publisher": "rferl", "id": "a1", "tags": ["russia"]},
            "reader": {"ip": "77.88.8.8"},
        },
        headers={"Accept-Language": "ru"},
    ).get_json()
    batch = client.post(
        "/v1/decisions/batch",
        json={
            "reader": {"country": "UA", "subdivision": "UA-43"},
            "articles": [{"publisher": "rferl"}, {"publisher": "x"}],
        },
    ).get_json()
    form = client.get(
        "/v1/decisions?publisher=rferl", environ_base={"REMOTE_ADDR": "2a02:6b8::feed:0ff"}
    ).get_json()
    _stop(app)
    logged = [r for r in records([settings.audit_dir]) if r["kind"] == "decision"]
    ids = [one["decision_id"], *(d["decision_id"] for d in batch["decisions"]), form["decision_id"]]
    assert [r["decision_id"] for r in logged] == ids
    first = logged[0]
    assert first["article"] == {
        "id": "a1",
        "url": None,
        "publisher": "rferl",
        "section": None,
        "tags": ["russia"],
        "language": None,
        "type": None,
    }
    assert first["reader"] == {
        "country": "RU",
        "subdivision": None,
        "source": "geoip",
        "anonymized": False,
        "languages": ["ru"],
        "network": "77.88.8.0/24",
        "said": [
            {"source": "geoip", "country": "RU", "subdivision": None, "data": "GeoLite2-City 2019-12-24"}
        ],
    }
    assert first["rules"] == ["rferl-undesirable-russia"]
    assert first["notices"] == [
        {"id": "rferl-undesirable", "language": "ru", "rules": ["rferl-undesirable-russia"]}
    ]
    assert first["effects"] == ["discourage_sharing"] and first["ruleset"] == one["ruleset"]
    assert first["matches"] == [
        {"rule": "rferl-undesirable-russia", "reason": "region", "region": "russia", "code": "RU"}
    ]
    assert first["node"] == "test"
    assert datetime.fromisoformat(first["at"]) == datetime.fromisoformat(one["at"])
    assert set(first) >= {"seq", "ts", "kind", "prev", "hash", "v"}
    assert logged[1]["reader"]["network"] is None  # located by explicit codes, not by address
    assert logged[3]["reader"]["network"] == "2a02:6b8::/48"
    kinds = [r["kind"] for r in records([settings.audit_dir])]
    assert kinds[:2] == ["started", "ruleset_loaded"] and kinds[-1] == "stopped"
    assert verify([settings.audit_dir]).ok


@pytest.mark.parametrize(
    ("address", "mode", "expected"),
    [
        ("77.88.8.8", "network", "77.88.8.0/24"),
        ("2a02:6b8::feed:0ff", "network", "2a02:6b8::/48"),
        ("77.88.8.8", "full", "77.88.8.8"),
        ("77.88.8.8", "none", None),
        (None, "network", None),
        ("77.88.8.8", "hash", "hmac-sha256:"),
    ],
)
def test_addresses_are_reduced(address: str | None, mode: str, expected: str | None) -> None:
    reduced = reduce_address(address, mode, b"k")  # type: ignore[arg-type]
    assert reduced == expected or (
        expected is not None and reduced is not None and reduced.startswith(expected)
    )


def test_a_hashed_address_hides_the_address_but_stays_comparable() -> None:
    a, b = reduce_address("77.88.8.8", "hash", b"k"), reduce_address("77.88.8.8", "hash", b"k")
    assert a == b and a is not None and "77.88" not in a
    assert reduce_address("77.88.8.8", "hash", b"other") != a


def test_a_torn_last_line_is_recovered_and_reported(tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path, node="n1", chain=Chain(), clock=ticking())
    writer.open()
    for i in range(3):
        writer.write("decision", {"i": i})
    crashed = writer.path
    assert crashed is not None
    with crashed.open("ab") as f:  # what a crash in the middle of a write leaves
        f.write(b'{"article":{"id":"half')
    os.close(writer._fd)  # the process is gone: its lock goes with it
    before = crashed.read_bytes()
    report = verify([tmp_path])
    assert report.files[0].problem is not None and report.files[0].problem.kind == "torn"

    survivor = AuditWriter(tmp_path, node="n1", chain=Chain(), clock=ticking())
    survivor.open()
    survivor.write("stopped", {"reason": "exit"})
    survivor.close()
    assert crashed.read_bytes() == before  # the damage is left where it is, for all to see
    head = next(file_records(log_files([tmp_path])[-1]))
    assert head["kind"] == "recovered" and head["follows"] == crashed.name and head["seq"] == 3
    assert head["torn"]["bytes"] == len(b'{"article":{"id":"half') and head["last_seq"] == 2
    report = verify([tmp_path])
    assert report.ok, [c.problem for c in report.files]
    assert "torn tail" in report.files[0].notes[0]


def test_a_live_writer_is_not_adopted(tmp_path: Path) -> None:
    live = AuditWriter(tmp_path, node="n1", chain=Chain())
    live.open()
    live.write("started", {})
    other = AuditWriter(tmp_path, node="n1", chain=Chain())
    other.open()
    other.write("started", {})
    assert next(file_records(other.path)).get("follows") is None  # type: ignore[arg-type]
    assert "open: being written" in verify([tmp_path]).files[0].notes
    live.close()
    other.close()


def test_a_failed_write_continues_in_a_new_file_that_says_so(tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path, node="n1", chain=Chain())
    writer.open()
    writer.write("started", {})
    os.close(writer._fd)  # the disk goes away under the writer
    with pytest.raises(OSError):
        writer.write("decision", {"i": 1})
    writer.write("decision", {"i": 2})
    writer.write("stopped", {})
    writer.close()
    first, second = log_files([tmp_path])
    assert [r["kind"] for r in file_records(second)] == ["recovered", "decision", "stopped"]
    assert verify([tmp_path]).ok


def test_files_rotate_daily_and_keep_the_chain(tmp_path: Path) -> None:
    files = write_log(tmp_path, count=10, clock=ticking(step=timedelta(hours=7)))  # type: ignore[arg-type]
    days = [f.name[6:14] for f in files]
    assert days == sorted(set(days)) and len(days) == 4
    for f in files:
        assert {r["ts"][:10].replace("-", "") for r in file_records(f)} == {f.name[6:14]}
    assert verify([tmp_path]).ok


@pytest.mark.parametrize("fsync", [None, 0.0, 0.5])
def test_every_fsync_policy_writes_a_sound_log(tmp_path: Path, fsync: float | None) -> None:
    write_log(tmp_path, fsync=fsync)
    assert verify([tmp_path]).ok


def test_ruleset_loads_are_archived_with_their_changes(settings: Settings, tmp_path: Path) -> None:
    changed = tmp_path / "rules"
    shutil.copytree(RULES, changed)
    policy = changed / "policies" / "rferl.yaml"
    policy.write_text(policy.read_text().replace("2024-02-20", "2024-03-01"))
    _stop(_app(settings))
    _stop(_app(settings, rules_dir=changed))
    loaded = [r for r in records([settings.audit_dir]) if r["kind"] == "ruleset_loaded"]
    assert [r["previous"] for r in loaded] == [None, loaded[0]["ruleset"]]
    assert loaded[1]["changes"]["rules"] == {
        "added": [],
        "removed": [],
        "changed": ["rferl-undesirable-russia"],
    }
    assert loaded[1]["counts"]["rules"] == 1 and loaded[1]["files"]
    archived = sorted(p.stem for p in (settings.audit_dir / "rulesets").glob("*.json"))
    assert archived == sorted(r["ruleset"].removeprefix("sha256:") for r in loaded)


def test_rejected_rules_are_an_event(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("rules:\n  - id: r\n    notice: n\n    reader: {regions: [rusia]}\n")
    with pytest.raises(RulesetInvalid):
        _app(settings, rules_dir=tmp_path)
    kinds = [(r["kind"], r.get("errors")) for r in records([settings.audit_dir])]
    assert [k for k, _ in kinds] == ["started", "ruleset_rejected", "stopped"]
    assert any("unknown region 'rusia'" in error for error in kinds[1][1])


def test_audit_off_writes_nothing(settings: Settings) -> None:
    app = _app(settings, audit="off")
    app.test_client().post(
        "/v1/decisions", json={"article": {"publisher": "rferl"}, "reader": {"country": "RU"}}
    )
    assert not settings.audit_dir.exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HERALD_AUDIT_FSYNC": "sometimes"},
            "HERALD_AUDIT_FSYNC: 'sometimes': give none, always or a number",
        ),
        ({"HERALD_AUDIT_ADDRESS": "hash"}, "HERALD_AUDIT_ADDRESS=hash needs HERALD_AUDIT_ADDRESS_KEY"),
        ({"HERALD_AUDIT": "no"}, "HERALD_AUDIT: Input should be 'on' or 'off'"),
    ],
)
def test_bad_audit_settings_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings()


def test_lines_are_canonical_json(tmp_path: Path) -> None:
    (path,) = write_log(tmp_path)
    for line in lines(path):
        assert orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS) + b"\n" == line


def test_a_batch_is_one_write_chained_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = AuditWriter(tmp_path, node="n1", chain=Chain())
    writer.open()
    writer.write("started", {})
    writes: list[int] = []
    real_write = os.write

    def counted(fd: int, data: bytes | memoryview) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr("service.audit.writer.os.write", counted)
    records = writer.write_many("decision", [{"i": i} for i in range(5)])
    assert len(writes) == 1
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert [r["prev"] for r in records[1:]] == [r["hash"] for r in records[:-1]]
    writer.close()
    assert [r.get("i") for r in file_records(writer.path) if r["kind"] == "decision"] == [0, 1, 2, 3, 4]  # type: ignore[arg-type]
    assert verify([tmp_path]).ok


def test_a_batch_that_cannot_be_written_leaves_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = AuditWriter(tmp_path, node="n1", chain=Chain())
    writer.open()
    writer.write("started", {})
    real_write = os.write
    calls = 0

    def disk_fills(fd: int, data: bytes | memoryview) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, bytes(data)[: len(data) // 2])  # a short write, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("service.audit.writer.os.write", disk_fills)
    with pytest.raises(OSError):
        writer.write_many("decision", [{"i": i} for i in range(3)])
    monkeypatch.setattr("service.audit.writer.os.write", real_write)
    writer.write("decision", {"i": "after"})
    writer.close()
    assert [r.get("i") for r in file_records(writer.path) if r["kind"] == "decision"] == ["after"]  # type: ignore[arg-type]
    assert verify([tmp_path]).ok
