"""FakeBackend: lifecycle, scripted behaviour on a fake clock, observe, errors, threads."""

from __future__ import annotations

import math
import threading

import pytest

from composer.backends import labels as L
from composer.backends.base import (
    Backend,
    BuildSpec,
    ContainerSpec,
    ContainerStatus,
    HealthcheckSpec,
    MountSpec,
    NetworkAttachment,
    NetworkSpec,
    ProgressUpdate,
    VolumeSpec,
)
from composer.backends.fake import Call, FakeBackend
from composer.clock import FakeClock
from composer.errors import BackendError, Conflict, NotFound, Unavailable, Unsupported

HEALTHCHECK = HealthcheckSpec(test=("CMD", "true"))


def spec(
    service: str = "web",
    number: int = 1,
    *,
    project: str = "shop",
    image: str = "nginx",
    healthcheck: HealthcheckSpec | None = None,
    networks: tuple[str, ...] = ("shop_default",),
    mounts: tuple[MountSpec, ...] = (),
    name: str | None = None,
) -> ContainerSpec:
    labels = L.container_labels(
        project=project,
        service=service,
        number=number,
        config_hash=f"hash-{service}",
        image_id="sha256:img",
        working_dir="/srv",
    )
    return ContainerSpec(
        name=name or L.container_name(project, service, number),
        service=service,
        image=image,
        labels=labels,
        number=number,
        healthcheck=healthcheck,
        networks=tuple(NetworkAttachment(n) for n in networks),
        mounts=mounts,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def fake(clock: FakeClock) -> FakeBackend:
    backend = FakeBackend(clock)
    backend.create_network(
        NetworkSpec("shop_default", "default", labels=L.network_labels("shop", "default", "nh"))
    )
    backend.add_image("nginx")
    return backend


def started(fake: FakeBackend, s: ContainerSpec) -> str:
    cid = fake.create_container(s)
    fake.start_container(cid)
    return cid


def test_satisfies_the_backend_protocol(clock: FakeClock) -> None:
    backend: Backend = FakeBackend(clock)
    assert backend.observe("x").project == "x"


def test_lifecycle(fake: FakeBackend) -> None:
    cid = fake.create_container(spec())
    assert fake.inspect_container(cid) == ContainerStatus("created")
    fake.start_container(cid)
    fake.start_container(cid)  # starting a running container is a no-op
    assert fake.inspect_container("shop-web-1") == ContainerStatus("running")
    fake.pause_container(cid)
    assert fake.inspect_container(cid).state == "paused"
    with pytest.raises(Conflict):
        fake.start_container(cid)
    fake.unpause_container(cid)
    fake.stop_container(cid, 10)
    assert fake.inspect_container(cid) == ContainerStatus("exited", None, 0)
    fake.stop_container(cid, 10)  # stopping a stopped container is a no-op
    fake.start_container(cid)
    assert fake.inspect_container(cid) == ContainerStatus("running")
    fake.kill_container(cid)
    assert fake.inspect_container(cid) == ContainerStatus("exited", None, 137)
    with pytest.raises(Conflict):
        fake.kill_container(cid)
    fake.remove_container(cid)
    with pytest.raises(NotFound):
        fake.inspect_container(cid)


def test_kill_with_signal_names(fake: FakeBackend) -> None:
    cid = started(fake, spec())
    fake.kill_container(cid, "TERM")
    assert fake.inspect_container(cid).exit_code == 143
    fake.start_container(cid)
    with pytest.raises(BackendError, match="invalid signal"):
        fake.kill_container(cid, "SIGNOPE")


def test_errors_follow_the_engine(fake: FakeBackend) -> None:
    cid = started(fake, spec())
    with pytest.raises(Conflict, match="already in use"):
        fake.create_container(spec())
    with pytest.raises(Conflict, match="running"):
        fake.remove_container(cid)
    with pytest.raises(NotFound):
        fake.start_container("nope")
    with pytest.raises(NotFound, match="no such image"):
        fake.create_container(spec("api", image="missing:1"))
    with pytest.raises(NotFound, match="network shop_back not found"):
        fake.create_container(spec("api", networks=("shop_back",)))
    with pytest.raises(Conflict, match="active endpoints"):
        fake.remove_network("shop_default")
    with pytest.raises(Conflict):
        fake.create_network(NetworkSpec("shop_default", "default"))
    with pytest.raises(Unsupported):
        fake.create_network(NetworkSpec("ext", "ext", external=True))
    with pytest.raises(NotFound):
        fake.remove_volume("nope")
    with pytest.raises(Conflict, match="being used"):
        fake.remove_image("nginx")
    fake.remove_container(cid, force=True)
    fake.remove_network("shop_default")
    fake.remove_image("nginx")
    assert fake.image_id("nginx") is None


def test_rename_for_recreate(fake: FakeBackend) -> None:
    old = started(fake, spec())
    new = fake.create_container(spec(name="tmp_shop-web-1"))
    with pytest.raises(Conflict):
        fake.rename_container(new, "shop-web-1")
    fake.stop_container(old, 10)
    fake.remove_container(old)
    fake.rename_container(new, "shop-web-1")
    assert [c.name for c in fake.observe("shop").containers] == ["shop-web-1"]
    assert fake.observe("shop").containers[0].id == new


def test_health_on_the_clock(fake: FakeBackend, clock: FakeClock) -> None:
    fake.script("db", healthy_after=5)
    fake.script("bad", unhealthy_after=0)
    fake.script("slow", unhealthy_after=30)
    db = started(fake, spec("db"))
    bad = started(fake, spec("bad"))
    slow = started(fake, spec("slow"))
    plain = started(fake, spec("plain"))
    checked = started(fake, spec("checked", healthcheck=HEALTHCHECK))
    never = started(fake, spec("never", healthcheck=HealthcheckSpec(test=("NONE",))))
    assert fake.inspect_container(db).health == "starting"
    assert fake.inspect_container(bad).health == "unhealthy"
    assert fake.inspect_container(slow).health == "starting"
    assert fake.inspect_container(plain).health is None
    assert fake.inspect_container(checked).health == "healthy"
    assert fake.inspect_container(never).health is None
    clock.advance(4.9)
    assert fake.inspect_container(db).health == "starting"
    clock.advance(0.1)
    assert fake.inspect_container(db).health == "healthy"
    clock.advance(25)
    assert fake.inspect_container(slow).health == "unhealthy"
    assert fake.inspect_container(bad).health == "unhealthy"


def test_never_healthy(fake: FakeBackend, clock: FakeClock) -> None:
    fake.script("web", healthy_after=math.inf)
    cid = started(fake, spec())
    clock.advance(1e6)
    assert fake.inspect_container(cid) == ContainerStatus("running", "starting")


def test_scripted_exit(fake: FakeBackend, clock: FakeClock) -> None:
    fake.script("migrate", exit_after=3, exit_code=2)
    cid = started(fake, spec("migrate"))
    clock.advance(2.5)
    assert fake.inspect_container(cid) == ContainerStatus("running")
    clock.advance(0.5)
    assert fake.inspect_container(cid) == ContainerStatus("exited", None, 2)
    # a restart runs the script again from the new start time
    fake.start_container(cid)
    assert fake.inspect_container(cid).state == "running"
    clock.advance(3)
    assert fake.observe("shop").containers[0].exit_code == 2


def test_slow_stop_uses_the_clock_and_the_timeout(fake: FakeBackend, clock: FakeClock) -> None:
    fake.script("web", stop_delay=4, stop_exit_code=143)
    cid = started(fake, spec())
    fake.stop_container(cid, 10)
    assert clock.now() == 1004.0
    assert fake.inspect_container(cid).exit_code == 143
    fake.start_container(cid)
    fake.stop_container(cid, 1)
    assert clock.now() == 1005.0
    assert fake.inspect_container(cid).exit_code == 137


def test_scripted_failures(fake: FakeBackend) -> None:
    fake.script("a", fail_create=Unavailable("no space"))
    fake.script("b", fail_start=BackendError("port is already allocated"))
    with pytest.raises(Unavailable, match="no space"):
        fake.create_container(spec("a"))
    cid = fake.create_container(spec("b"))
    with pytest.raises(BackendError, match="port is already allocated"):
        fake.start_container(cid)
    assert fake.inspect_container(cid).state == "created"


def test_injected_failures_by_name_service_and_count(fake: FakeBackend) -> None:
    cid = fake.create_container(spec())
    fake.fail("start_container", "web", Conflict("boom"), times=1)
    with pytest.raises(Conflict, match="boom"):
        fake.start_container(cid)
    fake.start_container(cid)  # only once
    fake.fail("stop_container", "shop-web-1")
    with pytest.raises(BackendError, match="injected"):
        fake.stop_container(cid, 1)
    fake.fail("create_volume", "shop_data", Unavailable("down"))
    with pytest.raises(Unavailable):
        fake.create_volume(VolumeSpec("shop_data", "data"))


def test_images_pull_build_and_registry(fake: FakeBackend, clock: FakeClock) -> None:
    updates: list[ProgressUpdate] = []
    first = fake.pull_image("redis:7", updates.append)
    assert first.startswith("sha256:") and fake.image_id("redis:7") == first
    assert [u.status for u in updates] == ["Pulling", "Pull complete"]
    assert fake.pull_image("redis:7") == first  # same registry content, same id
    newer = fake.publish("redis:7")
    assert fake.pull_image("redis:7") == newer != first
    fake.script_image("postgres:16", duration=7)
    fake.pull_image("postgres:16")
    assert clock.now() == 1007.0
    fake.script_image("private/app", fail=NotFound("pull access denied"))
    with pytest.raises(NotFound, match="pull access denied"):
        fake.pull_image("private/app")
    assert fake.image_id("private/app") is None

    build = BuildSpec(tag="shop-web", context="/srv/web", tags=("shop-web:v1",))
    built = fake.build_image(build)
    assert fake.build_image(build) == built  # cached: same inputs, same image
    assert fake.image_id("shop-web:v1") == built
    fake.touch_build("shop-web")
    assert fake.build_image(build) != built
    assert fake.image_id(built) is None  # the old image lost its tags


def test_observe_reports_everything_created(fake: FakeBackend, clock: FakeClock) -> None:
    fake.create_volume(
        VolumeSpec("shop_data", "data", labels=L.volume_labels("shop", "data", "vh"))
    )
    fake.add_network("shared")
    fake.add_volume("other_project_vol", {L.LABEL_PROJECT: "other"})
    fake.script("db", healthy_after=2)
    mounts = (
        MountSpec("volume", "/data", "shop_data"),
        MountSpec("volume", "/cache"),
        MountSpec("bind", "/src", "/srv/src"),
    )
    db = started(fake, spec("db", mounts=mounts))
    clock.advance(3)
    fake.create_container(spec("web", 2))
    fake.create_container(spec("web", 1, project="other"))
    state = fake.observe("shop", images=["nginx", "absent"])
    assert [(c.name, c.state, c.health, c.number) for c in state.containers] == [
        ("shop-db-1", "running", "healthy", 1),
        ("shop-web-2", "created", None, 2),
    ]
    obs = state.containers[0]
    assert obs.id == db
    assert obs.service == "db" and obs.oneoff is False
    assert obs.config_hash == "hash-db"
    assert obs.image_id == fake.image_id("nginx")
    assert obs.labels[L.LABEL_PROJECT] == "shop"
    assert obs.networks == ("shop_default",)
    assert obs.volumes == ("shop_data",)
    ((target, anon),) = obs.anonymous_volumes
    assert target == "/cache" and anon in state.volumes
    assert obs.created_at == 1000.0
    assert state.networks["shop_default"].key == "default"
    assert state.networks["shop_default"].config_hash == "nh"
    assert state.networks["shop_default"].external is False
    assert state.networks["shared"].external is True
    assert state.volumes["shop_data"].config_hash == "vh"
    assert state.volumes["shop_data"].key == "data"
    assert state.volumes["other_project_vol"].external is True
    assert set(state.images) == {"nginx"}
    assert state.images["nginx"].created_at == 1000.0


def test_remove_with_volumes_drops_anonymous_volumes(fake: FakeBackend) -> None:
    cid = fake.create_container(spec(mounts=(MountSpec("volume", "/cache"),)))
    ((_, anon),) = fake.observe("shop").containers[0].anonymous_volumes
    with pytest.raises(Conflict, match="in use"):
        fake.remove_volume(anon)
    fake.remove_container(cid, volumes=True)
    assert anon not in fake.observe("shop").volumes


def test_missing_named_volume_is_created_unlabelled(fake: FakeBackend) -> None:
    fake.create_container(spec(mounts=(MountSpec("volume", "/d", "shop_auto"),)))
    vol = fake.observe("shop").volumes["shop_auto"]
    assert vol.labels == {} and vol.external is True


def test_call_log(fake: FakeBackend, clock: FakeClock) -> None:
    cid = fake.create_container(spec())
    clock.advance(1)
    fake.start_container(cid)
    fake.stop_container(cid, 3)
    assert fake.calls[-3:] == [
        Call("create_container", ("shop-web-1",), 1000.0),
        Call("start_container", ("shop-web-1",), 1001.0),
        Call("stop_container", ("shop-web-1", 3), 1001.0),
    ]
    assert fake.verbs() == [
        "create_network",
        "create_container",
        "start_container",
        "stop_container",
    ]
    assert [c.args for c in fake.calls_of("start_container")] == [("shop-web-1",)]
    assert fake.container(cid).name == "shop-web-1"


def test_seed_from_observed_state(fake: FakeBackend, clock: FakeClock) -> None:
    fake.script("db", healthy_after=1)
    started(fake, spec("db", healthcheck=HEALTHCHECK))
    fake.create_volume(VolumeSpec("shop_data", "data", labels=L.volume_labels("shop", "data")))
    clock.advance(2)
    snapshot = fake.observe("shop", images=["nginx"])
    copy = FakeBackend(clock)
    copy.seed(snapshot)
    again = copy.observe("shop", images=["nginx"])
    assert again.containers == snapshot.containers
    assert again.networks == snapshot.networks
    assert again.images == snapshot.images
    assert set(again.volumes) == set(snapshot.volumes)
    # the copy can carry out a plan: stop and remove the seeded container
    (db,) = again.containers
    copy.stop_container(db.id, 10)
    copy.remove_container(db.id)
    assert copy.observe("shop").containers == ()
    assert len(fake.observe("shop").containers) == 1  # the original is untouched


def test_concurrent_use_from_threads(clock: FakeClock) -> None:
    """Many threads creating, starting and waiting on health at once."""
    fake = FakeBackend(clock)
    fake.create_network(NetworkSpec("shop_default", "default"))
    fake.add_image("nginx")
    for i in range(20):
        fake.script(f"s{i}", healthy_after=float(i % 5))
    errors: list[BaseException] = []
    ready_at: dict[str, float] = {}
    for _ in range(20):
        clock.begin_task()

    def worker(i: int) -> None:
        try:
            cid = fake.create_container(spec(f"s{i}"))
            fake.start_container(cid)
            while fake.inspect_container(cid).health != "healthy":
                clock.sleep(0.5)
            ready_at[f"s{i}"] = clock.now()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            clock.end_task()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors
    assert all(not t.is_alive() for t in threads)
    assert ready_at == {f"s{i}": 1000.0 + (i % 5) for i in range(20)}
    assert len(fake.observe("shop").containers) == 20
