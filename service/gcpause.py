"""Pauses Python's cyclic garbage collector while a ruleset is loaded or compiled.

Loading 10,000 rules makes millions of objects and no garbage cycles; each collection the
allocations trigger walks every object alive, so building the ruleset cost several times its own
work in collections. They are deferred to the end, where one collection runs as usual."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No automatic collection inside; nested uses are fine (only the outermost re-enables)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
