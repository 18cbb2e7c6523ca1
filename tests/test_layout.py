"""The module layout issue 12 asks for: no import cycle between the runtime, the reloader and the
metrics; the core imports nothing of the web."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parent.parent / "service"


def imports(module: str) -> set[str]:
    """Modules of `service` that `module` imports, at the top or inside functions (not for typing only)."""
    tree = ast.parse((SERVICE / (module.removeprefix("service.").replace(".", "/") + ".py")).read_text())
    typing_only = {
        id(node)
        for guard in ast.walk(tree)
        if isinstance(guard, ast.If) and "TYPE_CHECKING" in ast.unparse(guard.test)
        for node in ast.walk(guard)
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and id(node) not in typing_only:
            found.add(node.module)
    return {m for m in found if m.startswith("service")}


@pytest.mark.parametrize(
    ("module", "must_not_import"),
    [
        ("service.web.metrics", {"service.web.runtime", "service.web.reload"}),
        ("service.web.reload", {"service.web.runtime"}),
        ("service.engine", {"flask", "service.web", "service.web.runtime"}),
        ("service.index", {"service.engine", "service.web"}),
    ],
)
def test_no_import_cycle(module: str, must_not_import: set[str]) -> None:
    assert not imports(module) & must_not_import
