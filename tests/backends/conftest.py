"""Fixtures for the backend tests: engines, unique projects, spec factories.

A missing engine skips the engine's tests locally and fails them when
``CI=true``, so that CI always exercises the real engines
(``bash scripts/engines.sh start`` brings up dockerd and ``bb:latest``).
Every test uses its own project name and the fixtures remove whatever
carries that project's label afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from composer.backends import labels as L
from composer.backends.base import ContainerSpec, NetworkAttachment, NetworkSpec, VolumeSpec
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
