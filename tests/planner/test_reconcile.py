"""reconcile: Project + ObservedState + options -> plan text, against golden files.

Each case names a golden file ``golden/<case>.txt``; run with
``COMPOSER_UPDATE_GOLDEN=1`` to rewrite them after an intended change, then
review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from composer.backends.base import ObservedContainer, ObservedImage, ObservedState
from composer.errors import PlanError
from composer.planner.options import (
    CreateOptions,
    DownOptions,
    KillOptions,
    Options,
    PauseOptions,
    RestartOptions,
    RmOptions,
    StartOptions,
    StopOptions,
    UnpauseOptions,
    UpOptions,
)
from composer.planner.plan import RecreateContainer, StartContainer
from composer.planner.reconcile import reconcile
from composer.schema.model import Project
from tests.planner.planfixtures import change, converged, empty, project, without

GOLDEN = Path(__file__).parent / "golden"
NOW = 1000.0 + 3 * 86400

HEALTH = {"test": ["CMD", "true"]}
STACK = {
    "db": {
        "image": "postgres:16",
        "healthcheck": HEALTH,
        "volumes": [{"type": "volume", "source": "data", "target": "/var/lib/postgresql/data"}],
    },
    "cache": {"image": "redis:7"},
    "web": {
        "image": "nginx:1.27",
        "depends_on": {
            "db": {"condition": "service_healthy", "restart": True},
            "cache": {"condition": "service_started", "required": False},
        },
        "networks": {"front": None, "default": None},
    },
}
TOP = {"networks": {"front": {}}, "volumes": {"data": {}}}


def stack(**overrides: Any) -> Project:
    services = {k: dict(v) for k, v in STACK.items()}
    for name, body in overrides.items():
        if body is None:
            services.pop(name, None)
        else:
            services[name] = {**services.get(name, {}), **body}
    return project(services, **TOP)


BASE = stack()
CONVERGED = converged(BASE)


def oneoff(observed: ObservedState, service: str) -> ObservedState:
    extra = ObservedContainer(
        id="f" * 64,
        name=f"demo-{service}-run-0123456789ab",
        service=service,
        number=None,
        oneoff=True,
        state="running",
    )
    return replace(observed, containers=(*observed.containers, extra))


def orphan(observed: ObservedState, service: str) -> ObservedContainer:
    return ObservedContainer(
        id="e" * 64,
        name=f"demo-{service}-1",
        service=service,
        number=1,
        oneoff=False,
        state="running",
        networks=("demo_default",),
    )


def with_orphan(observed: ObservedState, service: str) -> ObservedState:
    return replace(observed, containers=(*observed.containers, orphan(observed, service)))


def aged(observed: ObservedState, ref: str, created_at: float | None) -> ObservedState:
    images = dict(observed.images)
    images[ref] = replace(images[ref], created_at=created_at)
    return replace(observed, images=images)


@dataclass(frozen=True)
class Case:
    name: str
    project: Project
    observed: Callable[[Project], ObservedState]
    options: Options


def conv(p: Project) -> ObservedState:
    return converged(p)


def scaled(n: int) -> Project:
    return stack(web={"scale": n})


CASES = [
    Case("up_fresh", BASE, empty, UpOptions()),
    Case("up_converged", BASE, conv, UpOptions()),
    Case(
        "up_config_changed",
        stack(cache={"environment": {"A": "1"}}),
        lambda p: CONVERGED,
        UpOptions(),
    ),
    Case(
        "up_dependency_recreated_restarts_dependent",
        stack(db={"environment": {"A": "1"}}),
        lambda p: CONVERGED,
        UpOptions(),
    ),
    Case(
        "up_image_changed",
        BASE,
        lambda p: replace(
            CONVERGED,
            images={**CONVERGED.images, "redis:7": ObservedImage("redis:7", "sha256:new", 1000.0)},
        ),
        UpOptions(),
    ),
    Case(
        "up_missing_network",
        BASE,
        lambda p: change(CONVERGED, "demo-web-1", networks=("demo_default",)),
        UpOptions(),
    ),
    Case(
        "up_missing_volume", BASE, lambda p: change(CONVERGED, "demo-db-1", volumes=()), UpOptions()
    ),
    Case(
        "up_missing_network_resource", BASE, lambda p: without(CONVERGED, "demo_front"), UpOptions()
    ),
    Case(
        "up_namespace_parent_recreated",
        project(
            {
                "vpn": {"image": "vpn", "environment": {"V": "2"}},
                "app": {"image": "app", "network_mode": "service:vpn"},
            }
        ),
        lambda p: change(converged(p), "demo-vpn-1", config_hash="old"),
        UpOptions(),
    ),
    Case(
        "up_volumes_from_parent_recreated",
        project(
            {"data": {"image": "busybox"}, "app": {"image": "app", "volumes_from": ["data:ro"]}}
        ),
        lambda p: change(converged(p), "demo-data-1", config_hash="old"),
        UpOptions(),
    ),
    Case(
        "up_start_stopped",
        BASE,
        lambda p: change(CONVERGED, "demo-cache-1", state="exited"),
        UpOptions(),
    ),
    Case("up_scale_flag", BASE, conv, UpOptions(scale={"web": 3})),
    Case("up_scale_key", scaled(3), lambda p: CONVERGED, UpOptions()),
    Case(
        "up_deploy_replicas",
        stack(web={"deploy": {"replicas": 2}}),
        lambda p: CONVERGED,
        UpOptions(),
    ),
    Case("up_scale_down_highest_first", BASE, lambda p: converged(scaled(4)), UpOptions()),
    Case(
        "up_scale_down_obsolete_first",
        BASE,
        lambda p: change(converged(scaled(3)), "demo-web-1", config_hash="old"),
        UpOptions(),
    ),
    Case("up_scale_zero", stack(cache={"scale": 0}), lambda p: CONVERGED, UpOptions()),
    Case(
        "up_force_recreate_named",
        BASE,
        lambda p: CONVERGED,
        UpOptions(services=("web",), force_recreate=True),
    ),
    Case(
        "up_always_recreate_deps",
        BASE,
        lambda p: CONVERGED,
        UpOptions(services=("web",), always_recreate_deps=True),
    ),
    Case(
        "up_no_recreate",
        stack(web={"environment": {"X": "1"}}),
        lambda p: change(CONVERGED, "demo-web-1", state="exited"),
        UpOptions(no_recreate=True),
    ),
    Case("up_no_deps", BASE, empty, UpOptions(services=("web",), no_deps=True)),
    Case("up_selected_with_deps", BASE, empty, UpOptions(services=("web",))),
    Case("up_no_start", BASE, empty, UpOptions(no_start=True)),
    Case("create", BASE, empty, CreateOptions()),
    Case("up_oneoff_is_no_replica", BASE, lambda p: oneoff(CONVERGED, "web"), UpOptions()),
    Case("up_orphans_warn", BASE, lambda p: with_orphan(CONVERGED, "old"), UpOptions()),
    Case(
        "up_orphans_remove",
        BASE,
        lambda p: with_orphan(CONVERGED, "old"),
        UpOptions(remove_orphans=True),
    ),
    Case(
        "up_orphans_ignored",
        BASE,
        lambda p: with_orphan(CONVERGED, "old"),
        UpOptions(ignore_orphans=True),
    ),
    Case(
        "up_profile_disabled_is_no_orphan",
        project({**STACK, "debug": {"image": "busybox", "profiles": ["debug"]}}, **TOP).model_copy(
            update={
                "services": BASE.services,
                "disabled_services": {
                    "debug": project({"debug": {"image": "busybox"}}).services["debug"]
                },
            }
        ),
        lambda p: with_orphan(CONVERGED, "debug"),
        UpOptions(),
    ),
    Case(
        "up_network_diverged",
        stack().model_copy(
            update={
                "networks": {
                    **BASE.networks,
                    "front": BASE.networks["front"].model_copy(update={"internal": True}),
                }
            }
        ),
        lambda p: CONVERGED,
        UpOptions(),
    ),
    Case(
        "up_external_network_present",
        project(
            {"app": {"image": "app", "networks": {"shared": None}}},
            networks={"shared": {"external": True, "name": "shared"}},
        ),
        conv,
        UpOptions(),
    ),
    Case(
        "pull_policy_always",
        stack(cache={"pull_policy": "always"}),
        lambda p: CONVERGED,
        UpOptions(),
    ),
    Case("pull_flag_always", BASE, lambda p: CONVERGED, UpOptions(pull="always")),
    Case("pull_flag_never_present", BASE, lambda p: CONVERGED, UpOptions(pull="never")),
    Case(
        "pull_policy_daily_stale",
        stack(cache={"pull_policy": "daily"}),
        lambda p: CONVERGED,
        UpOptions(),
    ),
    Case(
        "pull_policy_weekly_fresh",
        stack(cache={"pull_policy": "weekly"}),
        lambda p: CONVERGED,
        UpOptions(),
    ),
    Case(
        "pull_policy_every_duration",
        stack(cache={"pull_policy": "every_12h"}),
        lambda p: aged(CONVERGED, "redis:7", NOW - 13 * 3600),
        UpOptions(),
    ),
    Case("pull_policy_missing_absent", BASE, lambda p: without(CONVERGED, "redis:7"), UpOptions()),
    Case(
        "build_missing_image",
        project({"app": {"build": {"context": "/srv/demo/app"}}}),
        empty,
        UpOptions(),
    ),
    Case(
        "build_flag",
        project({"app": {"build": {"context": "/srv/demo/app"}}}),
        conv,
        UpOptions(build=True),
    ),
    Case(
        "build_pull_policy",
        project(
            {
                "app": {
                    "image": "me/app",
                    "build": {"context": "/srv/demo/app"},
                    "pull_policy": "build",
                }
            }
        ),
        empty,
        UpOptions(),
    ),
    Case(
        "build_never_missing",
        project(
            {
                "app": {
                    "image": "me/app",
                    "build": {"context": "/srv/demo/app"},
                    "pull_policy": "never",
                }
            }
        ),
        empty,
        UpOptions(),
    ),
    Case("down", BASE, conv, DownOptions()),
    Case("down_volumes", BASE, conv, DownOptions(volumes=True)),
    Case(
        "down_rmi_local",
        project({"app": {"build": {"context": "/srv/demo/app"}}, "db": {"image": "postgres"}}),
        conv,
        DownOptions(rmi="local"),
    ),
    Case(
        "down_rmi_all",
        project({"app": {"build": {"context": "/srv/demo/app"}}, "db": {"image": "postgres"}}),
        conv,
        DownOptions(rmi="all"),
    ),
    Case(
        "down_oneoffs_and_orphans_warn",
        BASE,
        lambda p: with_orphan(oneoff(CONVERGED, "web"), "old"),
        DownOptions(),
    ),
    Case(
        "down_remove_orphans",
        BASE,
        lambda p: with_orphan(CONVERGED, "old"),
        DownOptions(remove_orphans=True),
    ),
    Case("start", BASE, lambda p: converged(p, state="exited"), StartOptions()),
    Case("stop", BASE, conv, StopOptions()),
    Case("restart", BASE, conv, RestartOptions()),
    Case("restart_no_deps", BASE, conv, RestartOptions(services=("web",), no_deps=True)),
    Case("kill", BASE, conv, KillOptions(signal="SIGTERM")),
    Case(
        "rm_stopped_only",
        BASE,
        lambda p: change(CONVERGED, "demo-cache-1", state="exited"),
        RmOptions(),
    ),
    Case("rm_stop", BASE, conv, RmOptions(stop=True, volumes=True)),
    Case("pause", BASE, conv, PauseOptions()),
    Case(
        "unpause", BASE, lambda p: change(CONVERGED, "demo-web-1", state="paused"), UnpauseOptions()
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_plan(case: Case) -> None:
    plan = reconcile(case.project, case.observed(case.project), case.options, now=NOW)
    text = str(plan) + "\n"
    path = GOLDEN / f"{case.name}.txt"
    if os.environ.get("COMPOSER_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text()


def test_every_golden_file_has_a_case() -> None:
    names = {c.name for c in CASES}
    assert {p.stem for p in GOLDEN.glob("*.txt")} == names


@pytest.mark.parametrize(
    ("p", "observed", "options", "message"),
    [
        (
            stack(),
            without(CONVERGED, "postgres:16"),
            UpOptions(pull="never"),
            "image postgres:16 of service db is missing and pull_policy is never",
        ),
        (
            project(
                {"app": {"image": "app", "networks": {"shared": None}}},
                networks={"shared": {"external": True, "name": "shared"}},
            ),
            ObservedState("demo"),
            UpOptions(),
            "network shared declared as external",
        ),
        (
            project(
                {
                    "app": {
                        "image": "app",
                        "volumes": [{"type": "volume", "source": "v", "target": "/v"}],
                    }
                },
                volumes={"v": {"external": True}},
            ),
            ObservedState("demo"),
            UpOptions(),
            "volume v declared as external",
        ),
        (
            stack(db={"container_name": "pg", "scale": 2}),
            CONVERGED,
            UpOptions(),
            "cannot have 2 containers",
        ),
        (
            project({"app": {"build": {"context": "."}}}),
            ObservedState("demo"),
            UpOptions(no_build=True),
            "--no-build",
        ),
        (stack(), CONVERGED, UpOptions(services=("nope",)), "no such service: nope"),
    ],
)
def test_plan_errors(p: Project, observed: ObservedState, options: Options, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        reconcile(p, observed, options, now=NOW)


def test_diverged_volume_is_an_error_with_a_hint() -> None:
    p = stack().model_copy(
        update={"volumes": {"data": BASE.volumes["data"].model_copy(update={"driver": "nfs"})}}
    )
    with pytest.raises(PlanError) as info:
        reconcile(p, CONVERGED, UpOptions(), now=NOW)
    assert "different configuration" in info.value.message
    assert info.value.hint is not None and "down --volumes" in info.value.hint


def test_conflicting_flags() -> None:
    with pytest.raises(PlanError, match="--force-recreate and --no-recreate"):
        UpOptions(force_recreate=True, no_recreate=True)


def test_recreate_carries_anonymous_volumes_unless_renewed() -> None:
    p = stack(cache={"environment": {"A": "1"}, "volumes": [{"type": "volume", "target": "/data"}]})
    observed = change(CONVERGED, "demo-cache-1", anonymous_volumes=(("/data", "anon123"),))
    for renew, source in ((False, "anon123"), (True, None)):
        plan = reconcile(p, observed, UpOptions(renew_anon_volumes=renew), now=NOW)
        payload = plan.step("container:demo-cache-1:recreate").payload
        assert isinstance(payload, RecreateContainer)
        [mount] = [m for m in payload.spec.mounts if m.target == "/data"]
        assert mount.source == source
        assert payload.spec.labels["com.docker.compose.replace"] == "demo-cache-1"
        assert payload.temp_name == f"{'0' * 12}_demo-cache-1"


def test_start_waits_on_dependency_conditions() -> None:
    plan = reconcile(BASE, empty(BASE), UpOptions(), now=NOW)
    start = plan.step("container:demo-web-1:start")
    assert isinstance(start.payload, StartContainer)
    [wait] = start.payload.waits
    assert (wait.service, wait.condition, wait.required) == ("db", "service_healthy", True)
    assert "container:demo-db-1:start" in start.deps
    assert "container:demo-cache-1:start" in start.optional_deps


def test_reconcile_is_pure_and_stable() -> None:
    a = reconcile(BASE, empty(BASE), UpOptions(), now=NOW)
    b = reconcile(BASE, empty(BASE), UpOptions(), now=NOW)
    assert a == b and str(a) == str(b)


SERVICE_CONTEXT = {
    "app": {
        "build": {"context": "/srv/demo/app", "additional_contexts": {"base": "service:base"}},
    },
    "base": {"build": {"context": "/srv/demo/base"}},
}


def test_a_build_reading_another_services_image_waits_for_its_build() -> None:
    from composer.planner.plan import BuildImage

    p = project(SERVICE_CONTEXT)
    plan = reconcile(p, empty(p), UpOptions(services=("app",)), now=NOW)
    app = plan.step("image:demo-app:build")
    base = plan.step("image:demo-base:build")  # planned although base is not brought up
    assert base.id in app.deps
    assert isinstance(app.payload, BuildImage)
    assert app.payload.spec.additional_contexts == {"base": "docker-image://demo-base"}
    assert not any(s.id.startswith("container:demo-base") for s in plan.steps)


def test_build_contexts_in_a_cycle_are_a_configuration_error() -> None:
    from composer.errors import DependencyCycleError

    cyclic = dict(SERVICE_CONTEXT)
    cyclic["base"] = {
        "build": {"context": "/srv/demo/base", "additional_contexts": {"x": "service:app"}}
    }
    p = project(cyclic)
    with pytest.raises(DependencyCycleError, match="app -> base -> app"):
        reconcile(p, empty(p), UpOptions(), now=NOW)
