"""The executor on the fake backend and a fake clock: exact start times, failure
containment, optional dependencies, timeouts and Ctrl-C."""

from __future__ import annotations

import math
import signal
import threading
from typing import Any

import pytest

from composer.backends.fake import FakeBackend
from composer.clock import FakeClock, RealClock
from composer.errors import ExecutionError
from composer.events import CollectingReporter
from composer.planner.executor import ExecutionResult, execute
from composer.planner.options import DownOptions, UpOptions
from composer.planner.reconcile import reconcile
from composer.planner.specs import image_ref
from composer.schema.model import Project
from tests.planner.planfixtures import project

HEALTH = {"test": ["CMD", "true"]}


def healthy_dep(*names: str, condition: str = "service_healthy", **extra: Any) -> dict[str, Any]:
    return {n: {"condition": condition, **extra} for n in names}


def svc(depends: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"image": "busybox", "healthcheck": HEALTH, "depends_on": depends or {}}


def up(
    p: Project, *, parallel: int | None = None, wait_timeout: float | None = None, **script: Any
) -> tuple[FakeBackend, CollectingReporter, ExecutionResult]:
    clock = FakeClock()
    backend = FakeBackend(clock)
    for name in p.services:
        backend.add_image(image_ref(p, name))
    for name, behaviour in script.items():
        backend.script(name, **behaviour)
    observed = backend.observe(p.name, [image_ref(p, s) for s in p.services])
    plan = reconcile(p, observed, UpOptions(), now=clock.now())
    reporter = CollectingReporter()
    result = execute(
        plan, backend, reporter, parallel=parallel, clock=clock, wait_timeout=wait_timeout
    )
    return backend, reporter, result


def start_times(backend: FakeBackend) -> dict[str, float]:
    return {call.args[0].split("-")[1]: call.time for call in backend.calls_of("start_container")}


def test_chain_starts_each_service_when_its_dependency_is_healthy() -> None:
    p = project({"a": svc(), "b": svc(healthy_dep("a")), "c": svc(healthy_dep("b"))})
    backend, _, result = up(p, a={"healthy_after": 2}, b={"healthy_after": 3})
    assert result.ok
    assert start_times(backend) == {"a": 0.0, "b": 2.0, "c": 5.0}


def test_diamond_has_no_barrier_per_level() -> None:
    p = project(
        {
            "a": svc(),
            "b": svc(healthy_dep("a")),
            "c": svc(healthy_dep("a")),
            "d": svc(healthy_dep("b", "c")),
            "e": svc(healthy_dep("b")),
        }
    )
    backend, reporter, result = up(
        p, a={"healthy_after": 1}, b={"healthy_after": 1}, c={"healthy_after": 3}
    )
    assert result.ok, result.failed
    # e needs only b (healthy at 2) and must not wait for c (healthy at 4).
    assert start_times(backend) == {"a": 0.0, "b": 1.0, "c": 1.0, "d": 4.0, "e": 2.0}
    assert reporter.time_of("done", "container demo-d-1", "start") == 4.0


def test_parallel_limit_serialises_independent_steps() -> None:
    p = project({n: {"image": "busybox"} for n in ("a", "b", "c")})
    clock = FakeClock()
    backend = FakeBackend(clock)
    backend.add_image("busybox")
    for n in ("a", "b", "c"):
        backend.script(n, stop_delay=0)
    plan = reconcile(p, backend.observe("demo", ["busybox"]), UpOptions(), now=0)
    seen: list[int] = []
    active = [0]
    lock = threading.Lock()
    original = backend.create_container

    def counting(spec: Any) -> str:
        with lock:
            active[0] += 1
            seen.append(active[0])
        clock.sleep(1)
        with lock:
            active[0] -= 1
        return original(spec)

    backend.create_container = counting  # type: ignore[method-assign]
    result = execute(plan, backend, CollectingReporter(), parallel=1, clock=clock)
    assert result.ok
    assert max(seen) == 1
    assert clock.now() == 3.0


def test_completed_successfully_waits_for_exit_zero() -> None:
    p = project(
        {
            "migrate": {"image": "busybox"},
            "web": {
                "image": "busybox",
                "depends_on": healthy_dep("migrate", condition="service_completed_successfully"),
            },
        }
    )
    backend, _, result = up(p, migrate={"exit_after": 3, "exit_code": 0})
    assert result.ok
    assert start_times(backend) == {"migrate": 0.0, "web": 3.0}


def test_completed_with_failure_fails_the_dependent_only() -> None:
    p = project(
        {
            "migrate": {"image": "busybox"},
            "other": {"image": "busybox"},
            "web": {
                "image": "busybox",
                "depends_on": healthy_dep("migrate", condition="service_completed_successfully"),
            },
        }
    )
    backend, _, result = up(p, migrate={"exit_after": 1, "exit_code": 3})
    [failed] = result.failed
    assert failed.step.id == "container:demo-web-1:start"
    assert "exit 3" in failed.text
    assert "other" in start_times(backend)
    with pytest.raises(ExecutionError, match="demo-web-1 start failed"):
        result.raise_for_failure()


def test_failure_cancels_only_dependents() -> None:
    p = project(
        {
            "a": svc(),
            "b": svc(healthy_dep("a")),
            "c": svc(),
            "d": svc(healthy_dep("b")),
            "e": svc(healthy_dep("c")),
        }
    )
    clock = FakeClock()
    backend = FakeBackend(clock)
    backend.add_image("busybox")
    backend.fail("start_container", "demo-b-1")
    plan = reconcile(p, backend.observe("demo", ["busybox"]), UpOptions(), now=0)
    reporter = CollectingReporter()
    result = execute(plan, backend, reporter, parallel=None, clock=clock)
    assert [o.step.id for o in result.failed] == ["container:demo-b-1:start"]
    assert [s.id for s in result.cancelled] == ["container:demo-d-1:start"]
    # b's start was attempted (and failed); d never started, c and e went on.
    assert set(start_times(backend)) == {"a", "b", "c", "e"}
    assert reporter.of_kind("cancelled")[0].resource == "container demo-d-1"
    assert not result.ok


def test_optional_dependency_failure_is_a_warning() -> None:
    p = project({"a": svc(), "b": svc(healthy_dep("a", required=False))})
    backend, reporter, result = up(p, a={"unhealthy_after": 2})
    assert result.ok, result.failed
    assert "b" in start_times(backend)
    assert any("optional dependency 'a'" in w for w in result.warnings)
    assert reporter.of_kind("warning")


def test_optional_dependency_whose_start_failed_still_lets_the_dependent_start() -> None:
    p = project({"a": svc(), "b": svc(healthy_dep("a", required=False))})
    clock = FakeClock()
    backend = FakeBackend(clock)
    backend.add_image("busybox")
    backend.fail("start_container", "demo-a-1")
    plan = reconcile(p, backend.observe("demo", ["busybox"]), UpOptions(), now=0)
    result = execute(plan, backend, CollectingReporter(), parallel=None, clock=clock)
    assert [o.step.id for o in result.failed] == ["container:demo-a-1:start"]
    assert "b" in start_times(backend)
    assert result.warnings


def test_wait_timeout() -> None:
    p = project({"a": svc(), "b": svc(healthy_dep("a"))})
    _backend, reporter, result = up(p, wait_timeout=5, a={"healthy_after": math.inf})
    [failed] = result.failed
    assert "timed out waiting for a to be healthy" in failed.text
    assert failed.ended_at == 5.0
    assert reporter.time_of("error", "container demo-b-1", "start") == 5.0


def test_events_for_every_step() -> None:
    p = project({"a": {"image": "alpine"}})
    clock = FakeClock()
    backend = FakeBackend(clock)
    plan = reconcile(p, backend.observe("demo", ["alpine"]), UpOptions(), now=0)
    reporter = CollectingReporter()
    result = execute(plan, backend, reporter, parallel=None, clock=clock)
    assert result.ok
    for step in plan:
        kinds = [e.kind for e in reporter.for_resource(step.resource) if e.action == step.action]
        assert kinds[0] == "start" and kinds[-1] == "done"
    progress = reporter.of_kind("progress")
    assert progress and progress[0].resource == "image alpine"
    assert set(result.containers) == {"demo-a-1"}


def test_executing_the_plan_converges() -> None:
    p = project({"a": svc(), "b": svc(healthy_dep("a", restart=True))}, volumes={"v": {}})
    backend, _, result = up(p)
    assert result.ok
    again = reconcile(p, backend.observe("demo", ["busybox"]), UpOptions(), now=100)
    assert again.empty, str(again)
    down = reconcile(p, backend.observe("demo", ["busybox"]), DownOptions(), now=100)
    result = execute(down, backend, CollectingReporter(), parallel=None, clock=FakeClock())
    assert result.ok
    assert backend.observe("demo").containers == ()


def test_ctrl_c_stops_scheduling_and_reports_what_exists() -> None:
    p = project({"a": svc(), "b": svc(healthy_dep("a")), "c": svc(healthy_dep("b"))})
    clock = RealClock()
    backend = FakeBackend(clock)
    backend.add_image("busybox")
    backend.script("a", healthy_after=math.inf)
    plan = reconcile(p, backend.observe("demo", ["busybox"]), UpOptions(), now=0)
    main = threading.main_thread().ident
    assert main is not None
    # Python leaves SIGINT ignored when it started ignored (a background job of a
    # non-interactive shell): Ctrl-C must raise KeyboardInterrupt here whatever the runner.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    try:
        result = execute(
            plan, backend, CollectingReporter(), parallel=None, clock=clock, poll_interval=0.02
        )
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert result.interrupted and not result.ok
    assert set(result.containers) == {"demo-a-1", "demo-b-1", "demo-c-1"}
    cancelled = {s.id for s in result.cancelled}
    assert cancelled == {"container:demo-b-1:start", "container:demo-c-1:start"}
    assert set(start_times(backend)) == {"a"}


def test_waiting_on_a_paused_dependency_fails_at_once_with_a_hint() -> None:
    p = project({"a": svc(), "b": svc(healthy_dep("a"))})
    backend, _, first = up(p)
    assert first.ok
    a = next(c for c in backend.observe("demo").containers if c.service == "a")
    b = next(c for c in backend.observe("demo").containers if c.service == "b")
    backend.pause_container(a.id)
    backend.stop_container(b.id, 0)
    observed = backend.observe("demo", [image_ref(p, s) for s in p.services])
    plan = reconcile(p, observed, UpOptions(), now=backend.clock.now())
    result = execute(plan, backend, CollectingReporter(), parallel=None, clock=backend.clock)
    [failed] = result.failed
    assert "demo-a-1 is paused" in failed.text
