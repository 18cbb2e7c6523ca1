"""Absolute paths of the server's disk, hidden from callers who are not its operators."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from service.config import Settings

# An absolute path (not a URL's, which follows `:` or `/`): kept to its last component.
_ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:[^\s/:'\"]+/)+([^\s/:'\"]+)")


def hide_paths(value: Any, settings: Settings) -> Any:
    """`value` (texts, lists and dicts of them) with the configured directories and files named by
    their setting (`$HERALD_RULES_DIR/policies/x.yaml`) and any other absolute path cut to its name."""
    roots = _roots(settings)
    if isinstance(value, str):
        for root, name in roots:
            value = value.replace(root, name)
        return _ABSOLUTE.sub(r"\1", value)
    if isinstance(value, dict):
        return {k: hide_paths(v, settings) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [hide_paths(v, settings) for v in value]
    return value


def _roots(settings: Settings) -> list[tuple[str, str]]:
    named: list[tuple[Path | None, str]] = [
        (settings.rules_dir, "$HERALD_RULES_DIR"),
        (settings.audit_dir, "$HERALD_AUDIT_DIR"),
        (settings.geoip_db, "$HERALD_GEOIP_DB"),
        (settings.anonymous_ip_db, "$HERALD_ANONYMOUS_IP_DB"),
    ]
    roots = {}
    for path, name in named:
        if path is not None:
            for form in (str(path), str(path.resolve())):
                if form.startswith("/"):
                    roots[form] = name
    return sorted(roots.items(), key=lambda item: -len(item[0]))  # the longest first
