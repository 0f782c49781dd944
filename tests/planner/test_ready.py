"""``up --wait`` as a plan: ReadyOptions -> one AwaitReady step per container, and
what the executor makes of it on the fake backend and a fake clock."""

from __future__ import annotations

import math
from typing import Any

import pytest

from composer.backends.fake import FakeBackend
from composer.clock import FakeClock
from composer.events import CollectingReporter
from composer.planner.executor import ExecutionResult, execute
from composer.planner.options import ReadyOptions, UpOptions
from composer.planner.plan import AwaitReady
from composer.planner.reconcile import reconcile
from composer.planner.specs import image_ref
from composer.schema.model import Project
from tests.planner.planfixtures import converged, project

HEALTH = {"test": ["CMD", "true"]}
STACK = project(
    {
        "db": {"image": "bb", "healthcheck": HEALTH},
        "migrate": {"image": "bb"},
        "api": {
            "image": "bb",
            "depends_on": {
                "db": {"condition": "service_healthy"},
                "migrate": {"condition": "service_completed_successfully"},
            },
        },
        "web": {"image": "bb", "scale": 2, "depends_on": {"api": {}}},
    }
)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ReadyOptions(),
            [
                "container demo-db-1  wait  (--wait)",
                "container demo-migrate-1  wait  (service_completed_successfully)",
                "container demo-api-1  wait  (--wait)",
                "container demo-web-1  wait  (--wait)",
                "container demo-web-2  wait  (--wait)",
            ],
        ),
        (
            ReadyOptions(("api",)),
            [
                "container demo-db-1  wait  (--wait)",
                "container demo-migrate-1  wait  (service_completed_successfully)",
                "container demo-api-1  wait  (--wait)",
            ],
        ),
        (ReadyOptions(("api",), no_deps=True), ["container demo-api-1  wait  (--wait)"]),
    ],
)
def test_ready_plan(options: ReadyOptions, expected: list[str]) -> None:
    plan = reconcile(STACK, converged(STACK), options, now=0.0)
    assert str(plan).splitlines() == expected
    assert all(not step.deps for step in plan.steps)
    for step in plan.steps:
        assert isinstance(step.payload, AwaitReady)
        assert step.payload.completed == (step.name == "demo-migrate-1")


def wait_after_up(
    p: Project, *, timeout: float | None = None, **script: Any
) -> tuple[CollectingReporter, ExecutionResult, float]:
    clock = FakeClock()
    backend = FakeBackend(clock)
    for name in p.services:
        backend.add_image(image_ref(p, name))
    for name, behaviour in script.items():
        backend.script(name, **behaviour)
    images = [image_ref(p, s) for s in p.services]
    plan = reconcile(p, backend.observe(p.name, images), UpOptions(), now=0.0)
    first = execute(plan, backend, CollectingReporter(), parallel=None, clock=clock)
    assert first.ok, first.failed
    began = clock.now()
    ready = reconcile(p, backend.observe(p.name), ReadyOptions(), now=clock.now())
    reporter = CollectingReporter()
    result = execute(ready, backend, reporter, parallel=None, clock=clock, wait_timeout=timeout)
    return reporter, result, clock.now() - began


SIMPLE = project(
    {
        "db": {"image": "bb", "healthcheck": HEALTH},
        "app": {"image": "bb"},
        "once": {"image": "bb"},
        "user": {
            "image": "bb",
            "depends_on": {"once": {"condition": "service_completed_successfully"}},
        },
    }
)


def test_wait_returns_when_healthy_and_completed() -> None:
    # user waits for once during up; once exits 0 at 2 s; db turns healthy at 7 s.
    reporter, result, took = wait_after_up(
        SIMPLE, db={"healthy_after": 7.0}, once={"exit_after": 2.0}
    )
    assert result.ok
    assert took == pytest.approx(7.0 - 2.0, abs=0.5)
    assert {e.resource for e in reporter.of_kind("done")} == {
        "container demo-db-1",
        "container demo-app-1",
        "container demo-once-1",
        "container demo-user-1",
    }


@pytest.mark.parametrize(
    ("script", "failing", "text"),
    [
        ({"db": {"unhealthy_after": 3.0}}, "container demo-db-1", "is unhealthy"),
        ({"app": {"exit_after": 0.2, "exit_code": 3}}, "container demo-app-1", "exited (3)"),
    ],
)
def test_wait_fails_for_unhealthy_or_exited(
    script: dict[str, Any], failing: str, text: str
) -> None:
    script = {"once": {"exit_after": 0.5}, **script}
    reporter, result, _took = wait_after_up(SIMPLE, **script)
    assert not result.ok
    [failed] = result.failed
    assert failed.step.resource == failing
    assert text in failed.text
    assert reporter.of_kind("error")[0].resource == failing


def test_wait_timeout_fails_after_the_timeout() -> None:
    _reporter, result, took = wait_after_up(
        SIMPLE, timeout=4.0, db={"healthy_after": math.inf}, once={"exit_after": 0.1}
    )
    [failed] = result.failed
    assert failed.step.resource == "container demo-db-1"
    assert "timed out" in failed.text
    assert took == pytest.approx(4.0, abs=0.01)
