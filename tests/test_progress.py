"""Progress renderers: the words, the plain and json lines, the tty frame, mode choice."""

from __future__ import annotations

import io
import json

import pytest

from composer.events import Event
from composer.progress import QuietRenderer, open_renderer, resolve_mode
from composer.progress.jsonl import JsonRenderer
from composer.progress.plain import PlainRenderer
from composer.progress.tty import Frame, TtyRenderer

C = "container demo-web-1"


def ev(kind: str, action: str = "create", t: float = 0.0, text: str = "", **kw: int) -> Event:
    return Event(kind, C, action, t, text, None, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (ev("start"), " Container demo-web-1  Creating"),
        (ev("done"), " Container demo-web-1  Created"),
        (ev("start", "recreate"), " Container demo-web-1  Recreating"),
        (ev("done", "remove"), " Container demo-web-1  Removed"),
        (ev("done", "running"), " Container demo-web-1  Running"),
        (ev("done", "start", text="up to date"), " Container demo-web-1  Started: up to date"),
        (ev("error", "start", text="boom"), " Container demo-web-1  Error: boom"),
        (
            ev("cancelled", "start", text="interrupted"),
            " Container demo-web-1  Canceled: interrupted",
        ),
        (ev("warning", "start", text="careful"), " Container demo-web-1  Warning: careful"),
        (
            ev("progress", "pull", text="abc: Downloading", current=1500, total=3_000_000),
            " Container demo-web-1  Pulling: abc: Downloading 1.5kB/3.0MB",
        ),
        (ev("done", "wait"), " Container demo-web-1  Healthy"),
    ],
)
def test_plain_lines(event: Event, line: str) -> None:
    out = io.StringIO()
    PlainRenderer(out).emit(event)
    assert out.getvalue() == line + "\n"


def test_plain_dry_run_prefix_and_messages() -> None:
    out = io.StringIO()
    r = PlainRenderer(out, dry_run=True)
    r.emit(ev("done"))
    r.message("Gracefully stopping...")
    assert out.getvalue().splitlines() == [
        "DRY-RUN MODE -  Container demo-web-1  Created",
        "DRY-RUN MODE - Gracefully stopping...",
    ]


def test_plain_colours_errors_only_when_asked() -> None:
    out = io.StringIO()
    PlainRenderer(out, colour=True).emit(ev("error", text="x"))
    assert "\x1b[31m" in out.getvalue()
    out = io.StringIO()
    PlainRenderer(out, colour=False).emit(ev("error", text="x"))
    assert "\x1b" not in out.getvalue()


def test_json_lines() -> None:
    out = io.StringIO()
    r = JsonRenderer(out, dry_run=True)
    r.emit(ev("done", "start", t=12.5))
    r.emit(ev("progress", "pull", text="l1", current=5, total=10))
    r.message("bye")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records == [
        {
            "dry-run": True,
            "id": "Container demo-web-1",
            "status": "Started",
            "state": "done",
            "action": "start",
            "time": 12.5,
        },
        {
            "dry-run": True,
            "id": "Container demo-web-1",
            "status": "Pulling",
            "state": "working",
            "action": "pull",
            "time": 0.0,
            "text": "l1",
            "current": 5,
            "total": 10,
        },
        {"dry-run": True, "tail": True, "text": "bye"},
    ]


def test_tty_frame_text() -> None:
    now = [10.0]
    frame = Frame(lambda: now[0])
    frame.update(Event("start", "network demo_default", "create", 8.0))
    frame.update(Event("done", "network demo_default", "create", 8.25))
    frame.update(Event("start", C, "start", 9.0))
    lines = frame.lines(60)
    texts = [t for t, _s in lines]
    assert texts[0] == "[+] Running 1/2"
    assert texts[1] == " ✔ Network demo_default  Created" + " " * 24 + "0.2s"
    assert texts[2].startswith(" ⠋ Container demo-web-1  Starting")
    assert texts[2].endswith(" 1.0s")
    assert all(len(t) == 60 for t in texts[1:])
    assert [s for _t, s in lines] == ["working", "done", "working"]
    frame.update(Event("error", C, "start", 9.5, "port is already allocated"))
    now[0] = 20.0
    last, state = frame.lines(44)[2]
    assert state == "error"
    assert last.startswith(" ✘ Container demo-web-1  Error: port")
    assert last.endswith("... 0.5s") and len(last) == 44


def test_tty_frame_warning_keeps_final_status_and_restart_resets_timer() -> None:
    frame = Frame(lambda: 5.0)
    frame.update(Event("start", C, "create", 0.0))
    frame.update(Event("done", C, "create", 1.0))
    frame.update(Event("warning", C, "create", 1.0, "optional dependency failed"))
    [_h, (text, state)] = frame.lines(80)
    assert state == "done" and "Created: optional dependency failed" in text
    frame.update(Event("start", C, "start", 3.0))
    [_h, (text, state)] = frame.lines(80)
    assert state == "working" and text.endswith(" 2.0s")


def test_tty_renderer_draws_and_leaves_the_final_frame() -> None:
    out = io.StringIO()
    r = TtyRenderer(out, colour=False, now=lambda: 1.0)
    r.emit(Event("start", C, "create", 0.0))
    r.emit(Event("done", C, "create", 0.5))
    r.close()
    text = out.getvalue()
    assert "[+] Running 1/1" in text
    assert "✔ Container demo-web-1  Created" in text


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("progress", "ansi", "tty", "environ", "mode"),
    [
        ("auto", "auto", True, {}, "tty"),
        ("auto", "auto", False, {}, "plain"),
        ("auto", "never", True, {}, "plain"),
        ("auto", "auto", True, {"TERM": "dumb"}, "plain"),
        ("tty", "auto", False, {}, "tty"),
        ("tty", "never", True, {}, "plain"),
        ("json", "always", True, {}, "json"),
        ("quiet", "auto", True, {}, "quiet"),
        ("plain", "always", True, {}, "plain"),
    ],
)
def test_resolve_mode(
    progress: str, ansi: str, tty: bool, environ: dict[str, str], mode: str
) -> None:
    stream = Tty() if tty else io.StringIO()
    assert resolve_mode(progress, ansi, stream, environ) == mode


def test_open_renderer_types() -> None:
    out = io.StringIO()
    assert isinstance(open_renderer("plain", out, colour=False), PlainRenderer)
    assert isinstance(open_renderer("json", out, colour=False), JsonRenderer)
    assert isinstance(open_renderer("tty", out, colour=False), TtyRenderer)
    quiet = open_renderer("quiet", out, colour=False)
    assert isinstance(quiet, QuietRenderer)
    quiet.emit(ev("done"))
    quiet.message("x")
    assert out.getvalue() == ""
