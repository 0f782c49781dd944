"""Docker backend: post_start and pre_stop hooks run in the container, from any process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from composer.backends.base import HookSpec, MountSpec
from composer.backends.docker import DockerBackend
from composer.errors import BackendError

from .conftest import Specs


def hooked(specs: Specs, host_dir: Path, **fields: Any) -> Any:
    return specs.container(
        mounts=(MountSpec(type="bind", source=str(host_dir), target="/out"),),
        post_start=(
            HookSpec(
                command=("sh", "-c", 'echo "$PHASE $(id -u) $(pwd)" > /out/post'),
                user="1000",
                working_dir="/tmp",
                environment={"PHASE": "started"},
            ),
        ),
        pre_stop=(HookSpec(command=("sh", "-c", "echo stopping > /out/pre")),),
        **fields,
    )


def test_hooks_run_around_start_and_stop(
    docker_backend: Any, docker_project: str, tmp_path: Path
) -> None:
    tmp_path.chmod(0o777)
    spec = hooked(Specs(docker_project), tmp_path)
    cid = docker_backend.create_container(spec)
    docker_backend.start_container(cid)
    assert (tmp_path / "post").read_text() == "started 1000 /tmp\n"
    assert not (tmp_path / "pre").exists()
    docker_backend.stop_container(cid, timeout=1)
    assert (tmp_path / "pre").read_text() == "stopping\n"
    # Stopping a stopped container does not fail on its pre_stop hook.
    docker_backend.stop_container(cid, timeout=1)


def test_hooks_survive_into_another_process(
    docker_backend: Any, docker_project: str, tmp_path: Path
) -> None:
    tmp_path.chmod(0o777)
    cid = docker_backend.create_container(hooked(Specs(docker_project), tmp_path))
    later = DockerBackend(os.environ)  # knows the container only from the engine
    later.start_container(cid)
    assert (tmp_path / "post").exists()
    later.stop_container(cid, timeout=1)
    assert (tmp_path / "pre").exists()


def test_observe_teaches_hooks_without_an_inspect(
    docker_backend: Any, docker_project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A no-op ``up`` starts an exited container it only listed: no inspect per start."""
    tmp_path.chmod(0o777)
    cid = docker_backend.create_container(hooked(Specs(docker_project), tmp_path))
    later = DockerBackend(os.environ)
    later.observe(docker_project)
    inspected: list[str] = []
    real = type(later.api).inspect_container

    def spy(self: Any, container: str) -> Any:
        inspected.append(container)
        return real(self, container)

    monkeypatch.setattr(type(later.api), "inspect_container", spy)
    later.start_container(cid)
    assert (tmp_path / "post").exists()
    assert inspected == []


def test_failing_post_start_hook_is_an_error(docker_backend: Any, docker_project: str) -> None:
    spec = Specs(docker_project).container(
        post_start=(HookSpec(command=("sh", "-c", "echo broken >&2; exit 4")),)
    )
    cid = docker_backend.create_container(spec)
    with pytest.raises(BackendError, match=r"post_start hook .* exited with 4: broken"):
        docker_backend.start_container(cid)


def test_containers_without_hooks_carry_no_hook_label(
    docker_backend: Any, docker_project: str
) -> None:
    spec = Specs(docker_project).container()
    cid = docker_backend.create_container(spec)
    labels = docker_backend.api.inspect_container(cid)["Config"]["Labels"]
    assert labels == dict(spec.labels)
