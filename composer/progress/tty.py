"""``--progress tty``: a live display with one line per resource.

Like Docker Compose's terminal display: a ``[+] Running done/total`` header,
then per resource a spinner (or ``✔``/``✘``/``!``/``-``), its name, its
current status and the time the step has taken, redrawn ten times a second
in place. The final frame stays on screen when the display closes.

rich draws the frames; it is imported only here, and this module only when a
terminal display is wanted, so other verbs and modes never pay for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from composer.events import Event
from composer.progress.words import State, detail, display_name, state_of, status_word

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ICONS: dict[State, str] = {"done": "✔", "error": "✘", "warning": "!", "cancelled": "-"}
STYLES: dict[State, str] = {
    "working": "",
    "done": "blue",
    "error": "red",
    "warning": "yellow",
    "cancelled": "dim",
}


@dataclass
class _Row:
    name: str
    state: State
    word: str
    text: str
    started: float
    ended: float | None = None


class Frame:
    """The rows of the display, updated from events; renders itself as lines.

    Kept apart from the live machinery so that its text can be tested with a
    fixed clock and width.
    """

    def __init__(self, now: Callable[[], float], *, prefix: str = "") -> None:
        self._now = now
        self._prefix = prefix
        self._rows: dict[str, _Row] = {}
        self._lock = threading.Lock()

    def update(self, event: Event) -> None:
        state = state_of(event)
        with self._lock:
            row = self._rows.get(event.resource)
            if row is None or (row.state != "working" and event.kind == "start"):
                row = _Row(display_name(event.resource), state, "", "", event.time)
                self._rows[event.resource] = row
            if event.kind == "warning" and row.state != "working":
                row.text = event.text  # a warning after the fact keeps the final status
                return
            row.state = state
            row.word = status_word(event)
            row.text = detail(event)
            row.ended = None if state == "working" else event.time

    def lines(self, width: int) -> list[tuple[str, State]]:
        """``(text, state)`` per line, the header first."""
        with self._lock:
            rows = list(self._rows.values())
        now = self._now()
        done = sum(1 for r in rows if r.state == "done")
        header = f"{self._prefix}[+] Running {done}/{len(rows)}"
        out: list[tuple[str, State]] = [
            (header, "done" if rows and done == len(rows) else "working")
        ]
        pad = max((len(r.name) for r in rows), default=0)
        frame = int(now * 10) % len(SPINNER)
        for r in rows:
            icon = SPINNER[frame] if r.state == "working" else ICONS[r.state]
            status = f"{r.word}: {r.text}" if r.text else r.word
            left = f" {icon} {r.name.ljust(pad)}  {status}"
            timer = f"{max(0.0, (r.ended if r.ended is not None else now) - r.started):.1f}s"
            room = width - len(timer) - 1
            if len(left) > room:
                left = left[: max(room - 3, 0)] + "..."
            out.append((left.ljust(room) + " " + timer, r.state))
        return out


class _Renderable:
    def __init__(self, frame: Frame, colour: bool) -> None:
        self.frame = frame
        self.colour = colour

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        for text, state in self.frame.lines(options.max_width):
            style = STYLES[state] if self.colour else ""
            yield Text(text, style=style, no_wrap=True, overflow="crop")


class TtyRenderer:
    """Draws a ``Frame`` in place on a terminal until ``close``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        colour: bool = True,
        dry_run: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(
            file=stream,
            force_terminal=True,
            no_color=not colour,
            highlight=False,
            soft_wrap=False,
        )
        self._frame = Frame(now, prefix="DRY-RUN MODE - " if dry_run else "")
        self._live: Live = Live(
            _Renderable(self._frame, colour),
            console=self._console,
            refresh_per_second=10,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._started = False
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        self._frame.update(event)
        with self._lock:
            if not self._started:
                self._live.start()
                self._started = True

    def message(self, text: str) -> None:
        with self._lock:
            target = self._live.console if self._started else self._console
            target.print(text, markup=False, highlight=False)

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._live.refresh()
                self._live.stop()
                self._started = False
