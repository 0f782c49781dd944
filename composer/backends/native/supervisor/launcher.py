"""What the supervisor needs from the runtime, as one small interface.

``Launcher`` is the runtime seen from the supervisor: start a container's
PID 1, start a process inside a running container (healthchecks, hooks),
freeze and thaw its cgroup (``pause``), and release what a finished
container held (its cgroup). ``RuntimeLauncher`` is the real one, on
``runtime/``; the supervisor is given another only by
``--launcher FILE:FACTORY``, which the supervisor's own tests use to run
plain processes where namespaces are not available.
"""

from __future__ import annotations

import importlib.util
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from composer.backends.native.runtime.spec import ExecSpec, Launched, LaunchSpec, Stdio


class Launcher(Protocol):
    def launch(
        self, spec: LaunchSpec, stdio: Stdio, before_exec: Callable[[int], None]
    ) -> Launched:
        """Start PID 1 of the container (a child of the caller, which is a subreaper)."""
        ...

    def exec_in(self, pid: int, spec: ExecSpec, stdio: Stdio) -> int:
        """Start ``spec`` inside the container of ``pid``; the host PID of a child to wait for."""
        ...

    def freeze(self, launched: Launched) -> None: ...

    def thaw(self, launched: Launched) -> None: ...

    def release(self, spec: LaunchSpec, launched: Launched) -> None:
        """Free what the finished container held (its cgroup); nothing left running."""
        ...


class RuntimeLauncher:
    """The real runtime (``composer.backends.native.runtime``), imported on first use."""

    def launch(
        self, spec: LaunchSpec, stdio: Stdio, before_exec: Callable[[int], None]
    ) -> Launched:
        from composer.backends.native.runtime.launch import launch

        launched: Launched = launch(spec, stdio, before_exec=before_exec)
        return launched

    def exec_in(self, pid: int, spec: ExecSpec, stdio: Stdio) -> int:
        from composer.backends.native.runtime.exec import exec_in

        return exec_in(pid, spec, stdio).pid

    def freeze(self, launched: Launched) -> None:
        _cgroup(launched).freeze()

    def thaw(self, launched: Launched) -> None:
        _cgroup(launched).thaw()

    def release(self, spec: LaunchSpec, launched: Launched) -> None:
        if launched.cgroup_path:
            _cgroup(launched).remove()  # kills what is left first


def _cgroup(launched: Launched) -> Any:
    from composer.backends.native.runtime.cgroups import Cgroup

    if not launched.cgroup_path:
        from composer.errors import Unsupported

        raise Unsupported("the container has no cgroup to freeze")
    return Cgroup(launched.cgroup_path)


def load_launcher(ref: str | None) -> Launcher:
    """``RuntimeLauncher`` unless ``ref`` (``/path/to/file.py:factory``) names another."""
    if not ref:
        return RuntimeLauncher()
    path, _, attr = ref.rpartition(":")
    spec = importlib.util.spec_from_file_location(f"_launcher_{Path(path).stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load launcher from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    factory: Callable[[], Launcher] = getattr(module, attr)
    return factory()


def send_signal(pidfd: int, pid: int, signo: int) -> None:
    """Signal through the pidfd (never a reused PID); fall back to the PID without one."""
    if pidfd >= 0:
        signal.pidfd_send_signal(pidfd, signo)
    else:
        os.kill(pid, signo)
