"""Properties of reconcile + execute over random acyclic projects and random
observed states: plans are topologically valid, and executing a plan on the
fake backend converges (reconciling again gives an empty plan)."""

from __future__ import annotations

from typing import Any

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.backends.fake import FakeBackend
from composer.clock import FakeClock
from composer.events import CollectingReporter
from composer.planner.executor import execute
from composer.planner.options import UpOptions
from composer.planner.plan import Plan
from composer.planner.reconcile import reconcile
from composer.planner.specs import image_ref
from composer.schema.model import Project
from tests.planner.planfixtures import project

IMAGES = ("alpine", "busybox", "redis")
NETWORKS = ("default", "front")
HEALTH = {"test": ["CMD", "true"]}


@st.composite
def projects(draw: st.DrawFn, names: tuple[str, ...] = ("a", "b", "c", "d", "e")) -> Project:
    count = draw(st.integers(1, len(names)))
    services: dict[str, Any] = {}
    for i, name in enumerate(names[:count]):
        body: dict[str, Any] = {
            "image": draw(st.sampled_from(IMAGES)),
            "scale": draw(st.integers(0, 2)),
            "networks": {n: None for n in draw(st.sets(st.sampled_from(NETWORKS), min_size=1))},
        }
        if draw(st.booleans()):
            body["environment"] = {"V": str(draw(st.integers(0, 2)))}
        if draw(st.booleans()):
            body["healthcheck"] = HEALTH
        if draw(st.booleans()):
            body["volumes"] = [{"type": "volume", "source": "data", "target": "/data"}]
        deps: dict[str, Any] = {}
        for earlier in names[:i]:
            if draw(st.booleans()):
                healthy = "healthcheck" in services[earlier]
                deps[earlier] = {
                    "condition": "service_healthy" if healthy else "service_started",
                    "restart": draw(st.booleans()),
                    "required": draw(st.booleans()),
                }
        body["depends_on"] = deps
        services[name] = body
    return project(services, networks={"front": {}}, volumes={"data": {}})


def run(p: Project, backend: FakeBackend, clock: FakeClock, options: UpOptions) -> Plan:
    observed = backend.observe(p.name, sorted({image_ref(p, s) for s in p.services}))
    plan = reconcile(p, observed, options, now=clock.now())
    result = execute(plan, backend, CollectingReporter(), parallel=None, clock=clock)
    if not result.ok and any("is paused" in o.text for o in result.failed):
        # Waiting on a paused dependency fails at once (it would never change);
        # once it is unpaused, the same up converges.
        for c in backend.observe(p.name).containers:
            if c.state == "paused":
                backend.unpause_container(c.id)
        return run(p, backend, clock, options)
    assert result.ok, [(o.step.id, o.text) for o in result.failed]
    return plan


def assert_topologically_valid(p: Project, plan: Plan) -> None:
    position = {s.id: i for i, s in enumerate(plan.steps)}
    for s in plan.steps:
        assert all(position[d] < position[s.id] for d in s.deps), s
    graph = plan.graph()
    by_resource = {(s.kind, s.name, s.action): s.id for s in plan.steps}
    for s in plan.steps:
        if s.kind != "container" or s.action not in ("create", "recreate"):
            continue
        service = s.name.split("-")[1]
        before = nx.ancestors(graph, s.id)
        for kind, action, name in _prerequisites(p, service):
            sid = by_resource.get((kind, name, action))
            if sid is not None:
                assert sid in before, (s.id, sid)
    for s in plan.steps:
        if s.kind != "container" or s.action not in ("start", "restart"):
            continue
        service = s.name.split("-")[1]
        before = nx.ancestors(graph, s.id)
        for dep in p.services[service].depends_on:
            for other in plan.steps:
                on_dep = other.name.startswith(f"demo-{dep}-")
                if other.kind == "container" and on_dep and other.action == "start":
                    assert other.id in before, (s.id, other.id)


def _prerequisites(p: Project, service: str) -> list[tuple[str, str, str]]:
    svc = p.services[service]
    out = [("image", "pull", image_ref(p, service))]
    out += [("network", a, f"demo_{n}") for n in svc.networks for a in ("create", "recreate")]
    out += [("volume", "create", "demo_data") for v in svc.volumes if v.source == "data"]
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Project, Project, list[str], bool]:
    before = draw(projects())
    after = draw(projects())
    disturb = draw(st.lists(st.sampled_from(["stop", "remove", "pause"]), max_size=3))
    return before, after, disturb, draw(st.booleans())


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_plans_are_valid_and_executing_them_converges(
    scenario: tuple[Project, Project, list[str], bool],
) -> None:
    before, after, disturb, remove_orphans = scenario
    clock = FakeClock()
    backend = FakeBackend(clock)
    for ref in IMAGES[:2]:
        backend.add_image(ref)
    run(before, backend, clock, UpOptions())
    for i, action in enumerate(disturb):
        containers = backend.observe("demo").containers
        running = [c for c in containers if c.state == "running"]
        if not running:
            continue
        target = running[i % len(running)]
        if action == "pause":
            backend.pause_container(target.id)
            continue
        backend.stop_container(target.id, 0)
        if action == "remove":
            backend.remove_container(target.id)
    options = UpOptions(remove_orphans=remove_orphans)
    observed = backend.observe("demo", sorted({image_ref(after, s) for s in after.services}))
    plan = reconcile(after, observed, options, now=clock.now())
    assert_topologically_valid(after, plan)
    run(after, backend, clock, options)
    again = backend.observe("demo", sorted({image_ref(after, s) for s in after.services}))
    assert reconcile(after, again, options, now=clock.now()).empty
