"""Planner benchmarks: reconcile at scale, executor overhead, and DAG vs level-by-level.

Run from the repository root:

    python -m benchmarks.planner_bench

1. reconcile of 1000 services with fan-in dependencies, from nothing and
   from a converged state (target: under 200 ms);
2. executor overhead per step on the fake backend and a fake clock
   (target: under 1 ms per step);
3. 20 services in a 4-level graph, each ready 100 ms after it starts, on the
   fake backend with a real clock: wall time against the 400 ms critical path
   (target: at most 1.2x), beside the same graph run level by level (every
   level waits for the whole previous level to be ready). A second graph with
   staggered readiness shows what the per-level barrier costs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from composer.backends.fake import FakeBackend
from composer.clock import FakeClock, RealClock
from composer.events import NullReporter
from composer.planner.executor import execute
from composer.planner.options import UpOptions
from composer.planner.plan import ContainerRef, Plan, StartContainer, Step, Wait, make_plan
from composer.planner.reconcile import reconcile
from composer.planner.reconcile_context import with_default_network
from composer.schema.model import Project

HEALTH = {"test": ["CMD", "true"]}


def make_project(services: dict[str, Any]) -> Project:
    body = {"name": "bench", "working_dir": "/srv/bench", "services": services}
    return with_default_network(Project.model_validate(body))


def fan_in(n: int, hubs: int = 10) -> Project:
    """``hubs`` base services; every other service depends on three of them and
    on the service before it."""
    services: dict[str, Any] = {}
    for i in range(n):
        deps: dict[str, Any] = {}
        if i >= hubs:
            for h in (i % hubs, (i * 7) % hubs, (i * 13) % hubs):
                deps[f"s{h:04d}"] = {"condition": "service_started"}
            deps[f"s{i - 1:04d}"] = {"condition": "service_started"}
        services[f"s{i:04d}"] = {
            "image": f"img{i % 20}",
            "environment": {"N": str(i)},
            "depends_on": deps,
        }
    return make_project(services)


def best_of(runs: int, fn: Callable[[], object]) -> tuple[float, float]:
    """(median, best) wall time in ms."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def bench_reconcile() -> None:
    p = fan_in(1000)
    images = sorted({s.image or "" for s in p.services.values()})
    clock = FakeClock()
    backend = FakeBackend(clock)
    for ref in images:
        backend.add_image(ref)
    empty = backend.observe("bench", images)
    plan = reconcile(p, empty, UpOptions(), now=0)
    med, best = best_of(5, lambda: reconcile(p, empty, UpOptions(), now=0))
    print(
        f"reconcile 1000 services, nothing exists: {len(plan)} steps, "
        f"median {med:.0f} ms, best {best:.0f} ms (target < 200 ms)"
    )
    start = time.perf_counter()
    result = execute(plan, backend, NullReporter(), parallel=None, clock=clock)
    elapsed = (time.perf_counter() - start) * 1000
    assert result.ok
    print(
        f"execute {len(plan)} steps on the fake backend and a fake clock: {elapsed:.0f} ms, "
        f"{elapsed / len(plan):.3f} ms/step (target < 1 ms/step)"
    )
    converged = backend.observe("bench", images)
    again = reconcile(p, converged, UpOptions(), now=0)
    assert again.empty
    med, best = best_of(5, lambda: reconcile(p, converged, UpOptions(), now=0))
    print(
        f"reconcile 1000 services, converged (empty plan): "
        f"median {med:.0f} ms, best {best:.0f} ms (target < 200 ms)"
    )


def levels_project(ready: Callable[[int, int], float]) -> tuple[Project, dict[str, float]]:
    """4 levels x 5 services; service j of level k depends on services j and j+1
    (mod 5) of level k-1, with ``service_healthy``."""
    services: dict[str, Any] = {}
    delays: dict[str, float] = {}
    for k in range(4):
        for j in range(5):
            name = f"l{k}s{j}"
            deps = {}
            if k:
                for jj in (j, (j + 1) % 5):
                    deps[f"l{k - 1}s{jj}"] = {"condition": "service_healthy"}
            services[name] = {"image": "busybox", "healthcheck": HEALTH, "depends_on": deps}
            delays[name] = ready(k, j)
    return make_project(services), delays


def level_by_level(plan: Plan) -> Plan:
    """The same plan with a barrier per level: each start waits for every
    service of the previous level to be ready, not just its own dependencies."""
    starts = {s.name.split("-")[1]: s for s in plan.steps if s.action == "start"}
    steps: list[Step] = []
    for s in plan.steps:
        service = s.name.split("-")[1] if s.kind == "container" else ""
        if s.action != "start" or service.startswith("l0"):
            steps.append(s)
            continue
        level = int(service[1])
        previous = sorted(n for n in starts if n.startswith(f"l{level - 1}"))
        waits = tuple(
            Wait(n, "service_healthy", True, (ContainerRef(f"bench-{n}-1"),)) for n in previous
        )
        assert isinstance(s.payload, StartContainer)
        deps = {d for d in s.deps if not d.endswith(":start")} | {starts[n].id for n in previous}
        steps.append(replace(s, payload=replace(s.payload, waits=waits), deps=frozenset(deps)))
    return make_plan(steps)


def critical_path(p: Project, delays: dict[str, float]) -> float:
    """Milliseconds until the last service is ready if each starts when its deps are."""
    ready: dict[str, float] = {}
    for name in sorted(p.services):  # names sort level by level
        start = max((ready[d] for d in p.services[name].depends_on), default=0.0)
        ready[name] = start + delays[name]
    return max(ready.values()) * 1000


def until_all_ready(backend: FakeBackend, clock: RealClock) -> None:
    """Like ``up --wait``: the run ends when every container is healthy."""
    ids = [c.id for c in backend.observe("bench").containers]
    while any(backend.inspect_container(i).health != "healthy" for i in ids):
        clock.sleep(0.002)


def run_levels(label: str, ready: Callable[[int, int], float]) -> None:
    p, delays = levels_project(ready)
    critical = critical_path(p, delays)
    figures = []
    for strategy in ("dag", "level-by-level"):
        walls = []
        for _ in range(5):
            clock = RealClock()
            backend = FakeBackend(clock)
            backend.add_image("busybox")
            for name, delay in delays.items():
                backend.script(name, healthy_after=delay)
            plan = reconcile(p, backend.observe("bench", ["busybox"]), UpOptions(), now=0)
            if strategy == "level-by-level":
                plan = level_by_level(plan)
            start = time.perf_counter()
            result = execute(
                plan, backend, NullReporter(), parallel=None, clock=clock, poll_interval=0.002
            )
            until_all_ready(backend, clock)
            walls.append((time.perf_counter() - start) * 1000)
            assert result.ok
        figures.append((strategy, statistics.median(walls)))
    text = ", ".join(f"{s} {w:.0f} ms ({w / critical:.2f}x)" for s, w in figures)
    print(f"{label}: critical path {critical:.0f} ms; {text}")


def bench_levels() -> None:
    run_levels("20 services, 4 levels, each ready after 100 ms", lambda k, j: 0.1)
    # Chains whose slow services sit at different levels: the per-level
    # barrier adds up the slowest of every level, the DAG only a chain's own.
    run_levels(
        "20 services, 4 levels, staggered readiness (100 ms or 20 ms)",
        lambda k, j: 0.1 if j == (2 * k) % 5 else 0.02,
    )


def main() -> None:
    bench_reconcile()
    bench_levels()


if __name__ == "__main__":
    main()
