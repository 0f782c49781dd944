"""Fixtures for the runtime tests: a busybox rootfs, a subreaper, and a ``run`` helper.

Every container gets its own overlay upper/work dirs under ``tmp_path`` and a
unique cgroup under ``composer-test/``; the ``box`` fixture kills what is
left and removes the cgroup after the test, even when it failed. Tests need
root, overlayfs and namespaces: they skip locally without them and fail in
CI (``engine_missing``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.runtime import caps, syscalls
from composer.backends.native.runtime.cgroups import Cgroup, remove_empty_parent
from composer.backends.native.runtime.launch import BeforeExec, launch
from composer.backends.native.runtime.spec import (
    CgroupSpec,
    Launched,
    LaunchSpec,
    RootfsSpec,
    Stdio,
)
from tests.backends.conftest import engine_missing
from tests.backends.native.nativeenv import busybox_rootfs, runtime_missing

TEST_CGROUP_PARENT = "composer-test"


@pytest.fixture(scope="session")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox rootfs (the image's single layer), shared read-only by every test."""
    reason = runtime_missing()
    if reason:
        engine_missing(reason)
    syscalls.set_child_subreaper()
    return busybox_rootfs(tmp_path_factory.mktemp("bb") / "lower")


@pytest.fixture(scope="session", autouse=True)
def _remove_test_cgroup_parent() -> Iterator[None]:
    yield
    if os.geteuid() == 0:
        remove_empty_parent(TEST_CGROUP_PARENT)


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Box:
    """Builds specs for one test and runs them; remembers what to clean up."""

    base: Path
    lower: Path
    cgroups: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    count: int = 0

    def spec(self, *args: str, **overrides: Any) -> LaunchSpec:
        self.count += 1
        d = self.base / f"c{self.count}"
        for sub in ("upper", "work", "rootfs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        cid = f"t{uuid.uuid4().hex[:12]}"
        cg = f"{TEST_CGROUP_PARENT}/{cid}"
        self.cgroups.append(cg)
        base = LaunchSpec(
            id=cid,
            rootfs=RootfsSpec(
                str(d / "rootfs"), (str(self.lower),), str(d / "upper"), str(d / "work")
            ),
            args=args,
            env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
            hostname=cid[:12],
            capabilities=caps.DOCKER_DEFAULT_CAPS,
            cgroup=CgroupSpec(cg),
        )
        if "cgroup" in overrides and overrides["cgroup"] is not None:
            self.cgroups.append(overrides["cgroup"].path)
        return replace(base, **overrides)

    def start(
        self, spec: LaunchSpec, stdio: Stdio | None = None, before_exec: BeforeExec | None = None
    ) -> Launched:
        if stdio is None:
            null = os.open(os.devnull, os.O_RDWR)
            try:
                started = launch(spec, Stdio(null, null, null), before_exec)
            finally:
                os.close(null)
        else:
            started = launch(spec, stdio, before_exec)
        self.pids.append(started.pid)
        return started

    def run(self, spec: LaunchSpec, stdin: bytes = b"") -> Result:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            started = self.start(spec, Stdio(in_r, out_w, err_w))
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        with contextlib.suppress(BrokenPipeError):
            os.write(in_w, stdin)
        os.close(in_w)
        with os.fdopen(out_r, "rb") as out, os.fdopen(err_r, "rb") as err:
            data_out = out.read()
            data_err = err.read()
        _, status = os.waitpid(started.pid, 0)
        self.pids.remove(started.pid)
        return Result(os.waitstatus_to_exitcode(status), data_out.decode(), data_err.decode())

    def sh(self, script: str, **overrides: Any) -> Result:
        return self.run(self.spec("sh", "-c", script, **overrides))

    def cleanup(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        for path in self.cgroups:
            with contextlib.suppress(OSError, TimeoutError):
                Cgroup(path).remove()


@pytest.fixture
def box(lower: Path, tmp_path: Path) -> Iterator[Box]:
    b = Box(tmp_path, lower)
    try:
        yield b
    finally:
        b.cleanup()
