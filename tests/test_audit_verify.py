"""`verify`: every kind of tampering is found, with the file and the first bad record named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from service.audit.verify import verify
from tests.audit_support import lines, rewrite, write_log

Tamper = Callable[[list[bytes]], list[bytes]]


def _edit_byte(ls: list[bytes]) -> list[bytes]:
    ls[4] = ls[4].replace(b'"i":3', b'"i":7')
    return ls


def _reformat(ls: list[bytes]) -> list[bytes]:
    ls[4] = orjson.dumps(orjson.loads(ls[4]), option=orjson.OPT_INDENT_2).replace(b"\n", b" ") + b"\n"
    return ls


def _forge(ls: list[bytes]) -> list[bytes]:
    fake = orjson.loads(ls[4]) | {"decision_id": "forged"}
    return ls[:5] + [orjson.dumps(fake, option=orjson.OPT_SORT_KEYS) + b"\n"] + ls[5:]


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"),
    [
        pytest.param(_edit_byte, "modified", 4, id="one byte edited"),
        pytest.param(_reformat, "modified", 4, id="same record, not canonical"),
        pytest.param(lambda ls: ls[:4] + ls[5:], "deleted", 4, id="record deleted"),
        pytest.param(lambda ls: ls[1:], "deleted", 0, id="first record deleted"),
        pytest.param(lambda ls: ls[:4] + [ls[5], ls[4]] + ls[6:], "reordered", 5, id="two records swapped"),
        pytest.param(_forge, "inserted", 5, id="forged record inserted"),
        pytest.param(lambda ls: ls[:5] + [ls[4]] + ls[5:], "inserted", 4, id="record copied"),
        pytest.param(lambda ls: ls[:7], "truncated", 7, id="last records removed"),
        # The stopped event was checkpointed whole: a part of it left is a cut below the checkpoint.
        pytest.param(lambda ls: ls[:-1] + [ls[-1][:40]], "truncated", 9, id="last line torn"),
    ],
)
def test_tampering_is_found_at_the_first_bad_record(
    tmp_path: Path, tamper: Tamper, kind: str, seq: int
) -> None:
    (path,) = write_log(tmp_path)
    assert verify([tmp_path]).ok
    rewrite(path, tamper(lines(path)))
    report = verify([tmp_path])
    assert not report.ok
    (check,) = report.files
    assert check.path == path and check.problem is not None
    assert (check.problem.kind, check.problem.seq) == (kind, seq), check.problem


@pytest.mark.parametrize(
    ("written", "given", "kind", "detail"),
    [
        (b"k1" * 16, b"k2" * 16, "wrong key", "keyed with key id"),
        (b"k1" * 16, None, "key needed", "give --key or HERALD_AUDIT_KEY"),
        (None, b"k1" * 16, "wrong key", "not keyed"),
    ],
)
def test_a_wrong_key_is_named_as_such(
    tmp_path: Path, written: bytes | None, given: bytes | None, kind: str, detail: str
) -> None:
    write_log(tmp_path, key=written)
    assert verify([tmp_path], written).ok
    (check,) = verify([tmp_path], given).files
    assert check.problem is not None and check.problem.kind == kind and check.problem.seq == 0
    assert detail in check.problem.detail


def test_without_the_key_a_rewritten_chain_is_found(tmp_path: Path) -> None:
    """With a key, editing a record and recomputing its hash with plain SHA-256 is no use."""
    from service.audit.chain import Chain

    (path,) = write_log(tmp_path, key=b"secret")
    ls = lines(path)
    record = orjson.loads(ls[3])
    record["i"] = 99
    del record["hash"]
    ls[3] = Chain(b"guess").seal(record)
    rewrite(path, ls)
    (check,) = verify([tmp_path], b"secret").files
    assert check.problem is not None and check.problem.seq == 3


def test_rotated_files_link_and_a_missing_file_is_a_deletion(tmp_path: Path) -> None:
    files = write_log(tmp_path, count=60, max_bytes=4096)
    assert len(files) >= 3
    report = verify([tmp_path])
    assert report.ok, [c.problem for c in report.files]
    assert sum(c.records for c in report.files) == 62
    second_first_seq = orjson.loads(lines(files[2])[0])["seq"]
    files[1].unlink()
    report = verify([tmp_path])
    found = {c.path: c.problem for c in report.files if c.problem is not None}
    assert set(found) == {files[0], files[1], files[2]}
    assert found[files[1]].kind == "missing"  # named by its checkpoints
    assert (found[files[2]].kind, found[files[2]].seq) == ("deleted", second_first_seq)
    assert files[1].name in found[files[2]].detail
    assert (found[files[0]].kind, found[files[0]].seq) == (
        "deleted",
        orjson.loads(lines(files[0])[-1])["seq"] + 1,
    )


def test_a_rotated_file_cut_short_is_truncated(tmp_path: Path) -> None:
    files = write_log(tmp_path, count=60, max_bytes=4096)
    ls = lines(files[0])
    last_seq = orjson.loads(ls[-1])["seq"]
    rewrite(files[0], ls[:-2])
    bad = [c for c in verify([tmp_path]).files if not c.ok]
    assert [c.path for c in bad] == [files[0]]
    assert bad[0].problem is not None and (bad[0].problem.kind, bad[0].problem.seq) == (
        "truncated",
        last_seq - 1,
    )


def test_archived_rulesets_are_checked_against_their_hash(tmp_path: Path) -> None:
    from service.audit.archive import Archive
    from service.loader import load_ruleset
    from tests.conftest import RULES

    path = Archive(tmp_path).store(load_ruleset(RULES))
    assert verify([tmp_path]).ok
    path.write_bytes(path.read_bytes().replace(b"russia", b"russie", 1))
    report = verify([tmp_path])
    assert not report.ok and [r.ok for r in report.rulesets] == [False]
