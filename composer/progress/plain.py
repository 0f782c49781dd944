"""``--progress plain``: one line per event, for logs and CI.

Lines look like Docker Compose's plain output (`` Container demo-web-1
Created``) so that log scrapers written for one work with the other; a dry
run prefixes every line with ``DRY-RUN MODE - ``. Each line is written and
flushed whole under a lock, so events from concurrent steps never interleave
mid-line.
"""

from __future__ import annotations

import threading
from typing import TextIO

from composer.events import Event
from composer.progress.words import detail, display_name, state_of, status_word
from composer.render_output import RED, YELLOW, paint

DRY_RUN_PREFIX = "DRY-RUN MODE - "


class PlainRenderer:
    """Writes ``<prefix> <Resource>  <Status>[: detail]`` lines to ``stream``."""

    def __init__(self, stream: TextIO, *, colour: bool = False, dry_run: bool = False) -> None:
        self._stream = stream
        self._colour = colour
        self._prefix = DRY_RUN_PREFIX if dry_run else ""
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        word = status_word(event)
        text = detail(event)
        status = f"{word}: {text}" if text else word
        state = state_of(event)
        if state == "error":
            status = paint(status, RED, self._colour)
        elif state == "warning":
            status = paint(status, YELLOW, self._colour)
        self._write(f"{self._prefix} {display_name(event.resource)}  {status}")

    def message(self, text: str) -> None:
        self._write(f"{self._prefix}{text}")

    def close(self) -> None:
        with self._lock:
            self._stream.flush()

    def _write(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
