"""``--progress json``: one JSON object per event, for programs.

The keys follow Docker Compose's json progress writer (``id``, ``status``,
``text``, ``dry-run``, ``tail`` for free-form messages) and add what a
program wants and Compose leaves out: the plan ``action``, the ``state``
(``working``/``done``/``error``/``warning``/``cancelled``), the event
``time`` and, for pulls, ``current``/``total`` bytes.
"""

from __future__ import annotations

import json
import threading
from typing import Any, TextIO

from composer.events import Event
from composer.progress.words import display_name, state_of, status_word


class JsonRenderer:
    """Writes one compact JSON object per line to ``stream``."""

    def __init__(self, stream: TextIO, *, dry_run: bool = False) -> None:
        self._stream = stream
        self._dry_run = dry_run
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        record: dict[str, Any] = {
            "id": display_name(event.resource),
            "status": status_word(event),
            "state": state_of(event),
            "action": event.action,
            "time": round(event.time, 6),
        }
        if event.text:
            record["text"] = event.text
        if event.current is not None:
            record["current"] = event.current
        if event.total is not None:
            record["total"] = event.total
        self._write(record)

    def message(self, text: str) -> None:
        self._write({"tail": True, "text": text})

    def close(self) -> None:
        with self._lock:
            self._stream.flush()

    def _write(self, record: dict[str, Any]) -> None:
        if self._dry_run:
            record = {"dry-run": True, **record}
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
