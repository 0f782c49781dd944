"""Attached ``up`` and the lifecycle use cases on the fake backend, in real (short) time.

The fake backend plays scripted output and exits; these tests check what an
attached session prints, when it ends and which exit code it returns, and
what ``--dry-run`` leaves untouched.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from composer.app_lifecycle import Runtime, UpRequest, converge, up
from composer.attach import LogFormat, LogPrinter, Session, format_time, short_name
from composer.backends.fake import FakeBackend
from composer.clock import RealClock
from composer.errors import PlanError
from composer.events import Event
from composer.options import GlobalOptions, Invocation
from composer.planner.options import StopOptions, UpOptions
from composer.planner.plan import Plan
from composer.planner.specs import image_ref
from composer.schema.model import Project
from tests.planner.planfixtures import project


@dataclass
class Recorder:
    """A renderer that keeps events and messages."""

    events: list[Event] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def message(self, text: str) -> None:
        with self.lock:
            self.messages.append(text)

    def close(self) -> None:
        """Nothing to flush."""


def runtime(*, dry_run: bool = False) -> tuple[Runtime, Recorder, list[Plan]]:
    recorder = Recorder()
    plans: list[Plan] = []
    rt = Runtime(
        options=GlobalOptions(dry_run=dry_run),
        invocation=Invocation(Path("/srv"), {}, lambda: ""),
        renderer=recorder,
        warn=lambda _text: None,
        show_plan=plans.append,
        clock=RealClock(),
    )
    return rt, recorder, plans


def fake(p: Project, **script: Any) -> FakeBackend:
    backend = FakeBackend(RealClock())
    for name in p.services:
        backend.add_image(image_ref(p, name))
    for name, behaviour in script.items():
        backend.script(name, **behaviour)
    return backend


def attached(p: Project, backend: FakeBackend, **request: Any) -> tuple[int, list[str], Recorder]:
    rt, recorder, _plans = runtime()
    req = UpRequest(plan=UpOptions(services=request.pop("services", ())), **request)
    since = rt.clock.now()
    up(rt, backend, p, req)
    out = io.StringIO()
    fmt = LogFormat()
    session = Session(rt, backend, p, req, LogPrinter(out, fmt), fmt, since, poll=0.05)
    code = session.run()
    return code, out.getvalue().splitlines(), recorder


TWO = project({"quick": {"image": "bb"}, "slow": {"image": "bb"}})


def test_abort_on_exit_stops_the_rest_and_returns_the_first_exit_code() -> None:
    backend = fake(
        TWO,
        quick={"output": (("stdout", "hi"), ("stderr", "bye")), "exit_after": 0.3, "exit_code": 3},
        slow={"output": (("stdout", "slow here"),), "stop_exit_code": 143},
    )
    code, out, recorder = attached(TWO, backend, abort_on_exit=True)
    assert code == 3
    assert out[0] == "Attaching to quick-1, slow-1"
    assert set(out[1:4]) == {"quick-1  | hi", "quick-1  | bye", "slow-1   | slow here"}
    assert out[-2:] == ["quick-1 exited with code 3", "slow-1 exited with code 143"]
    assert recorder.messages == ["Aborting on container exit..."]
    stops = [e.resource for e in recorder.events if e.action == "stop" and e.kind == "done"]
    assert stops == ["container demo-slow-1"]


def test_exit_code_from_is_the_targets_own_code_even_when_stopped() -> None:
    backend = fake(TWO, quick={"exit_after": 0.2, "exit_code": 3}, slow={"stop_exit_code": 143})
    code, _out, _rec = attached(TWO, backend, exit_code_from="slow")
    assert code == 143


def test_failure_cascade_ignores_clean_exits_and_ends_when_all_stopped() -> None:
    backend = fake(TWO, quick={"exit_after": 0.1}, slow={"exit_after": 0.4, "exit_code": 0})
    code, out, recorder = attached(TWO, backend, abort_on_failure=True)
    assert code == 0
    assert "quick-1 exited with code 0" in out and "slow-1 exited with code 0" in out
    assert recorder.messages == []


def test_attach_selection() -> None:
    p = project({"a": {"image": "bb"}, "b": {"image": "bb"}, "c": {"image": "bb", "attach": False}})
    script = {
        name: {"output": ((("stdout", f"{name} says")),), "exit_after": 0.1} for name in "abc"
    }
    _code, out, _rec = attached(p, fake(p, **script), no_attach=("b",))
    assert out[0] == "Attaching to a-1"
    assert "a-1  | a says" in out and not any("says" in line for line in out if "b-1" in line)
    # every monitored container is still reported when it exits
    assert {"a-1 exited with code 0", "b-1 exited with code 0", "c-1 exited with code 0"} <= set(
        out
    )
    _code, out, _rec = attached(p, fake(p, **script), services=("c",))
    assert out[0] == "Attaching to c-1"  # named, so attach: false does not apply
    _code, out, _rec = attached(p, fake(p, **script), attach=("b",))
    assert out[0] == "Attaching to b-1"


def test_printer_prefix_colour_and_timestamps() -> None:
    out = io.StringIO()
    printer = LogPrinter(out, LogFormat(colour=True, timestamps=True))
    printer.register([("web", "web-1"), ("db", "database-1")])
    printer.line("web", "web-1", "ready", 0.5)
    printer.line("db", "database-1", "up", None)
    assert out.getvalue().splitlines() == [
        "\x1b[36mweb-1       | \x1b[0m1970-01-01T00:00:00.500000Z ready",
        "\x1b[33mdatabase-1  | \x1b[0mup",
    ]
    out = io.StringIO()
    LogPrinter(out, LogFormat(prefix=False)).line("web", "web-1", "plain")
    assert out.getvalue() == "plain\n"
    assert short_name("demo", "demo-web-1") == "web-1"
    assert short_name("demo", "custom") == "custom"
    assert format_time(1.9999999) == "1970-01-01T00:00:02.000000Z"
    assert format_time(1717000000.25) == "2024-05-29T16:26:40.250000Z"


# --- the use cases -------------------------------------------------------------------


def test_dry_run_runs_the_plan_on_a_copy() -> None:
    p = project({"db": {"image": "bb", "healthcheck": {"test": ["CMD", "true"]}}})
    backend = fake(p, db={"healthy_after": math.inf})
    rt, recorder, plans = runtime(dry_run=True)
    up(rt, backend, p, UpRequest(plan=UpOptions(), detach=True))
    assert str(plans[0]).splitlines()[-2:] == [
        "container demo-db-1  create  (missing)",
        "container demo-db-1  start  (created)",
    ]
    assert [e.kind for e in recorder.events if e.resource == "container demo-db-1"][-1] == "done"
    assert backend.verbs() == ["observe"]  # nothing but the snapshot touched the engine


def test_converge_stop_and_warn_orphans() -> None:
    p = project({"db": {"image": "bb"}})
    backend = fake(p)
    rt, recorder, _plans = runtime()
    up(rt, backend, p, UpRequest(plan=UpOptions(), detach=True))
    done = converge(rt, backend, p, StopOptions())
    assert [str(s) for s in done.plan.steps] == ["container demo-db-1  stop  (stop)"]
    assert backend.observe("demo").containers[0].state == "exited"
    assert any(e.action == "stop" and e.kind == "done" for e in recorder.events)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"detach": True, "abort_on_exit": True}, "--detach cannot be combined"),
        ({"wait": True, "exit_code_from": "x"}, "--wait cannot be combined"),
        ({"abort_on_exit": True, "abort_on_failure": True}, "are incompatible"),
        ({"plan": UpOptions(no_start=True), "wait": True}, "--no-start cannot"),
        ({"wait_timeout": -1.0}, "must not be negative"),
    ],
)
def test_up_request_refuses_conflicts(fields: dict[str, Any], message: str) -> None:
    fields.setdefault("plan", UpOptions())
    with pytest.raises(PlanError, match=message):
        UpRequest(**fields)
