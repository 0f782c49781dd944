"""Test helper: a ``Launcher`` that runs containers as plain host processes.

No namespaces, no rootfs, no cgroup: ``LaunchSpec.args`` are executed on the
host with the spec's environment, and ``pause`` is SIGSTOP/SIGCONT. It lets
the supervisor's own logic (stdio, logs, exit codes, restarts, adoption,
attach, healthchecks) be tested where the runtime cannot run; the
supervisor uses it only when started with ``--launcher`` naming this file.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from composer.backends.native.runtime.spec import ExecSpec, Launched, LaunchSpec, Stdio


def _start_time(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return int(data[data.rindex(b")") + 2 :].split()[19])


def _spawn(args: tuple[str, ...], env: tuple[str, ...], stdio: Stdio) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(stdio.stdin, 0)
            os.dup2(stdio.stdout, 1)
            os.dup2(stdio.stderr, 2)
            os.closerange(3, 65536)
            environ = dict(e.split("=", 1) for e in env)
            environ.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            os.execvpe(args[0], list(args), environ)
        finally:
            os._exit(127)
    return pid


class PlainProcessLauncher:
    def launch(
        self, spec: LaunchSpec, stdio: Stdio, before_exec: Callable[[int], None]
    ) -> Launched:
        pid = _spawn(spec.args, spec.env, stdio)
        before_exec(pid)
        return Launched(pid, _start_time(pid), None)

    def exec_in(self, pid: int, spec: ExecSpec, stdio: Stdio) -> int:
        return _spawn(spec.args, spec.env, stdio)

    def freeze(self, launched: Launched) -> None:
        os.kill(launched.pid, signal.SIGSTOP)

    def thaw(self, launched: Launched) -> None:
        os.kill(launched.pid, signal.SIGCONT)

    def release(self, spec: LaunchSpec, launched: Launched) -> None:
        """Nothing is held by a plain process."""
