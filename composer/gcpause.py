"""Pause the cyclic garbage collector around work that only allocates.

Loading a large file and planning a large project each build tens of
thousands of objects that all stay alive until the work is done, so every
collection the allocations trigger rescans a growing graph and frees
nothing (a full collection during a 1000-service reconcile costs ~35 ms).
Reference counting still frees everything as usual; only the cycle
detector waits until the block ends.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cycle collector for the block; restore its previous state after."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
