"""Text the CLI writes: JSON, tables, error blocks and warnings.

Everything here returns strings (or writes to a stream it is given), so that
the formatting can be tested without a terminal and the CLI stays a thin
shell. Colour is a parameter: the caller decides from ``--ansi`` and the
stream whether escape codes are wanted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from composer.errors import ComposerError, ConfigError

RED = "\x1b[31m"
YELLOW = "\x1b[33m"
RESET = "\x1b[0m"
# Go's encoding/json escapes these even inside strings; matching it keeps the
# output byte-for-byte diffable against ``docker compose config --format json``.
_GO_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def dump_json(data: Any) -> str:
    """Indented JSON as Go's ``json.MarshalIndent(v, "", "  ")`` writes it, plus a newline."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    for raw, escaped in _GO_JSON_ESCAPES.items():
        if raw in text:
            text = text.replace(raw, escaped)
    return text + "\n"


def escape_dollars(text: str) -> str:
    """Double every ``$`` so that an interpolated model reads back unchanged."""
    return text.replace("$", "$$")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns as Docker's tabwriter pads them (minimum width 20, padding 3)."""
    table = [list(headers), *[list(r) for r in rows]]
    widths = [max(20, *(len(row[i]) + 3 for row in table)) for i in range(len(headers) - 1)]
    lines = []
    for row in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append(("".join(cells) + row[-1]).rstrip())
    return "\n".join(lines) + "\n"


def paint(text: str, colour: str, enabled: bool) -> str:
    """Wrap ``text`` in an ANSI colour when ``enabled``."""
    return f"{colour}{text}{RESET}" if enabled else text


def render_error(error: ComposerError, *, colour: bool = False) -> str:
    """One readable block: every problem of a ConfigError on its own line, each with its hint.

    With several problems each hint is indented under the problem it belongs
    to; the error's own hint, if no problem carried it, comes last.
    """
    lines: list[str] = []
    shown: set[str] = set()
    if isinstance(error, ConfigError):
        indent = "  " if len(error.problems) > 1 else ""
        for problem in error.problems:
            lines.append(paint(problem.render(), RED, colour))
            if problem.hint:
                lines.append(f"{indent}hint: {problem.hint}")
                shown.add(problem.hint)
    else:
        lines.append(paint(f"error: {error.message}", RED, colour))
    if error.hint and error.hint not in shown:
        lines.append(f"hint: {error.hint}")
    return "\n".join(lines) + "\n"


def render_unexpected(error: BaseException, *, colour: bool = False) -> str:
    """A bug or an unmapped library error: one line and how to learn more."""
    detail = str(error).strip().splitlines()
    summary = f"{type(error).__name__}: {detail[0]}" if detail else type(error).__name__
    return (
        paint(f"error: unexpected {summary}", RED, colour)
        + "\nhint: run with --debug (or COMPOSER_DEBUG=1) for details\n"
    )


def render_traceback(error: BaseException) -> str:
    """The full traceback, shown only under ``--debug``."""
    import traceback

    return "".join(traceback.format_exception(error))


def make_warn(stream: TextIO, *, colour: bool = False) -> Callable[[str], None]:
    """A warning callback for the loader: ``warning: ...`` lines on ``stream``."""

    def warn(message: str) -> None:
        stream.write(f"{paint('warning:', YELLOW, colour)} {message}\n")
        stream.flush()

    return warn


def colour_enabled(ansi: str, stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Decide ``--ansi auto|always|never`` for one stream (``NO_COLOR`` turns auto off)."""
    if ansi == "always":
        return True
    if ansi == "never":
        return False
    if "NO_COLOR" in environ or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
