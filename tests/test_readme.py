"""The README's commands, run as written, in order, as a newcomer would after `make run`.

Doctest-style, as Datasette tests its documentation: every shell block (```sh, and ``` blocks of
`$ command` transcripts) runs in a copy of the repository's rules with the real `.venv/bin/herald`,
against a real `herald serve` for the `curl` examples; a transcript's output, and a ```json block
marked as the answer of the block above it, must match what comes out. `…` stands for any text
(a whole line of it for any lines). A block that cannot run offline says so, with the reason, in
a comment the rendered README does not show, right above it:

    <!-- readme-test: skip: why -->             not run
    <!-- readme-test: answer -->                 (json) the output of the shell block above
    <!-- readme-test: file PATH -->              (yaml) written to PATH, as the editor does
    <!-- readme-test: run COMMAND -->            a step the prose describes (fixing a typo)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.live import free_port, request

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MARKER = re.compile(r"<!-- readme-test: (\w+)(?::? (.*?))? -->")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# curl as the README writes it, failing on an HTTP error status as a newcomer would notice one.
CURL = 'curl() { command curl --fail-with-body --silent --show-error "$@"; }\n'


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence
    lang: str
    text: str
    marker: str | None  # the readme-test marker right above, if any
    argument: str  # the marker's argument

    @property
    def shell(self) -> bool:
        return self.lang == "sh" or (self.lang in ("", "console") and self.text.startswith("$ "))


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text (indented ones included), with their markers."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        indent, lang = fence.groups()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        body = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end]) + "\n"
        above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.search(above)
        found.append(
            Block(
                i + 1,
                lang,
                body,
                marker.group(1) if marker else None,
                marker.group(2) or "" if marker else "",
            )
        )
        i = end + 1
    return found


def fits(expected: str, actual: str) -> bool:
    """`actual` is `expected` where `…` is any text and a line of just `…` any lines."""
    parts = []
    for line in expected.strip("\n").splitlines():
        if line.strip() == "…":
            parts.append(r"(?:.*\n)*?")
        else:
            parts.append(".*".join(re.escape(p) for p in line.rstrip().split("…")) + r"[ \t]*\n")
    return re.fullmatch("".join(parts), actual.strip("\n") + "\n") is not None


def same_json(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where `actual` differs from the README's `expected` (`…` in a string is any text, and a
    UUID stands for any UUID: decision ids are new each time)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        differences = [f"{where}/{k}: missing" for k in expected if k not in actual]
        differences += [f"{where}/{k}: not in the README" for k in actual if k not in expected]
        for key in expected.keys() & actual.keys():
            differences += same_json(expected[key], actual[key], f"{where}/{key}")
        return differences
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for n, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in same_json(e, a, f"{where}/{n}")
        ]
    if isinstance(expected, str) and isinstance(actual, str):
        if UUID.match(expected) and UUID.match(actual):
            return []
        pattern = ".*".join(re.escape(p) for p in expected.split("…"))
        return (
            [] if re.fullmatch(pattern, actual, re.DOTALL) else [f"{where}: {actual!r} is not {expected!r}"]
        )
    return [] if expected == actual else [f"{where}: {actual!r} is not {expected!r}"]


@dataclass
class Sandbox:
    """A newcomer's checkout after `make run`: the rules, a git history, `.venv`, a server."""

    root: Path
    port: int
    env: dict[str, str]
    last_output: str = ""

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        script = script.replace("localhost:8080", f"127.0.0.1:{self.port}")
        return subprocess.run(
            ["bash", "-eo", "pipefail", "-c", CURL + script],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "rules", root / "rules")
    shutil.copytree(REPO / "tests" / "rulefiles" / "diff", root / "tests" / "rulefiles" / "diff")
    (root / ".venv").symlink_to(Path(sys.prefix))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "GIT_"))}
    env |= {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@t", "HERALD_ACCESS_LOG": "0"}
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "rules", "tests")
    _git(root, "commit", "-q", "-m", "rules")
    _git(root, "commit", "-q", "--allow-empty", "-m", "nothing")
    port = free_port()
    log = (root / "serve.log").open("wb")
    # As `make run` does (herald serve on the embedded GeoIP data), with one worker for speed.
    server = subprocess.Popen(
        [str(root / ".venv" / "bin" / "herald"), "serve", "--port", str(port), "--workers", "1"],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):
            try:
                if request(f"http://127.0.0.1:{port}/readyz")[0] in (200, 503):
                    break
            except OSError:
                pass
            if server.poll() is not None:
                break
            time.sleep(0.1)
        else:
            pytest.fail("herald serve did not start:\n" + (root / "serve.log").read_text())
        yield Sandbox(root, port, env)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


BLOCKS = blocks(README.read_text(encoding="utf-8"))
CHECKED = [b for b in BLOCKS if b.shell or b.marker in ("answer", "file", "run")]


def test_every_shell_block_runs_or_says_why_not() -> None:
    for block in BLOCKS:
        if block.marker == "skip":
            assert block.shell and block.argument, (
                f"README.md:{block.line}: a skip says why, on a shell block"
            )
    assert sum(b.shell and b.marker != "skip" for b in BLOCKS) >= 10


@pytest.mark.parametrize("block", CHECKED, ids=[f"README.md:{b.line}" for b in CHECKED])
def test_readme_block(sandbox: Sandbox, block: Block) -> None:
    where = f"README.md:{block.line}"
    if block.marker == "skip":
        pytest.skip(f"{where}: {block.argument}")
    if block.marker == "run":
        done = sandbox.run(block.argument)
        assert done.returncode == 0, f"{where}: {block.argument}\n{done.stderr}"
    if block.marker == "file":
        path = sandbox.root / block.argument
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text, encoding="utf-8")
        return
    if block.marker == "answer":
        differences = same_json(json.loads(block.text), json.loads(sandbox.last_output))
        assert not differences, f"{where} drifted from what the server answers:\n" + "\n".join(differences)
        return
    if block.lang == "sh":
        done = sandbox.run(block.text)
        assert done.returncode == 0, f"{where} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        sandbox.last_output = done.stdout
        return
    command, _, expected = block.text.partition("\n")
    done = sandbox.run(command.removeprefix("$ "))
    output = done.stdout + done.stderr
    assert fits(expected, output), f"{where} drifted; `{command}` now prints:\n{output}"


@pytest.mark.parametrize(
    ("expected", "actual", "fit"),
    [
        ("a\nb\n", "a\nb\n", True),
        ("a…\n…\nz\n", "abc\nx\ny\nz\n", True),
        ("a\nb\n", "a\nc\n", False),
        ("17 passed\n", "16 passed\n", False),
    ],
)
def test_transcripts_match_with_ellipses(expected: str, actual: str, fit: bool) -> None:
    assert fits(expected, actual) is fit


def test_json_answers_match_with_ellipses_and_any_uuid() -> None:
    expected = {"id": "01a21ef7-7660-7144-a2de-d296f41b59de", "hash": "sha256:…", "n": [1]}
    assert (
        same_json(expected, {"id": "0193a1b2-0000-7000-8000-000000000000", "hash": "sha256:ab", "n": [1]})
        == []
    )
    assert set(same_json(expected, {"id": "x", "hash": "md5:ab", "n": [1], "new": 1})) == {
        "/new: not in the README",
        "/hash: 'md5:ab' is not 'sha256:…'",
        "/id: 'x' is not '01a21ef7-7660-7144-a2de-d296f41b59de'",
    }
