"""The fake engine's specifics for the CLI's verbs: wording, exact virtual times, scripts."""

from __future__ import annotations

import io

import pytest

from composer.backends import labels as L
from composer.backends.base import ContainerSpec, PortSpec
from composer.backends.fake import FakeBackend
from composer.backends.fake.records import human_duration, status_text
from composer.clock import FakeClock
from composer.errors import BackendError

START = 1_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture
def fake(clock: FakeClock) -> FakeBackend:
    backend = FakeBackend(clock)
    backend.add_image("img", size=1234)
    return backend


def spec(service: str = "web", number: int = 1, **fields: object) -> ContainerSpec:
    labels = L.container_labels(
        project="shop",
        service=service,
        number=number,
        config_hash="h",
        image_id="",
        working_dir="/srv",
    )
    fields.setdefault("command", ("sleep", "300"))
    return ContainerSpec(
        name=f"shop-{service}-{number}",
        service=service,
        image="img",
        labels=labels,
        number=number,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.2, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (2 * 3600, "2 hours"),
        (47 * 3600, "47 hours"),
        (3 * 86400, "3 days"),
        (15 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration_reads_like_docker_ps(seconds: float, words: str) -> None:
    assert human_duration(seconds) == words


@pytest.mark.parametrize(
    ("state", "health", "code", "since", "text"),
    [
        ("created", None, None, None, "Created"),
        ("running", None, None, START - 3, "Up 3 seconds"),
        ("running", "healthy", None, START - 3, "Up 3 seconds (healthy)"),
        ("running", "starting", None, START, "Up Less than a second (health: starting)"),
        ("paused", None, None, START - 120, "Up 2 minutes (Paused)"),
        ("exited", None, 137, START - 5, "Exited (137) 5 seconds ago"),
        ("dead", None, None, None, "Dead"),
    ],
)
def test_status_text(
    state: str, health: str | None, code: int | None, since: float | None, text: str
) -> None:
    assert status_text(state, health, code, since, START) == text  # type: ignore[arg-type]


def test_observe_gives_the_ps_fields(fake: FakeBackend, clock: FakeClock) -> None:
    cid = fake.create_container(
        spec(entrypoint=("sh", "-c"), command=("echo 'a b'",), ports=(PortSpec(80, "8080"),))
    )
    listed = fake.observe("shop").containers[0]
    assert (listed.image, listed.command, listed.status) == (
        "img",
        "sh -c 'echo '\"'\"'a b'\"'\"''",
        "Created",
    )
    fake.start_container(cid)
    clock.advance(61)
    listed = fake.observe("shop").containers[0]
    assert listed.status == "Up About a minute"
    assert [(p.target, p.host_ip, p.host_port) for p in listed.ports] == [(80, "0.0.0.0", 8080)]


def test_a_scripted_exit_emits_die_at_its_exact_time(fake: FakeBackend, clock: FakeClock) -> None:
    fake.script("web", exit_after=2.5, exit_code=3)
    cid = fake.create_container(spec())
    fake.start_container(cid)
    clock.advance(10)
    events = list(fake.events("shop", since=START, until=clock.now()))
    assert [(e.action, e.time) for e in events] == [
        ("create", START),
        ("start", START),
        ("die", START + 2.5),
    ]
    assert fake.wait_container(cid) == 3


def test_wait_blocks_until_the_exit_in_virtual_time(fake: FakeBackend, clock: FakeClock) -> None:
    fake.script("web", exit_after=4, exit_code=9)
    cid = fake.create_container(spec())
    fake.start_container(cid)
    assert fake.wait_container(cid) == 9
    assert START + 4 <= clock.now() < START + 4.2


def test_exec_with_a_tty_writes_everything_to_stdout(fake: FakeBackend) -> None:
    fake.script_exec("shop-web-1", ["env"], stdout=b"A=1\n", stderr=b"warn\n", exit_code=2)
    cid = fake.create_container(spec())
    fake.start_container(cid)
    out, err = io.BytesIO(), io.BytesIO()
    assert fake.exec_run(cid, ["env"], tty=True, stdout=out, stderr=err) == 2
    assert (out.getvalue(), err.getvalue()) == (b"A=1\r\nwarn\r\n", b"")
    assert fake.exec_run(cid, ["other"]) == 0  # unscripted: silent success
    assert [c.args[1] for c in fake.calls_of("exec_run")] == [("env",), ("other",)]


def test_push_publishes_to_the_fake_registry(fake: FakeBackend) -> None:
    local = fake.image_id("img")
    updates: list[str] = []
    fake.push_image("img", lambda u: updates.append(u.status))
    assert updates == ["Pushing", "Pushed"]
    fake.add_image("img", "sha256:other")
    assert fake.pull_image("img") == local
    fake.fail("push_image", "img", BackendError("denied"))
    with pytest.raises(BackendError, match="denied"):
        fake.push_image("img")


def test_list_images_reports_size_and_every_tag(fake: FakeBackend) -> None:
    image_id = fake.image_id("img")
    assert image_id is not None
    fake.add_image("img:alias", image_id)
    [info] = fake.list_images(["img"])
    assert (info.id, info.size, info.created, info.repo_tags) == (
        image_id,
        1234,
        START,
        ("img", "img:alias"),
    )


def test_seeded_containers_keep_their_listing_until_they_change(
    fake: FakeBackend, clock: FakeClock
) -> None:
    cid = fake.create_container(spec(ports=(PortSpec(80),)))
    fake.start_container(cid)
    snapshot = fake.observe("shop")
    copy = FakeBackend(clock)
    copy.seed(snapshot)
    clock.advance(3600)
    assert copy.observe("shop").containers == snapshot.containers
    copy.stop_container(cid, timeout=1)
    assert copy.observe("shop").containers[0].status == "Exited (0) Less than a second ago"
