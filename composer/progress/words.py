"""How an executor event reads to a user: Docker Compose's vocabulary.

The executor speaks in plan terms (``container demo-web-1``, action
``create``, kind ``start``); people and scripts that know Docker Compose
expect ``Container demo-web-1  Creating`` then ``Created``. Every renderer
goes through these functions so that the tty, plain and json outputs never
disagree about a word.
"""

from __future__ import annotations

from typing import Literal

from composer.events import Event

State = Literal["working", "done", "error", "warning", "cancelled"]

# action -> (while it runs, once it is done)
_WORDS: dict[str, tuple[str, str]] = {
    "create": ("Creating", "Created"),
    "recreate": ("Recreating", "Recreated"),
    "start": ("Starting", "Started"),
    "stop": ("Stopping", "Stopped"),
    "restart": ("Restarting", "Restarted"),
    "kill": ("Killing", "Killed"),
    "remove": ("Removing", "Removed"),
    "pause": ("Pausing", "Paused"),
    "unpause": ("Unpausing", "Unpaused"),
    "pull": ("Pulling", "Pulled"),
    "build": ("Building", "Built"),
    "running": ("Running", "Running"),
    "wait": ("Waiting", "Healthy"),
}


def display_name(resource: str) -> str:
    """``container demo-web-1`` -> ``Container demo-web-1`` (as Compose names resources)."""
    return resource[:1].upper() + resource[1:]


def state_of(event: Event) -> State:
    """Where the resource stands after this event."""
    if event.kind in ("start", "progress"):
        return "working"
    if event.kind == "done":
        return "done"
    if event.kind == "error":
        return "error"
    if event.kind == "warning":
        return "warning"
    return "cancelled"


def status_word(event: Event) -> str:
    """The word Compose shows for this event (``Creating``, ``Created``, ``Error``...)."""
    working, done = _WORDS.get(event.action, (event.action.capitalize(), event.action.capitalize()))
    match event.kind:
        case "start" | "progress":
            return working
        case "done":
            return done
        case "error":
            return "Error"
        case "warning":
            return "Warning"
        case _:
            return "Canceled"


def detail(event: Event) -> str:
    """The event's text, if any (an error message, a layer's progress, ``up to date``)."""
    if event.kind == "progress" and event.current is not None and event.total:
        return f"{event.text} {_size(event.current)}/{_size(event.total)}"
    return event.text


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{value:.1f}GB"  # pragma: no cover - the loop always returns
