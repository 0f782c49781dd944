"""Probes in the executor (fake engine, virtual clock, real loopback ports) and the
``--wait`` failure report built from the result."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from composer.backends.fake import FakeBackend
from composer.clock import FakeClock
from composer.events import CollectingReporter
from composer.planner.executor import ExecutionResult, execute
from composer.planner.options import ReadyOptions, UpOptions
from composer.planner.reconcile import reconcile
from composer.planner.specs import image_ref
from composer.schema.model import Project
from composer.wait_report import WAIT_FAILED, WAIT_TIMEOUT, report
from tests.ci.test_ready_probes import hangs_up, listener  # noqa: F401  (fixtures)
from tests.planner.planfixtures import project


def _stack(port: int, **ready: Any) -> Project:
    return project(
        {
            "db": {
                "image": "bb",
                "ports": [{"target": 80, "published": str(port)}],
                "x-composer": {"ready": {"tcp": 80, **ready}},
            },
            "api": {"image": "bb", "depends_on": {"db": {"condition": "service_healthy"}}},
        }
    )


@pytest.fixture
def engine() -> Iterator[tuple[FakeBackend, FakeClock]]:
    clock = FakeClock()
    yield FakeBackend(clock), clock


def _up(p: Project, backend: FakeBackend, clock: FakeClock) -> ExecutionResult:
    for name in p.services:
        backend.add_image(image_ref(p, name))
    observed = backend.observe(p.name, [image_ref(p, s) for s in p.services])
    plan = reconcile(p, observed, UpOptions(), now=0.0)
    return execute(plan, backend, CollectingReporter(), parallel=None, clock=clock)


def test_service_healthy_through_the_probe(
    engine: tuple[FakeBackend, FakeClock],
    listener: int,  # noqa: F811
) -> None:
    backend, clock = engine
    result = _up(_stack(listener), backend, clock)
    assert result.ok, result.failed
    assert result.probes == {"demo-db-1": (f"probe tcp:80 ok: connected to 127.0.0.1:{listener}",)}


def test_a_probe_that_never_passes_fails_the_dependent(
    engine: tuple[FakeBackend, FakeClock],
    hangs_up: int,  # noqa: F811
) -> None:
    backend, clock = engine
    result = _up(_stack(hangs_up, timeout="1s"), backend, clock)
    [failed] = result.failed
    assert failed.step.name == "demo-api-1"
    assert "readiness probe tcp:80 still failing after 1s" in failed.text


def _wait(p: Project, backend: FakeBackend, clock: FakeClock, timeout: float | None) -> Any:
    observed = backend.observe(p.name)
    plan = reconcile(p, observed, ReadyOptions(("db",), no_deps=True), now=clock.now())
    result = execute(
        plan, backend, CollectingReporter(), parallel=None, clock=clock, wait_timeout=timeout
    )
    return result, observed


def test_report_of_a_failed_probe(
    engine: tuple[FakeBackend, FakeClock],
    listener: int,  # noqa: F811
    hangs_up: int,  # noqa: F811
) -> None:
    backend, clock = engine
    assert _up(_stack(listener), backend, clock).ok
    failing = _stack(hangs_up, timeout="1s")
    backend.script("db", output=(("stdout", "db: bind failed"),))
    # the wait plan of a file whose probe now points at a port that hangs up
    observed = backend.observe(failing.name)
    for c in observed.containers:
        backend.stop_container(c.id, 0)
        backend.remove_container(c.id)
    assert _up(failing, backend, clock).failed
    result, observed = _wait(failing, backend, clock, None)
    error = report(backend, result, observed, log_lines=5)
    assert error.exit_code == WAIT_FAILED
    lines = error.message.splitlines()
    assert lines[0].startswith("service 'db' (demo-db-1) is not ready: container demo-db-1:")
    assert "  last readiness probe results:" in lines
    assert any("closed at once" in line for line in lines)
    assert "  last 1 log lines of demo-db-1:" in lines
    assert "    | db: bind failed" in lines


def test_report_of_a_timeout(
    engine: tuple[FakeBackend, FakeClock],
    hangs_up: int,  # noqa: F811
) -> None:
    backend, clock = engine
    p = _stack(hangs_up, timeout="1h")
    _up(p, backend, clock)
    result, observed = _wait(p, backend, clock, 2.0)
    error = report(backend, result, observed, log_lines=0)
    assert error.exit_code == WAIT_TIMEOUT
    assert "timed out waiting for demo-db-1 to be ready (last probe: " in error.message
    assert "log lines" not in error.message
