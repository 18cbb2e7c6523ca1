"""Checkpoints: a cut, a missing, renamed or re-adopted file is always seen; key hygiene; the witness."""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import shutil
import stat
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from service.audit.chain import Chain
from service.audit.checkpoint import CHECKPOINTS, WITNESSED, CheckpointLog, log_names, read_checkpoints
from service.audit.files import log_files
from service.audit.reader import file_records
from service.audit.verify import verify
from service.audit.witness import Witness
from service.audit.writer import AuditWriter
from service.cli import main
from service.config import Settings, SettingsError, load_settings
from tests.audit_support import lines, rewrite, ticking, write_log

KEY = b"k" * 32
KEYS = [pytest.param(None, id="no key"), pytest.param(KEY, id="HMAC key")]


def _problems(directory: Path, key: bytes | None = None, **options: object) -> dict[str, tuple[str, str]]:
    report = verify([directory], key, **options)  # type: ignore[arg-type]
    return {c.path.name: (c.problem.kind, c.problem.detail) for c in report.files if c.problem is not None}


def _restart(directory: Path, key: bytes | None) -> AuditWriter:
    """A new worker of the same node starts, writes its events and stops."""
    writer = AuditWriter(directory, node="n1", chain=Chain(key), clock=ticking())
    writer.open()
    writer.write("started", {"pid": writer.pid})
    writer.write("stopped", {"pid": writer.pid, "reason": "exit"})
    writer.close()
    return writer


@pytest.mark.parametrize("key", KEYS)
def test_a_cut_tail_is_not_hidden_by_a_restart(tmp_path: Path, key: bytes | None) -> None:
    """The reproduction: cut the last records of a stopped writer's file, start and stop again."""
    (path,) = write_log(tmp_path, key=key)  # seq 0..9, the last one `stopped`
    rewrite(path, lines(path)[:7])
    writer = _restart(tmp_path, key)
    head = next(file_records(writer.path))  # type: ignore[arg-type]
    assert head["kind"] == "adoption_refused" and head["refused"] == path.name
    assert head["missing"] == [7, 9] and head["checkpoint"]["seq"] == 9
    assert "follows" not in head and head["seq"] == 0  # a new chain, not a continuation
    problems = _problems(tmp_path, key)
    assert list(problems) == [path.name]
    kind, detail = problems[path.name]
    assert kind == "truncated" and "seq 7..9 missing" in detail


def test_the_cli_names_the_cut_file_and_its_missing_seqs(tmp_path: Path) -> None:
    (path,) = write_log(tmp_path)
    rewrite(path, lines(path)[:5])
    _restart(tmp_path, None)
    result = CliRunner().invoke(main, ["audit", "verify", str(tmp_path)])
    assert result.exit_code == 1
    assert f"FAIL  {path}: seq 5 (line 6): truncated: shorter than its checkpoint" in result.output
    assert "seq 5..9 missing" in result.output


def test_a_crashed_writer_matching_its_checkpoint_is_adopted(tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path, node="n1", chain=Chain(), clock=ticking())
    writer.open()
    for i in range(3):
        writer.write("decision", {"i": i})
    crashed = writer.path
    os.close(writer._fd)  # kill -9: no stopped event, no closing checkpoint
    writer._closing.set()
    _restart(tmp_path, None)
    survivor = log_files([tmp_path])[-1]
    head = next(file_records(survivor))
    assert head["kind"] == "recovered" and head["follows"] == crashed.name  # type: ignore[union-attr]
    assert verify([tmp_path]).ok


def test_the_files_of_a_writer_that_never_rotated_cannot_go_unseen(tmp_path: Path) -> None:
    write_log(tmp_path)
    other = AuditWriter(tmp_path, node="n2", chain=Chain(), clock=ticking())
    other.open()
    for i in range(4):
        other.write("decision", {"i": i})
    other.close()
    assert verify([tmp_path]).ok
    gone = other.path
    assert gone is not None
    gone.unlink()
    problems = _problems(tmp_path)
    assert list(problems) == [gone.name]
    kind, detail = problems[gone.name]
    assert kind == "missing" and "seq 0..3 missing" in detail and "node n2" in detail


def test_a_renamed_file_is_named(tmp_path: Path) -> None:
    (path,) = write_log(tmp_path)
    moved = path.with_name(path.name.replace("20250601", "20240101"))
    path.rename(moved)
    problems = _problems(tmp_path)
    assert problems[moved.name][0] == "renamed" and path.name in problems[moved.name][1]
    assert problems[path.name][0] == "missing" and f"renamed to {moved.name}" in problems[path.name][1]


def test_a_missing_archived_ruleset_is_named(settings: Settings) -> None:
    from service.web import create_app
    from service.web.runtime import runtime

    app = create_app(settings.model_copy(update={"audit_node": "t"}))
    app.test_client().post(
        "/v1/decisions", json={"article": {"publisher": "rferl"}, "reader": {"country": "RU"}}
    )
    runtime(app).audit.stopped()
    assert verify([settings.audit_dir]).ok
    (archived,) = (settings.audit_dir / "rulesets").glob("*.json")
    archived.unlink()
    report = verify([settings.audit_dir])
    assert not report.ok
    (bad,) = [r for r in report.rulesets if not r.ok]
    assert bad.path.name == archived.name and bad.detail.startswith("missing: named by records in audit-")


def test_a_lock_on_a_cut_file_does_not_hide_the_cut(tmp_path: Path) -> None:
    (path,) = write_log(tmp_path)
    rewrite(path, lines(path)[:6])
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # anyone who can read the file can take this lock
        assert _problems(tmp_path)[path.name][0] == "truncated"
    finally:
        os.close(fd)


def test_a_copy_of_a_live_log_is_intact_and_open(tmp_path: Path) -> None:
    live = AuditWriter(tmp_path / "live", node="n1", chain=Chain())
    live.open()
    for i in range(3):
        live.write("decision", {"i": i})
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "live", copy)
    try:
        report = verify([copy])
        assert report.ok, [c.problem for c in report.files]
        assert report.files[0].notes == ["open: being written"]
        result = CliRunner().invoke(main, ["audit", "verify", str(copy)])
        assert result.exit_code == 0 and "intact (open: being written: 1 files)" in result.output
        later = verify([copy], now=_newest_checkpoint(copy) + timedelta(hours=1))
        assert not later.ok  # an hour on, with no fresh checkpoint, the writer is gone
        assert verify([copy], now=_newest_checkpoint(copy) + timedelta(seconds=1)).ok
        as_of = (_newest_checkpoint(copy) + timedelta(hours=1)).isoformat()
        stale = CliRunner().invoke(main, ["audit", "verify", str(copy), "--as-of", as_of])
        assert stale.exit_code == 1 and "its last checkpoint" in stale.output and "is stale" in stale.output
    finally:
        live.close()


def _newest_checkpoint(directory: Path) -> datetime:
    newest = max(c.ts for c in read_checkpoints(directory / CHECKPOINTS))
    return datetime.fromisoformat(newest.replace("Z", "+00:00"))


def test_deleting_the_checkpoint_log_is_seen(tmp_path: Path) -> None:
    (path,) = write_log(tmp_path)
    shutil.rmtree(tmp_path / CHECKPOINTS)
    kind, detail = _problems(tmp_path)[path.name]
    assert kind == "no checkpoint" and "checkpoint log is missing or was cut" in detail


def test_a_cut_in_the_checkpoint_log_itself_is_seen(tmp_path: Path) -> None:
    write_log(tmp_path, count=60, max_bytes=4096)  # rotations: many checkpoints
    (log,) = log_names(tmp_path / CHECKPOINTS, CHECKPOINTS)
    ls = lines(log)
    assert len(ls) > 4
    rewrite(log, ls[:1] + ls[2:])
    report = verify([tmp_path])
    assert [c.problem.kind for c in report.checkpoints if c.problem] == ["deleted"]


def test_verify_without_the_key_says_key_needed(tmp_path: Path) -> None:
    write_log(tmp_path, key=KEY)
    result = CliRunner().invoke(main, ["audit", "verify", str(tmp_path)], env={"HERALD_AUDIT_KEY": None})
    assert result.exit_code == 1
    assert "KEY NEEDED" in result.output and "give --key or set HERALD_AUDIT_KEY" in result.output
    assert "0 records" not in result.output
    assert CliRunner().invoke(main, ["audit", "verify", str(tmp_path), "--key", KEY.decode()]).exit_code == 0


def test_audit_files_are_0640_in_0750_directories(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_log(tmp_path / "audit")
        from service.audit.archive import Archive
        from service.loader import load_ruleset
        from tests.conftest import RULES

        archived = Archive(tmp_path / "audit").store(load_ruleset(RULES))
    finally:
        os.umask(old)
    directories = [tmp_path / "audit", tmp_path / "audit" / CHECKPOINTS, archived.parent]
    files = [
        *log_files([tmp_path / "audit"]),
        *log_names(tmp_path / "audit" / CHECKPOINTS, CHECKPOINTS),
        archived,
    ]
    assert {oct(stat.S_IMODE(d.stat().st_mode)) for d in directories} == {"0o750"}
    assert {oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {"0o640"}


@pytest.mark.parametrize("key", ["short", "x" * 31])
def test_a_short_audit_key_is_refused(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("HERALD_AUDIT_KEY", key)
    with pytest.raises(SettingsError, match="HERALD_AUDIT_KEY: too short: give at least 32 bytes"):
        load_settings()


def test_the_key_id_is_an_hmac_of_a_label_and_old_ids_still_verify(tmp_path: Path) -> None:
    (path,) = write_log(tmp_path / "new", key=KEY)
    record = orjson.loads(lines(path)[0])
    assert record["key"] == hmac.new(KEY, b"herald-audit-key-id/v2", hashlib.sha256).hexdigest()[:16]
    assert record["key"] != hashlib.sha256(b"herald-audit-key:" + KEY).hexdigest()[:16]
    # A log written before (plain-hash key ids) still verifies with its key.
    old = Chain(KEY)
    old.fingerprint = hashlib.sha256(b"herald-audit-key:" + KEY).hexdigest()[:16]
    writer = AuditWriter(tmp_path / "old", node="n1", chain=old, clock=ticking())
    writer.open()
    writer.write("decision", {"i": 0})
    writer.close()
    assert orjson.loads(lines(writer.path)[0])["key"] == old.fingerprint  # type: ignore[arg-type]
    assert verify([tmp_path / "old"], KEY).ok


def test_keys_add_refuses_an_existing_name_unless_replace(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    runner = CliRunner()
    first = runner.invoke(main, ["keys", "add", "counsel", "--role", "audit", "--file", str(keys)])
    assert first.exit_code == 0
    again = runner.invoke(main, ["keys", "add", "counsel", "--role", "admin", "--file", str(keys)])
    assert again.exit_code == 1 and "already in" in again.output and "--replace" in again.output
    assert runner.invoke(main, ["keys", "list", "--file", str(keys)]).output == "counsel\taudit\n"
    replaced = runner.invoke(
        main, ["keys", "add", "counsel", "--role", "admin", "--replace", "--file", str(keys)]
    )
    assert replaced.exit_code == 0 and replaced.output.split()[0] != first.output.split()[0]
    assert runner.invoke(main, ["keys", "list", "--file", str(keys)]).output == "counsel\tadmin\n"


def test_checkpoints_come_every_interval_and_at_close(tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path, node="n1", chain=Chain(), checkpoint_every=0.05)
    writer.open()
    writer.write("decision", {"i": 0})
    time.sleep(0.3)
    writer.write("decision", {"i": 1})
    writer.close()
    found = list(read_checkpoints(tmp_path / CHECKPOINTS))
    assert len(found) >= 4 and found[0].state == "open" and found[-1].state == "closed"
    assert found[-1].head.seq == 1 and found[-1].head.size == writer.path.stat().st_size  # type: ignore[union-attr]


def test_a_torn_checkpoint_line_is_described_and_the_chain_goes_on(tmp_path: Path) -> None:
    """kill -9 (or a power cut) in the middle of appending a checkpoint."""
    log = CheckpointLog(tmp_path, Chain(), node="n1")
    clock = ticking()
    log.append("checkpoint", {"x": 1}, clock())
    (path,) = log_names(tmp_path, CHECKPOINTS)
    with path.open("ab") as f:
        f.write(b'{"head":{"fi')
    log.append("checkpoint", {"x": 2}, clock())
    second = orjson.loads(lines(path)[-1])
    assert second["torn"]["bytes"] == len(b'{"head":{"fi') and second["seq"] == 1
    assert len(lines(path)) == 2


def test_the_witness_endpoint_keeps_checkpoints_in_its_own_chain(settings: Settings, tmp_path: Path) -> None:
    from service.web import create_app

    node = tmp_path / "node"
    write_log(node, key=KEY)
    sent = [orjson.loads(line) for line in lines(log_names(node / CHECKPOINTS, CHECKPOINTS)[0])]
    keyed = {"audit_http": True, "audit_key": SecretStr(KEY.decode())}
    witness = create_app(settings.model_copy(update=keyed))
    client = witness.test_client()
    answer = client.post("/v1/audit/checkpoints", json=sent)
    assert answer.status_code == 202 and answer.get_json() == {"stored": len(sent)}
    forged = [dict(sent[0], head=dict(sent[0]["head"], seq=99))]
    assert client.post("/v1/audit/checkpoints", json=forged).status_code == 422
    assert client.post("/v1/audit/checkpoints", data="[]", content_type="text/plain").status_code == 415
    assert client.post("/v1/audit/checkpoints", json=[{"kind": "checkpoint"}]).status_code == 422
    huge = [dict(sent[0], head=dict(sent[0]["head"], first=2**70))]  # found by schemathesis: was a 500
    assert client.post("/v1/audit/checkpoints", json=huge).status_code == 422
    surrogate = orjson.dumps([dict(sent[0], node="NODE")]).replace(b"NODE", b"\\ud800")
    lone = client.post("/v1/audit/checkpoints", data=surrogate, content_type="application/json")
    assert lone.status_code == 422, lone.get_json()
    kept = settings.audit_dir / CHECKPOINTS
    assert verify([settings.audit_dir], KEY).ok  # the witness's own log and chain
    # Root on the node cuts a file and its own checkpoints consistently: the witness still knows.
    (path,) = log_files([node])
    rewrite(path, lines(path)[:4])
    shutil.rmtree(node / CHECKPOINTS)
    witnessed = _problems(node, KEY, witnesses=[kept])
    assert witnessed[path.name][0] == "truncated" and "seq 4..9 missing" in witnessed[path.name][1]


def test_a_witness_that_is_away_never_slows_a_record(tmp_path: Path) -> None:
    from tests.live import free_port

    witness = Witness(f"http://127.0.0.1:{free_port()}/v1/audit/checkpoints")
    writer = AuditWriter(tmp_path, node="n1", chain=Chain(), checkpoint_every=0.05, witness=witness)
    writer.open()
    started = time.perf_counter()
    for i in range(200):
        writer.write("decision", {"i": i})
    took = time.perf_counter() - started
    time.sleep(0.3)
    writer.close()
    assert took < 1.0
    assert witness.counts["failed"] >= 1 and witness.counts["sent"] == 0


def test_a_witness_counts_what_it_drops(tmp_path: Path) -> None:
    from service.audit import witness as module

    w = Witness("http://127.0.0.1:9/none")
    w._thread = object()  # type: ignore[assignment]  # a sender that never takes anything
    for _ in range(module.QUEUE + 5):
        w.submit({"kind": "checkpoint"})
    assert w.counts["dropped"] == 5


def test_witnessed_files_are_their_own_chain(tmp_path: Path) -> None:
    log = CheckpointLog(tmp_path, Chain(), node="w", prefix=WITNESSED)
    log.append("witnessed", {"checkpoint": {}}, ticking()())
    assert log_names(tmp_path, WITNESSED) and not log_names(tmp_path, CHECKPOINTS)


def test_a_checkpoint_log_kept_elsewhere_is_read_from_the_setting(tmp_path: Path) -> None:
    elsewhere = tmp_path / "other-mount"
    write_log(tmp_path / "audit", checkpoint_dir=elsewhere)
    runner = CliRunner()
    without = runner.invoke(main, ["audit", "verify", str(tmp_path / "audit")])
    assert without.exit_code == 1 and "no checkpoint" in without.output
    env = {"HERALD_AUDIT_CHECKPOINT_DIR": str(elsewhere)}
    assert runner.invoke(main, ["audit", "verify", str(tmp_path / "audit")], env=env).exit_code == 0
    given = ["audit", "verify", str(tmp_path / "audit"), "--checkpoints", str(elsewhere)]
    assert runner.invoke(main, given).exit_code == 0
