"""Running a command inside a running container and collecting its result.

Healthchecks and ``post_start``/``pre_stop`` hooks are the same act: start
a process in the container's namespaces (``Launcher.exec_in``), give it
``/dev/null`` as stdin and one pipe for stdout and stderr, read that pipe
and the process's pidfd in the calling thread, and kill the process when
its time is up.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from composer.backends.native.runtime.spec import ExecSpec, LaunchSpec, Stdio
from composer.backends.native.supervisor.launcher import Launcher
from composer.backends.native.supervisor.watcher import ExitWatcher, reap

OUTPUT_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_code: int
    """``-1`` when the time ran out and the process was killed."""
    output: str
    start: float
    end: float


def exec_spec(
    launch: LaunchSpec,
    args: Sequence[str],
    *,
    user: str | None = None,
    working_dir: str | None = None,
    environment: Mapping[str, str] | None = None,
    privileged: bool = False,
) -> ExecSpec:
    """The ``ExecSpec`` of a command run as the container runs its own process."""
    env = list(launch.env)
    if environment:
        keys = set(environment)
        env = [e for e in env if e.split("=", 1)[0] not in keys]
        env.extend(f"{k}={v}" for k, v in environment.items())
    spec = ExecSpec(
        args=tuple(args),
        env=tuple(env),
        cwd=working_dir or launch.cwd,
        user=user if user is not None else launch.user,
        additional_groups=launch.additional_groups,
        capabilities=launch.capabilities,
        no_new_privileges=launch.no_new_privileges,
        seccomp=launch.seccomp,
        rlimits=launch.rlimits,
    )
    if privileged:
        spec = replace(spec, seccomp="unconfined", capabilities=_all_caps(launch))
    return spec


def _all_caps(launch: LaunchSpec) -> tuple[str, ...]:
    try:
        from composer.backends.native.runtime.caps import all_caps
    except ImportError:
        return launch.capabilities
    return tuple(all_caps())


def run_in(
    launcher: Launcher,
    watcher: ExitWatcher,
    pid: int,
    spec: ExecSpec,
    timeout: float | None,
) -> CommandResult:
    """Run ``spec`` in the container of ``pid``; output is stdout and stderr together."""
    start = time.time()
    r, w = os.pipe2(os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        child = launcher.exec_in(pid, spec, Stdio(null, w, w))
        watcher.own(child)
        pidfd = os.pidfd_open(child)
    finally:
        os.close(w)
        os.close(null)
    out = bytearray()
    deadline = None if timeout is None else time.monotonic() + timeout
    killed = False
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(r, selectors.EVENT_READ, "out")
            sel.register(pidfd, selectors.EVENT_READ, "exit")
            exited = False
            pipe_open = True
            drain_until = 0.0
            while True:
                now = time.monotonic()
                if exited and (not pipe_open or now >= drain_until):
                    break  # a process the command left behind may hold the pipe
                waits: list[float] = []
                if exited:
                    waits.append(drain_until - now)
                elif deadline is not None:
                    if now >= deadline:
                        with contextlib.suppress(ProcessLookupError):
                            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                        killed, deadline = True, None
                        continue
                    waits.append(deadline - now)
                for key, _ in sel.select(min(waits) if waits else None):
                    if key.data == "exit":
                        exited = True
                        sel.unregister(pidfd)
                        drain_until = time.monotonic() + 0.5
                    else:
                        data = os.read(r, 65536)
                        if not data:
                            pipe_open = False
                            sel.unregister(r)
                        elif len(out) < OUTPUT_LIMIT:
                            out += data
        result = reap(pidfd)
    finally:
        os.close(pidfd)
        os.close(r)
        watcher.disown(child)
    code = -1 if killed else result.code
    return CommandResult(code, out.decode(errors="replace"), start, time.time())
