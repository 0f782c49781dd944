"""One behaviour suite for every backend: the Backend protocol as the planner relies on it.

Each test runs on the in-memory ``fake`` and on the real ``docker`` engine.
What a container *does* (exit with a code, pass or fail its healthcheck)
comes from its command and healthcheck on a real engine and from a script
on the fake; the ``Harness`` sets up both, and waits in real or virtual time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from composer.backends.base import MountSpec
from composer.errors import Conflict, NotFound, Unsupported

from .conftest import TEST_IMAGE, Harness, Specs

# --- lifecycle ----------------------------------------------------------------


def test_create_start_and_observe(harness: Harness) -> None:
    b, specs = harness.backend, harness.specs
    b.create_network(specs.network())
    b.create_volume(specs.volume())
    spec = specs.container(
        networks=(specs.attach(),),
        mounts=(MountSpec(type="volume", source=specs.volume().name, target="/data"),),
        config_hash="abc123",
    )
    cid = b.create_container(spec)
    c = harness.container(spec.name)
    assert (c.id, c.state, c.service, c.number, c.oneoff) == (cid, "created", "app", 1, False)
    assert c.config_hash == "abc123"
    assert dict(c.labels) == dict(spec.labels)
    assert set(c.networks) == {specs.attach().network}
    assert c.volumes == (specs.volume().name,)
    assert c.exit_code is None
    b.start_container(cid)
    c = harness.container(spec.name)
    assert (c.state, c.health, c.exit_code) == ("running", None, None)
    assert b.inspect_container(cid).state == "running"
    state = harness.observe()
    net = state.networks[specs.network().name]
    assert (net.key, net.config_hash, net.external) == ("default", "nh", False)
    vol = state.volumes[specs.volume().name]
    assert (vol.key, vol.config_hash, vol.external) == ("data", "vh", False)
    assert state.images[TEST_IMAGE].id == b.image_id(TEST_IMAGE)


def test_observe_sees_only_the_project_and_flags_foreign_resources(harness: Harness) -> None:
    b, specs = harness.backend, harness.specs
    other = Specs(specs.project + "x")
    b.create_network(other.network())
    try:
        cid = b.create_container(other.container())
        try:
            state = harness.observe()
            assert state.containers == ()
            assert state.networks[other.network().name].external is True
        finally:
            b.remove_container(cid, force=True)
    finally:
        b.remove_network(other.network().name)


def test_one_off_containers(harness: Harness) -> None:
    spec = harness.specs.container(oneoff=True)
    harness.backend.create_container(spec)
    c = harness.container(spec.name)
    assert (c.oneoff, c.number) == (True, None)


def test_stop_and_start_again(harness: Harness) -> None:
    b, spec = harness.backend, harness.specs.container()
    cid = b.create_container(spec)
    b.start_container(cid)
    b.stop_container(cid, timeout=1)
    status = b.inspect_container(cid)
    assert status.state == "exited" and status.exit_code is not None
    b.stop_container(cid, timeout=1)  # stopping a stopped container is fine
    b.start_container(cid)
    assert b.inspect_container(cid).state == "running"


@pytest.mark.parametrize(("signal", "code"), [("SIGKILL", 137), ("SIGTERM", 143), ("SIGINT", 130)])
def test_kill_exit_code_is_128_plus_signal(harness: Harness, signal: str, code: int) -> None:
    b, spec = harness.backend, harness.specs.container()
    cid = b.create_container(spec)
    b.start_container(cid)
    b.kill_container(cid, signal)
    harness.wait_for(lambda: b.inspect_container(cid).state == "exited")
    assert b.inspect_container(cid).exit_code == code
    c = harness.container(spec.name)
    assert (c.state, c.exit_code) == ("exited", code)


def test_exit_code_of_the_command(harness: Harness) -> None:
    b = harness.backend
    spec = harness.exiting(harness.specs.container(), 3)
    cid = b.create_container(spec)
    b.start_container(cid)
    harness.wait_for(lambda: b.inspect_container(cid).state == "exited")
    assert b.inspect_container(cid).exit_code == 3
    assert harness.container(spec.name).exit_code == 3


def test_health_goes_from_starting_to_healthy(harness: Harness) -> None:
    b = harness.backend
    spec = harness.healthy_later(harness.specs.container())
    cid = b.create_container(spec)
    b.start_container(cid)
    assert b.inspect_container(cid).health == "starting"
    assert harness.container(spec.name).health == "starting"
    harness.wait_for(lambda: b.inspect_container(cid).health == "healthy")
    assert harness.container(spec.name).health == "healthy"


def test_failing_healthcheck_becomes_unhealthy(harness: Harness) -> None:
    b = harness.backend
    spec = harness.unhealthy(harness.specs.container())
    cid = b.create_container(spec)
    b.start_container(cid)
    harness.wait_for(lambda: b.inspect_container(cid).health == "unhealthy")
    assert harness.container(spec.name).health == "unhealthy"


def test_pause_and_unpause(harness: Harness) -> None:
    b, spec = harness.backend, harness.specs.container()
    cid = b.create_container(spec)
    b.start_container(cid)
    b.pause_container(cid)
    assert harness.container(spec.name).state == "paused"
    with pytest.raises(Conflict):
        b.pause_container(cid)
    b.unpause_container(cid)
    assert harness.container(spec.name).state == "running"
    with pytest.raises(Conflict):
        b.unpause_container(cid)


def test_rename(harness: Harness) -> None:
    b, specs = harness.backend, harness.specs
    first = b.create_container(specs.container(number=1))
    b.create_container(specs.container(number=2))
    new_name = f"{specs.project}-app-1-renamed"
    b.rename_container(first, new_name)
    assert harness.container(new_name).id == first
    with pytest.raises(Conflict):
        b.rename_container(first, specs.container(number=2).name)


def test_remove(harness: Harness) -> None:
    b, spec = harness.backend, harness.specs.container(mounts=(MountSpec("volume", "/anon"),))
    cid = b.create_container(spec)
    anonymous = harness.container(spec.name).anonymous_volumes
    assert [target for target, _ in anonymous] == ["/anon"]
    assert anonymous[0][1] in harness.observe().volumes
    b.start_container(cid)
    with pytest.raises(Conflict):
        b.remove_container(cid)
    b.remove_container(cid, force=True, volumes=True)
    state = harness.observe()
    assert state.containers == ()
    assert anonymous[0][1] not in state.volumes


# --- errors ---------------------------------------------------------------------


def test_unknown_resources_are_not_found(harness: Harness) -> None:
    b = harness.backend
    missing = f"{harness.specs.project}-missing-1"
    verbs: list[Callable[[], Any]] = [
        lambda: b.start_container(missing),
        lambda: b.stop_container(missing, 1),
        lambda: b.kill_container(missing),
        lambda: b.remove_container(missing),
        lambda: b.rename_container(missing, missing + "x"),
        lambda: b.pause_container(missing),
        lambda: b.inspect_container(missing),
        lambda: b.remove_network(missing),
        lambda: b.remove_volume(missing),
        lambda: b.remove_image("composer-missing:1"),
    ]
    for verb in verbs:
        with pytest.raises(NotFound):
            verb()
    assert b.image_id("composer-missing:1") is None


def test_create_needs_image_and_networks(harness: Harness) -> None:
    b, specs = harness.backend, harness.specs
    with pytest.raises(NotFound):
        b.create_container(specs.container(image="composer-missing:1"))
    # An engine may check networks at create or only at start.
    with pytest.raises(NotFound):
        cid = b.create_container(specs.container(networks=(specs.attach("nope"),)))
        b.start_container(cid)


def test_conflicts(harness: Harness) -> None:
    b, specs = harness.backend, harness.specs
    b.create_network(specs.network())
    b.create_volume(specs.volume())
    with pytest.raises(Conflict):
        b.create_network(specs.network())
    with pytest.raises(Conflict):
        b.create_volume(specs.volume())
    spec = specs.container(
        networks=(specs.attach(),),
        mounts=(MountSpec(type="volume", source=specs.volume().name, target="/data"),),
    )
    cid = b.create_container(spec)
    with pytest.raises(Conflict):
        b.create_container(spec)
    with pytest.raises(Conflict):
        b.kill_container(cid)  # not running
    b.start_container(cid)
    with pytest.raises(Conflict):
        b.remove_network(specs.network().name)
    with pytest.raises(Conflict):
        b.remove_volume(specs.volume().name)
    b.remove_container(cid, force=True)
    b.remove_network(specs.network().name)
    b.remove_volume(specs.volume().name)
    state = harness.observe()
    assert specs.network().name not in state.networks
    assert specs.volume().name not in state.volumes


def test_external_resources_are_never_created(harness: Harness) -> None:
    b, specs = harness.backend, harness.specs
    with pytest.raises(Unsupported):
        b.create_network(specs.network(external=True))
    with pytest.raises(Unsupported):
        b.create_volume(specs.volume(external=True))
