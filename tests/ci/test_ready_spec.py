"""``x-composer.ready`` parsing, and the probe reaching the plan's wait steps."""

from __future__ import annotations

from typing import Any

import pytest

from composer.errors import ConfigError
from composer.planner.options import ReadyOptions, UpOptions
from composer.planner.plan import AwaitReady, StartContainer
from composer.planner.ready_spec import ReadyProbe, parse_probe, service_probe
from composer.planner.reconcile import reconcile
from tests.planner.planfixtures import converged, project


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"tcp": 5432}, ReadyProbe("tcp", port=5432)),
        (
            {"tcp": "80", "timeout": "5s", "interval": "100ms"},
            ReadyProbe("tcp", 80, timeout=5.0, interval=0.1),
        ),
        ({"http": 8080}, ReadyProbe("http", port=8080)),
        (
            {"http": {"port": 8080, "path": "health", "status": 204}},
            ReadyProbe("http", port=8080, path="/health", status=204),
        ),
        ({"log": "ready to accept"}, ReadyProbe("log", pattern="ready to accept")),
    ],
)
def test_parse(raw: dict[str, Any], expected: ReadyProbe) -> None:
    assert parse_probe("db", raw) == expected


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("tcp", "must be a mapping"),
        ({}, "exactly one of"),
        ({"tcp": 1, "log": "x"}, "exactly one of"),
        ({"tcp": 0}, "invalid port 0"),
        ({"tcp": True}, "invalid port True"),
        ({"tcp": 1, "every": "1s"}, "unknown key 'every'"),
        ({"http": {"port": 1, "verb": "GET"}}, "http: unknown key 'verb'"),
        ({"http": {"port": 1, "status": "200"}}, "http.status must be an integer"),
        ({"log": "("}, "invalid regular expression"),
        ({"log": ""}, "log must be a regular expression"),
        ({"tcp": 1, "timeout": "soon"}, "timeout: invalid duration"),
        ({"tcp": 1, "interval": 0}, "interval must be positive"),
    ],
)
def test_parse_errors(raw: object, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_probe("db", raw)
    assert info.value.message.startswith("services.db.x-composer.ready: ")
    assert text in info.value.message


def test_str() -> None:
    assert str(ReadyProbe("tcp", port=1)) == "tcp:1"
    assert str(ReadyProbe("http", port=2, path="/h")) == "http:2/h"
    assert str(ReadyProbe("log", pattern="up")) == "log:/up/"


STACK = project(
    {
        "db": {"image": "bb", "x-composer": {"ready": {"tcp": 5432}}},
        "once": {"image": "bb", "x-composer": {"ready": {"log": "done"}}},
        "api": {
            "image": "bb",
            "depends_on": {
                "db": {"condition": "service_healthy"},
                "once": {"condition": "service_completed_successfully"},
            },
        },
    }
)


def test_the_loader_keeps_the_extension() -> None:
    assert service_probe("db", STACK.services["db"]) == ReadyProbe("tcp", port=5432)
    assert service_probe("api", STACK.services["api"]) is None


def test_wait_steps_carry_the_probe_except_for_one_shots() -> None:
    plan = reconcile(STACK, converged(STACK), ReadyOptions(), now=0.0)
    probes = {s.name: s.payload.probe for s in plan.steps if isinstance(s.payload, AwaitReady)}
    assert probes == {
        "demo-db-1": ReadyProbe("tcp", port=5432),
        "demo-once-1": None,  # it must complete; a probe would not say so
        "demo-api-1": None,
    }


def test_dependency_waits_carry_the_probe() -> None:
    plan = reconcile(STACK, converged(STACK, state="exited"), UpOptions(), now=0.0)
    [start] = [
        s.payload
        for s in plan.steps
        if isinstance(s.payload, StartContainer) and s.name == "demo-api-1"
    ]
    waits = {w.service: w.probe for w in start.waits}
    assert waits == {"db": ReadyProbe("tcp", port=5432), "once": ReadyProbe("log", pattern="done")}


def test_services_without_restart_policy_are_one_shots_under_wait() -> None:
    p = project({"seed": {"image": "bb"}, "web": {"image": "bb", "restart": "always"}})
    plan = reconcile(p, converged(p), ReadyOptions(), now=0.0)
    flags = {s.name: s.payload.one_shot for s in plan.steps if isinstance(s.payload, AwaitReady)}
    assert flags == {"demo-seed-1": True, "demo-web-1": False}
