"""RUN steps on the native runtime: the step's command in its own container.

A RUN is a short-lived container on the step's overlay: Docker's default
isolation (namespaces, the 14 capabilities, the seccomp profile), the
build's network choice (``none``: a private network namespace with only
loopback; ``default`` and ``host``: the host's network, which is how a
build reaches package mirrors without a bridge of its own), the host's
``/etc/resolv.conf``, an ``/etc/hosts`` with ``extra_hosts``, and a
``/dev/shm`` of ``shm_size``. Output is streamed to the builder as it
comes; the exit code decides whether the step is committed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from composer.errors import Unsupported

if TYPE_CHECKING:
    from composer.backends.native.runtime.spec import LaunchSpec, MountEntry, RootfsSpec

# The runtime is imported by the first RUN that runs: a build whose steps
# all come from the cache never loads it.

HOSTNAME = "buildkitsandbox"


class RuntimeStepRunner:
    """Runs RUN steps with ``runtime.launch`` from the calling process."""

    def __init__(self, tmp_root: Path) -> None:
        self.tmp_root = tmp_root

    def run(
        self,
        *,
        rootfs: RootfsSpec,
        args: Sequence[str],
        env: Sequence[str],
        cwd: str,
        user: str,
        network: str,
        extra_hosts: Sequence[tuple[str, str]],
        shm_size: int | None,
        output: Callable[[bytes], None],
    ) -> int:
        if network not in ("default", "host", "none"):
            raise Unsupported(
                f"build network {network!r} is not supported by the native builder",
                hint="use network: none, default or host",
            )
        from composer.backends.native.runtime.caps import DOCKER_DEFAULT_CAPS
        from composer.backends.native.runtime.cgroups import Cgroup
        from composer.backends.native.runtime.spec import (
            DEFAULT_NAMESPACES,
            DEFAULT_SHM_SIZE,
            CgroupSpec,
            LaunchSpec,
            NamespaceSpec,
        )
        from composer.backends.native.runtime.syscalls import set_child_subreaper

        set_child_subreaper()
        self.tmp_root.mkdir(parents=True, exist_ok=True)
        files = Path(tempfile.mkdtemp(prefix="run-", dir=self.tmp_root))
        try:
            mounts = self._files(files, extra_hosts)
            kinds = [k for k in DEFAULT_NAMESPACES if network == "none" or k != "net"]
            step_id = f"build-{uuid.uuid4().hex[:12]}"
            spec = LaunchSpec(
                id=step_id,
                cgroup=CgroupSpec(path=f"composer/{step_id}"),
                rootfs=rootfs,
                args=tuple(args),
                env=tuple(env),
                cwd=cwd,
                user=user,
                hostname=HOSTNAME,
                mounts=mounts,
                namespaces=tuple(NamespaceSpec(k) for k in kinds),
                capabilities=DOCKER_DEFAULT_CAPS,
                shm_size=shm_size or DEFAULT_SHM_SIZE,
            )
            try:
                return self._wait(spec, output)
            finally:
                with contextlib.suppress(OSError, ValueError):
                    Cgroup(f"composer/{step_id}").remove()
        finally:
            shutil.rmtree(files, ignore_errors=True)

    def _files(self, files: Path, extra_hosts: Sequence[tuple[str, str]]) -> tuple[MountEntry, ...]:
        from composer.backends.native.runtime.spec import MountEntry

        hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        hosts += [f"{ip}\t{name}" for name, ip in extra_hosts]
        hosts.append(f"127.0.1.1\t{HOSTNAME}")
        (files / "hosts").write_text("\n".join(hosts) + "\n")
        try:
            shutil.copyfile("/etc/resolv.conf", files / "resolv.conf")
        except OSError:
            (files / "resolv.conf").write_text("")
        return tuple(
            MountEntry(target=f"/etc/{name}", source=str(files / name), options=("rbind", "ro"))
            for name in ("hosts", "resolv.conf")
        )

    def _wait(self, spec: LaunchSpec, output: Callable[[bytes], None]) -> int:
        from composer.backends.native.runtime.launch import launch
        from composer.backends.native.runtime.spec import Stdio

        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            launched = launch(spec, Stdio(null, write_fd, write_fd))
        finally:
            os.close(write_fd)
            os.close(null)
        try:
            while chunk := os.read(read_fd, 65536):
                output(chunk)
        finally:
            os.close(read_fd)
        _, status = os.waitpid(launched.pid, 0)
        return (
            os.waitstatus_to_exitcode(status)
            if os.WIFEXITED(status)
            else 128 + (os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0)
        )
