"""The background watcher of ``up -d --watch``: its pidfile, start and stop.

Docker Compose refuses ``up -d --watch`` (docker/compose#11344). composer
starts ``composer watch --no-up`` as a process of its own session (it
survives the terminal that started it), writes its pid and start time to
``${XDG_RUNTIME_DIR:-/run}/composer/<project>/watch.pid`` and its output to
``watch.log`` beside it. ``composer watch --stop`` and ``composer down``
read the pidfile and end the process with SIGTERM. The start time guards
against a recycled pid: a pidfile whose process is gone, or is another
process now, is stale and simply removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from composer.errors import Conflict, ExecutionError


def runtime_dir(project: str, environ: Mapping[str, str]) -> Path:
    """The per-project directory of the background watcher's files."""
    base = environ.get("XDG_RUNTIME_DIR") or "/run"
    return Path(base, "composer", project)


@dataclass(frozen=True)
class WatchProcess:
    pid: int
    started: str


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rfind(")") + 2 :].split()[:1] != ["Z"]


def running(project: str, environ: Mapping[str, str]) -> WatchProcess | None:
    """The project's background watcher, if one runs (a stale pidfile is removed)."""
    pidfile = runtime_dir(project, environ) / "watch.pid"
    try:
        pid_text, started = pidfile.read_text().split()[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if _alive(pid) and _start_time(pid) == started:
        return WatchProcess(pid, started)
    with contextlib.suppress(OSError):
        pidfile.unlink()
    return None


def start(
    project: str,
    command: Sequence[str],
    *,
    cwd: Path,
    environ: Mapping[str, str],
) -> WatchProcess:
    """Start ``command`` (``python -m composer ... watch --no-up``) detached; record it
    in the pidfile."""
    current = running(project, environ)
    if current is not None:
        raise Conflict(
            f"project {project} is already watched in the background (pid {current.pid})",
            hint="`composer watch --stop` ends it",
        )
    directory = runtime_dir(project, environ)
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "watch.log"
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(environ),
            stdin=devnull,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    started = None
    for _ in range(100):
        started = _start_time(process.pid)
        if started is not None:
            break
        time.sleep(0.01)
    if started is None:
        raise ExecutionError("the background watcher did not start", hint=f"its output is in {log}")
    temporary = directory / f".watch.pid.{os.getpid()}"
    temporary.write_text(f"{process.pid} {started}\n")
    os.replace(temporary, directory / "watch.pid")
    return WatchProcess(process.pid, started)


def stop(project: str, environ: Mapping[str, str], timeout: float = 10.0) -> WatchProcess | None:
    """End the project's background watcher, if any; return what was stopped."""
    current = running(project, environ)
    if current is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(current.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(current.pid):
        if _start_time(current.pid) != current.started:
            break
        time.sleep(0.02)
    else:
        if _alive(current.pid) and _start_time(current.pid) == current.started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(current.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        (runtime_dir(project, environ) / "watch.pid").unlink()
    return current
