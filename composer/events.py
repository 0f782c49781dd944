"""Events the executor emits while it carries out a plan.

The executor never prints: it hands these records to an injected
``Reporter``, and the CLI picks a renderer (tty, plain, json, quiet). Every
event names the resource as the plan does (``container demo-web-1``) and
carries the time of the clock the executor runs on, so that tests on a fake
clock can assert *when* something happened.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, Protocol

EventKind = Literal["start", "progress", "done", "error", "warning", "cancelled"]


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to one resource.

    ``kind``: ``start`` (the step began), ``progress`` (a pull or build layer
    moved; ``current``/``total`` in bytes when known), ``done`` (the step
    succeeded; ``text`` may say e.g. ``up to date``), ``error`` (the step
    failed; ``text`` is the reason), ``warning`` (something the user should
    know but that did not fail the run), ``cancelled`` (the step never ran
    because a prerequisite failed or the run was interrupted).
    """

    kind: EventKind
    resource: str
    action: str
    time: float
    text: str = ""
    step: str | None = None
    current: int | None = None
    total: int | None = None

    def __str__(self) -> str:
        tail = f": {self.text}" if self.text else ""
        return f"{self.resource} {self.action} {self.kind}{tail}"


class Reporter(Protocol):
    """Receives events; must be safe to call from several threads at once."""

    def emit(self, event: Event) -> None: ...


class NullReporter:
    """Drops every event (``--progress quiet``)."""

    def emit(self, event: Event) -> None:
        del event


class CollectingReporter:
    """Keeps every event in order of arrival; the test double for reporters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def emit(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> list[Event]:
        """A copy of the events received so far."""
        with self._lock:
            return list(self._events)

    def of_kind(self, kind: EventKind) -> list[Event]:
        """The events of one kind, in order."""
        return [e for e in self.events if e.kind == kind]

    def for_resource(self, resource: str) -> list[Event]:
        """The events about one resource, in order."""
        return [e for e in self.events if e.resource == resource]

    def time_of(self, kind: EventKind, resource: str, action: str | None = None) -> float:
        """The time of the first matching event; KeyError when there is none."""
        for e in self.events:
            if e.kind == kind and e.resource == resource and action in (None, e.action):
                return e.time
        raise KeyError(f"no {kind} event for {resource}")
