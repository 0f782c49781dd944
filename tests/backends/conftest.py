"""Fixtures for the backend tests: engines, unique projects, spec factories.

A missing engine skips the engine's tests locally and fails them when
``CI=true``, so that CI always exercises the real engines
(``bash scripts/engines.sh start`` brings up dockerd and ``bb:latest``).
Every test uses its own project name and the fixtures remove whatever
carries that project's label afterwards. The ``harness`` fixture runs a
contract test once per backend (the fake, the real Docker engine and the
native engine, each native test on its own state root with ``bb:latest``
loaded from ``docker save``).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from composer.backends import labels as L
from composer.backends.base import (
    Backend,
    ContainerSpec,
    HealthcheckSpec,
    NetworkAttachment,
    NetworkSpec,
    VolumeSpec,
)
from composer.clock import FakeClock
from composer.errors import BackendError, Unavailable

TEST_IMAGE = "bb:latest"


def engine_missing(reason: str) -> None:
    """Skip locally, fail in CI."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true requires every engine)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_backend() -> Iterator[Any]:
    """A DockerBackend on the engine the environment points at, with bb:latest present."""
    try:
        import docker  # noqa: F401
    except ImportError:
        engine_missing("the docker SDK is not installed")
    from composer.backends.docker import DockerBackend

    backend = DockerBackend(os.environ)
    try:
        backend.api  # noqa: B018  (connects)
    except Unavailable as exc:
        engine_missing(f"no Docker engine: {exc}")
    if backend.image_id(TEST_IMAGE) is None:
        engine_missing(f"{TEST_IMAGE} is missing: run `bash scripts/engines.sh start`")
    yield backend
    backend.close()


def remove_docker_project(backend: Any, project: str) -> None:
    """Remove every container, network and volume labelled with ``project``."""
    api = backend.api
    flt = {"label": [f"{L.LABEL_PROJECT}={project}"]}
    for c in api.containers(all=True, filters=flt):
        with contextlib.suppress(Exception):
            api.remove_container(c["Id"], force=True, v=True)
    for n in api.networks(filters=flt):
        with contextlib.suppress(Exception):
            api.remove_network(n["Id"])
    for v in (api.volumes(filters=flt) or {}).get("Volumes") or []:
        with contextlib.suppress(Exception):
            api.remove_volume(v["Name"])


@pytest.fixture(scope="session")
def bb_archive(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``docker save bb:latest`` once per session, for native state roots to load."""
    import shutil
    import subprocess

    if shutil.which("docker") is None:
        engine_missing("the docker CLI is needed to save bb:latest for the native store")
    path = tmp_path_factory.mktemp("bb") / "bb.tar"
    done = subprocess.run(
        ["docker", "save", "-o", str(path), TEST_IMAGE], capture_output=True, check=False
    )
    if done.returncode != 0:
        engine_missing(f"docker save {TEST_IMAGE} failed: {done.stderr.decode().strip()}")
    return path


def native_missing() -> str | None:
    """Why the native engine cannot run here, or ``None``."""
    if os.geteuid() != 0:
        return "the native engine needs root"
    try:
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                return "no overlayfs in this kernel"
    except OSError:
        return "no /proc/filesystems"
    return None


@pytest.fixture
def native_backend(tmp_path: Path, bb_archive: Any, project: str) -> Iterator[Any]:
    """A NativeBackend on its own state root, with bb:latest loaded; the project is
    removed afterwards (containers, supervisor, networks, volumes)."""
    reason = native_missing()
    if reason:
        engine_missing(reason)
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.images.archive import load

    environ = {**os.environ, "COMPOSER_ROOT": str(tmp_path / "root")}
    backend = NativeBackend(environ)
    load(backend.images, bb_archive)
    created: list[str] = []
    create = backend.create_container

    def tracked(spec: ContainerSpec) -> str:
        cid = str(create(spec))
        created.append(cid)
        return cid

    backend.create_container = tracked  # type: ignore[method-assign]
    try:
        yield backend
    finally:
        remove_native_project(backend, project)
        remove_native_project(backend, project + "x")
        backend.shutdown()
        assert_nothing_left(backend, created)


def assert_nothing_left(backend: Any, container_ids: list[str]) -> None:
    """No record, cgroup or mount of the test's containers is left behind."""
    left = [c for c in container_ids if backend.root.container(c).exists()]
    cgroups = [
        str(d)
        for c in container_ids
        for d in Path("/sys/fs/cgroup").glob(f"*/composer/{c}")
        if d.is_dir()
    ]
    mounts = [
        line for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if str(backend.root.path) in line
    ]  # fmt: skip
    assert (left, cgroups, mounts) == ([], [], []), "the native test left these behind"


def remove_native_project(backend: Any, project: str) -> None:
    """Remove every container, network and volume of ``project`` on a native state root."""
    for c in backend.observe(project).containers:
        with contextlib.suppress(Exception):
            backend.remove_container(c.id, force=True, volumes=True)
    state = backend.observe(project)
    for name, net in state.networks.items():
        if not net.external:
            with contextlib.suppress(Exception):
                backend.remove_network(name)
    for name, vol in state.volumes.items():
        if not vol.external:
            with contextlib.suppress(Exception):
                backend.remove_volume(name)


@pytest.fixture
def project() -> str:
    """A project name no other test uses."""
    return f"ct{uuid.uuid4().hex[:10]}"


@pytest.fixture
def docker_project(docker_backend: Any, project: str) -> Iterator[str]:
    """A unique project on the Docker engine, removed (with all it holds) afterwards."""
    yield project
    remove_docker_project(docker_backend, project)


@dataclass(frozen=True)
class Specs:
    """Builds specs with the labels composer writes, for one project."""

    project: str

    def container(
        self,
        service: str = "app",
        number: int = 1,
        *,
        config_hash: str = "h1",
        oneoff: bool = False,
        **fields: Any,
    ) -> ContainerSpec:
        slug = uuid.uuid4().hex
        labels = L.container_labels(
            project=self.project,
            service=service,
            number=None if oneoff else number,
            config_hash=config_hash,
            image_id="",
            working_dir="/srv",
            oneoff=oneoff,
            slug=slug if oneoff else None,
        )
        labels.pop(L.LABEL_IMAGE)
        labels.update(fields.pop("extra_labels", {}))
        base = ContainerSpec(
            name=(
                L.oneoff_name(self.project, service, slug)
                if oneoff
                else L.container_name(self.project, service, number)
            ),
            service=service,
            number=None if oneoff else number,
            oneoff=oneoff,
            image=TEST_IMAGE,
            labels=labels,
            command=("sleep", "300"),
            init=True,
            stop_timeout=1,
        )
        return replace(base, **fields)

    def network(self, key: str = "default", **fields: Any) -> NetworkSpec:
        base = NetworkSpec(
            name=L.network_name(self.project, key),
            key=key,
            labels=L.network_labels(self.project, key, "nh"),
        )
        return replace(base, **fields)

    def volume(self, key: str = "data", **fields: Any) -> VolumeSpec:
        base = VolumeSpec(
            name=L.volume_name(self.project, key),
            key=key,
            labels=L.volume_labels(self.project, key, "vh"),
        )
        return replace(base, **fields)

    def attach(self, key: str = "default", **fields: Any) -> NetworkAttachment:
        return NetworkAttachment(network=L.network_name(self.project, key), key=key, **fields)


@pytest.fixture
def specs(project: str) -> Specs:
    return Specs(project)


def ignore_backend_errors(fn: Any, *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(BackendError):
        fn(*args, **kwargs)


# --- the contract suites' harness: one test, every backend ---------------------------


@dataclass
class Harness:
    """A backend plus how to script and wait for container behaviour on it."""

    kind: str
    backend: Backend
    specs: Specs
    clock: FakeClock | None = None

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Poll ``predicate`` in real time (docker) or virtual time (fake)."""
        deadline = time.monotonic() + timeout
        waited = 0.0
        while not predicate():
            if self.clock is not None:
                assert waited < timeout, "condition never met in virtual time"
                self.clock.advance(0.1)
                waited += 0.1
            else:
                assert time.monotonic() < deadline, "condition never met"
                time.sleep(0.1)

    def exiting(self, spec: ContainerSpec, code: int) -> ContainerSpec:
        """A container that exits with ``code`` shortly after it starts."""
        if isinstance(self.backend, _fake_backend_type()):
            self.backend.script(spec.service, exit_after=0.2, exit_code=code)
        return replace(spec, command=("sh", "-c", f"sleep 0.2; exit {code}"))

    def healthy_later(self, spec: ContainerSpec) -> ContainerSpec:
        """A container whose healthcheck passes after a moment."""
        if isinstance(self.backend, _fake_backend_type()):
            self.backend.script(spec.service, healthy_after=1.0)
        return replace(
            spec,
            command=("sh", "-c", "sleep 1; exec httpd -f -p 8080 -h /"),
            healthcheck=HealthcheckSpec(
                test=("CMD", "wget", "-q", "--spider", "http://127.0.0.1:8080/bin/busybox"),
                interval=0.5,
                timeout=1,
                retries=20,
            ),
        )

    def unhealthy(self, spec: ContainerSpec) -> ContainerSpec:
        """A container whose healthcheck fails."""
        if isinstance(self.backend, _fake_backend_type()):
            self.backend.script(spec.service, unhealthy_after=1.0)
        return replace(
            spec,
            healthcheck=HealthcheckSpec(
                test=("CMD-SHELL", "exit 1"), interval=0.3, timeout=1, retries=2
            ),
        )

    def observe(self) -> Any:
        return self.backend.observe(self.specs.project, [TEST_IMAGE])

    def container(self, name: str) -> Any:
        found = [c for c in self.observe().containers if c.name == name]
        return found[0] if found else None


def _fake_backend_type() -> type:
    from composer.backends.fake import FakeBackend

    return FakeBackend


@pytest.fixture(params=["fake", "docker", "native"])
def harness(request: pytest.FixtureRequest, specs: Specs) -> Iterator[Harness]:
    if request.param == "fake":
        from composer.backends.fake import FakeBackend

        clock = FakeClock(start=1_000_000.0)
        fake = FakeBackend(clock)
        fake.add_image(TEST_IMAGE)
        yield Harness("fake", fake, specs, clock)
        return
    if request.param == "native":
        yield Harness("native", request.getfixturevalue("native_backend"), specs)
        return
    backend = request.getfixturevalue("docker_backend")
    yield Harness("docker", backend, specs)
    remove_docker_project(backend, specs.project)
