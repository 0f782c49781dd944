"""Fixtures of the supervisor tests: a project with its own state root, records, cleanup."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from composer.backends.base import ContainerSpec
from composer.backends.native.runtime.spec import LaunchSpec, RootfsSpec
from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor import records as R
from composer.backends.native.supervisor.client import SupervisorClient
from tests.backends.native.nativeenv import busybox_rootfs, runtime_missing

HERE = Path(__file__).resolve().parent
PLAIN = f"{HERE / 'plain_launcher.py'}:PlainProcessLauncher"


def poll(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """``check()``'s first truthy value, polled until ``timeout`` (then the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    return R.pid_start_time(pid) is not None and not R.pid_is_zombie(pid)


@dataclass
class Project:
    root: StateRoot
    name: str
    client: SupervisorClient
    ids: list[str] = field(default_factory=list)
    lower: Path | None = None
    """The busybox layer, for containers on the real runtime."""
    cgroups: list[str] = field(default_factory=list)

    def add(
        self,
        args: tuple[str, ...],
        *,
        launch: LaunchSpec | None = None,
        cid: str | None = None,
        **record: Any,
    ) -> str:
        cid = cid or uuid.uuid4().hex + uuid.uuid4().hex
        spec = ContainerSpec(
            name=f"{self.name}-c{len(self.ids) + 1}",
            service="svc",
            image="bb:latest",
            labels={"com.docker.compose.project": self.name},
        )
        launch = launch or LaunchSpec(id=cid, rootfs=RootfsSpec("/"), args=args)
        fields: dict[str, Any] = {
            "id": cid,
            "name": spec.name,
            "project": self.name,
            "service": "svc",
            "created_at": time.time(),
            "spec": R.spec_to_json(spec),
            "launch": json.loads(launch.to_json()),
            "stop_timeout": 2.0,
        }
        fields.update(record)
        self.root.container(cid).mkdir(parents=True, exist_ok=True)
        R.write_record(self.root, R.ContainerRecord(**fields))
        self.ids.append(cid)
        return cid

    def add_box(self, *args: str, init: bool = False, **record: Any) -> str:
        """A container on the real runtime: busybox overlay, Docker's defaults, own cgroup."""
        from composer.backends.native.runtime import caps
        from composer.backends.native.runtime.spec import CgroupSpec

        assert self.lower is not None, "use the runtime_project fixture"
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        d = self.root.container(cid)
        for sub in ("upper", "work", "rootfs"):
            (d / sub).mkdir(parents=True)
        cgroup = f"composer-test/{self.name}-{cid[:12]}"
        self.cgroups.append(cgroup)
        launch = LaunchSpec(
            id=cid,
            rootfs=RootfsSpec(
                str(d / "rootfs"), (str(self.lower),), str(d / "upper"), str(d / "work")
            ),
            args=args,
            env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
            hostname=cid[:12],
            capabilities=caps.DOCKER_DEFAULT_CAPS,
            cgroup=CgroupSpec(cgroup),
            init=init,
        )
        return self.add(args, launch=launch, cid=cid, **record)

    poll = staticmethod(poll)
    alive = staticmethod(alive)

    def state(self, cid: str) -> R.ContainerRunState:
        return R.read_state(self.root, cid)

    def supervisor_pid(self) -> int | None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int((self.root.project(self.name) / "supervisor.pid").read_text().strip())
        return None

    def cleanup(self) -> None:
        """Kill every container process and the supervisor, whatever state the test left."""
        pid = self.supervisor_pid()
        if pid and alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for cid in self.ids:
            st = self.state(cid)
            if st.pid and R.same_process(st.pid, st.pid_start_time):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(st.pid, signal.SIGKILL)
        for path in self.cgroups:
            from composer.backends.native.runtime.cgroups import Cgroup

            with contextlib.suppress(OSError, TimeoutError):
                Cgroup(path).remove()


def make_project(
    tmp_path: Path, launcher: str | None, lower: Path | None = None
) -> Iterator[Project]:
    root = StateRoot(tmp_path / "root").ensure()
    name = f"sv{uuid.uuid4().hex[:10]}"
    p = Project(root, name, SupervisorClient(root, name, launcher=launcher), lower=lower)
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Project]:
    """A project whose supervisor runs containers as plain processes (``plain_launcher.py``)."""
    yield from make_project(tmp_path, PLAIN)


@pytest.fixture(scope="session")
def busybox_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rootfs made as ``scripts/engines.sh`` makes bb:latest (busybox-static and its links)."""
    reason = runtime_missing()
    if reason:
        from tests.backends.conftest import engine_missing

        engine_missing(reason)
    return busybox_rootfs(tmp_path_factory.mktemp("bb") / "lower")


@pytest.fixture
def runtime_project(tmp_path: Path, busybox_layer: Path) -> Iterator[Project]:
    """A project whose supervisor runs containers with the real runtime."""
    yield from make_project(tmp_path, None, busybox_layer)
