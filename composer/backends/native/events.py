"""The native engine's event log: what happened to a project's resources, in order.

There is no daemon to stream events from, so the backend appends one JSON
line per event it causes (``create``, ``start``, ``kill``, ``stop``,
``pause``, ``destroy``, ``rename``…) to ``<root>/events/<project>.jsonl``.
A container that ends on its own has no caller to write its ``die``: those
come from ``state.json`` (its finish time and exit code, written by the
supervisor) and are merged in when the log is read, unless the backend
already wrote that ``die`` itself. Appends of lines under ``PIPE_BUF``
with ``O_APPEND`` are atomic, so several processes can write at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from composer.backends.native.state import StateRoot, check_name
from composer.backends.runtime import EngineEvent, EventType

EVENTS_DIR = "events"
POLL = 0.2


def log_path(root: StateRoot, project: str) -> Path:
    return root.path / EVENTS_DIR / f"{check_name('project', project)}.jsonl"


def record(
    root: StateRoot,
    project: str,
    type: EventType,
    action: str,
    id: str,
    name: str,
    *,
    service: str | None = None,
    attributes: Mapping[str, str] | None = None,
    when: float | None = None,
) -> None:
    """Append one event (best effort: an event log must never fail a verb)."""
    if not project:
        return
    line = json.dumps(
        {
            "time": time.time() if when is None else when,
            "type": type,
            "action": action,
            "id": id,
            "name": name,
            "service": service,
            "attributes": dict(attributes or {}),
        },
        sort_keys=True,
    ).encode()
    with contextlib.suppress(OSError, ValueError):
        path = log_path(root, project)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line + b"\n")
        finally:
            os.close(fd)


def read(root: StateRoot, project: str) -> list[EngineEvent]:
    """Every event logged for ``project``, oldest first."""
    out: list[EngineEvent] = []
    try:
        data = log_path(root, project).read_bytes()
    except (FileNotFoundError, ValueError):
        return out
    for raw in data.splitlines():
        try:
            d = json.loads(raw)
            out.append(
                EngineEvent(
                    time=float(d["time"]),
                    type=d["type"],
                    action=str(d["action"]),
                    id=str(d["id"]),
                    name=str(d["name"]),
                    service=d.get("service"),
                    attributes={str(k): str(v) for k, v in (d.get("attributes") or {}).items()},
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return out


def merged(logged: Iterable[EngineEvent], dies: Iterable[EngineEvent]) -> list[EngineEvent]:
    """Logged events plus the ``die`` events seen only in state files, sorted by time."""
    events = list(logged)
    known = {(e.id, round(e.time, 3)) for e in events if e.action == "die"}
    for die in dies:
        if (die.id, round(die.time, 3)) not in known:
            events.append(die)
    events.sort(key=lambda e: e.time)
    return events


def window(
    source: Iterator[list[EngineEvent]], since: float | None, until: float | None
) -> Iterator[EngineEvent]:
    """Events in ``[since, until]`` from successive snapshots, each delivered once.

    ``source`` yields the whole (sorted) list again on each poll; with
    ``until`` the stream ends once the clock has passed it.
    """
    seen: set[tuple[str, str, float]] = set()
    for snapshot in source:
        for event in snapshot:
            key = (event.id, event.action, event.time)
            if key in seen:
                continue
            seen.add(key)
            if since is not None and event.time < since:
                continue
            if until is not None and event.time > until:
                continue
            yield event
        if until is not None and time.time() > until:
            return
