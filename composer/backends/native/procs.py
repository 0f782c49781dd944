"""``top``: the processes of a running container, as the host's ``ps`` shows them.

Docker runs ``ps`` on the host and keeps the rows whose PID belongs to the
container; so does this. A process belongs to the container when it lives
in the container's PID namespace (the same ``/proc/<pid>/ns/pid`` as its
PID 1), which also catches processes started by ``exec``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess

from composer.errors import BackendError, Conflict

DEFAULT_PS_ARGS = "-ef"


def container_pids(pid1: int) -> set[int]:
    """Host PIDs of every process in the PID namespace of ``pid1``."""
    try:
        target = os.stat(f"/proc/{pid1}/ns/pid")
    except FileNotFoundError:
        raise Conflict(f"process {pid1} is gone: the container is not running") from None
    key = (target.st_dev, target.st_ino)
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            st = os.stat(f"/proc/{entry}/ns/pid")
            if (st.st_dev, st.st_ino) == key:
                found.add(int(entry))
    return found


def top(pid1: int, ps_args: str | None = None) -> tuple[list[str], list[list[str]]]:
    """``(titles, rows)`` of ``ps <ps_args>`` restricted to the container's processes."""
    pids = container_pids(pid1)
    args = shlex.split(ps_args or DEFAULT_PS_ARGS)
    try:
        done = subprocess.run(
            ["ps", *args], capture_output=True, text=True, check=False, timeout=30
        )
    except FileNotFoundError:
        raise BackendError("top needs the ps command on the host", hint="install procps") from None
    if done.returncode != 0:
        raise BackendError(f"ps {' '.join(args)} failed: {done.stderr.strip()}")
    lines = done.stdout.splitlines()
    if not lines:
        return [], []
    titles = lines[0].split()
    if "PID" not in titles:
        raise BackendError(f"ps {' '.join(args)}: no PID column in its output")
    at = titles.index("PID")
    rows: list[list[str]] = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) <= at or not fields[at].isdigit() or int(fields[at]) not in pids:
            continue
        rows.append(fields)
    return titles, rows
