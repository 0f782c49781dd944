"""Progress renderers: how executor events reach the user.

``open_renderer`` picks one from ``--progress``:

* ``tty``: a live display per resource (``composer.progress.tty``);
* ``plain``: one line per event (``composer.progress.plain``), the default
  when the output is not a terminal, as in CI;
* ``json``: one JSON object per event (``composer.progress.jsonl``);
* ``quiet``: nothing;
* ``auto``: ``tty`` on a terminal, else ``plain``; ``--ansi never`` (or a
  dumb terminal) also means ``plain``, since a live display needs escape codes.

Every renderer is a ``Reporter`` (``emit``) plus ``message`` for free-form
lines (``Gracefully stopping...``) and ``close``, which must be called
before anything else is written to the same stream (attached logs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TextIO

from composer.events import Event


class Renderer(Protocol):
    """A Reporter that can also print a line and must be closed."""

    def emit(self, event: Event) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class QuietRenderer:
    """``--progress quiet``: drops events and messages."""

    def emit(self, event: Event) -> None:
        del event

    def message(self, text: str) -> None:
        del text

    def close(self) -> None:
        """Nothing to flush."""


def resolve_mode(progress: str, ansi: str, stream: TextIO, environ: Mapping[str, str]) -> str:
    """The concrete mode for ``--progress`` (``auto`` resolved against ``stream``)."""
    if progress != "auto" and progress != "tty":
        return progress
    if ansi == "never" or environ.get("TERM") == "dumb":
        return "plain"
    if progress == "tty":
        return "tty"
    isatty = getattr(stream, "isatty", None)
    return "tty" if isatty is not None and isatty() else "plain"


def open_renderer(
    mode: str,
    stream: TextIO,
    *,
    colour: bool,
    dry_run: bool = False,
) -> Renderer:
    """A renderer for a resolved mode (``tty``, ``plain``, ``json`` or ``quiet``)."""
    if mode == "tty":
        from composer.progress.tty import TtyRenderer

        return TtyRenderer(stream, colour=colour, dry_run=dry_run)
    if mode == "json":
        from composer.progress.jsonl import JsonRenderer

        return JsonRenderer(stream, dry_run=dry_run)
    if mode == "quiet":
        return QuietRenderer()
    from composer.progress.plain import PlainRenderer

    return PlainRenderer(stream, colour=colour, dry_run=dry_run)
