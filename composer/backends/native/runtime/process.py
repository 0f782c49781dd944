"""The last steps in the child before ``execve``, shared by ``launch`` and ``exec_in``.

Order (runc's): rlimits; seccomp early when no_new_privs is off (installing
it needs CAP_SYS_ADMIN, gone once capabilities drop); bounding set;
supplementary groups, gid, uid (keeping capabilities across the uid
change); the final capability sets; no_new_privs and seccomp when asked for
(as late as possible); the working directory, checked to be inside the
root (CVE-2024-21626); every fd >= 3 marked close-on-exec; exec with a
``$PATH`` lookup in the container's environment.

Failures are reported to the parent as ``ChildError`` lines on the report
pipe (see ``report.py``); nothing here raises into the caller's process.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import select
import signal
import termios
from collections.abc import Iterable, Sequence

from . import caps, seccomp, syscalls
from .spec import Rlimit
from .users import ExecUser

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

RLIMITS = {
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "locks": 10,
    "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE,
    "nice": resource.RLIMIT_NICE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "rss": resource.RLIMIT_RSS,
    "rtprio": resource.RLIMIT_RTPRIO,
    "rttime": resource.RLIMIT_RTTIME,
    "sigpending": resource.RLIMIT_SIGPENDING,
    "stack": resource.RLIMIT_STACK,
    "as": resource.RLIMIT_AS,
}


class ChildFailure(Exception):
    """A setup step failed in the child; ``kind`` picks the error the parent raises."""

    def __init__(self, kind: str, message: str, errno_: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.errno = errno_


_libc = ctypes.CDLL(None, use_errno=True)


def reset_signals() -> None:
    """Default dispositions and an empty mask: Python ignores SIGPIPE, and SIG_IGN survives exec.

    Handled signals are reset by exec itself; only the ignored ones (read
    from ``SigIgn``) need resetting, one call each.
    """
    ignored = 0
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"SigIgn:"):
                ignored = int(line.split()[1], 16)
                break
    for sig in range(1, 65):
        if ignored & (1 << (sig - 1)):
            _libc.signal(sig, ctypes.c_void_p(0))
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def setup_stdio(stdin: int, stdout: int, stderr: int, *, tty: bool) -> None:
    """Make the fds 0, 1, 2 (through copies, so overlaps are safe); a tty becomes controlling."""
    high = [os.dup(fd) for fd in (stdin, stdout, stderr)]
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)
    os.setsid()
    if tty:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def close_fds_except(keep: set[int]) -> None:
    """Close every fd >= 3 not in ``keep`` (a forked child's first step).

    The caller may be a threaded supervisor launching several containers at
    once: without this, a child would hold the other launches' pipes (and
    any host directory fd) until it execs.
    """
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 0x7FFFFFFF)


def set_oom_score_adj(value: int | None) -> None:
    """The spec's value; unset, Docker's 0 rather than the caller's own protection.

    A supervisor may shield itself from the OOM killer with a negative
    value, which children inherit; raising it back to 0 needs no privilege.
    """
    with open("/proc/self/oom_score_adj", "r+") as f:
        current = int(f.read().strip() or 0)
        wanted = value if value is not None else max(current, 0)
        if wanted != current:
            f.seek(0)
            f.write(str(wanted))


def set_rlimits(rlimits: Iterable[Rlimit]) -> None:
    for r in rlimits:
        key = RLIMITS.get(r.name.lower().removeprefix("rlimit_"))
        if key is None:
            raise ChildFailure("config", f"unknown ulimit {r.name}")
        resource.setrlimit(key, (r.soft, r.hard))


def find_executable(name: str, env: Sequence[str]) -> str:
    """``name`` looked up in the container's ``$PATH`` (Docker's error wording when absent)."""
    if "/" in name:
        return name
    path = DEFAULT_PATH
    for item in env:
        if item.startswith("PATH="):
            path = item[5:]
    for d in path.split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ChildFailure("not_found", f'exec: "{name}": executable file not found in $PATH')


def finish_and_exec(
    *,
    args: Sequence[str],
    env: Sequence[str],
    cwd: str,
    user: ExecUser,
    capabilities: Iterable[str],
    no_new_privileges: bool,
    use_seccomp: bool,
    rlimits: Iterable[Rlimit],
    parent_fd: int = -1,
) -> None:
    """Drop privileges, enter ``cwd``, exec ``args``; returns only by raising ``ChildFailure``.

    ``parent_fd`` (a pipe end the launching process holds the other end of):
    the process is to die with that process (``die_with_parent``).
    """
    keep = caps.mask(capabilities)
    cap_names = tuple(capabilities)
    os.umask(0o022)  # Docker's (runc's) default, whatever the caller's
    set_rlimits(rlimits)
    if use_seccomp:
        seccomp.compiled(frozenset(cap_names))  # cached in the parent; compiled here otherwise
    if use_seccomp and not no_new_privileges:
        seccomp.load(cap_names)
    caps.drop_bounding(keep)
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1)
    try:
        os.setgroups(list(user.additional_gids))
        os.setgid(user.gid)
        os.setuid(user.uid)
    except OSError as exc:
        raise ChildFailure(
            "user", f"cannot set user {user.uid}:{user.gid}: {exc.strerror}"
        ) from exc
    caps.apply(keep)
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 0)
    if no_new_privileges:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
        if use_seccomp:
            seccomp.load(cap_names)
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise ChildFailure(
            "cwd", f"cannot enter the working directory {cwd}: {exc.strerror}", exc.errno or 0
        ) from exc
    here = os.getcwd()
    if not here.startswith("/"):
        raise ChildFailure("cwd", f"working directory {cwd} is outside the container's root")
    if parent_fd >= 0:
        die_with_parent(parent_fd)
    program = find_executable(args[0], env)
    syscalls.close_range_cloexec(3)
    environ = {}
    for item in env:
        key, sep, value = item.partition("=")
        if sep:
            environ[key] = value
    try:
        os.execve(program, list(args), environ)
    except OSError as exc:
        kind = "not_found" if exc.errno in (2, 20) else "permission" if exc.errno == 13 else "exec"
        where = f'exec: "{args[0]}"'
        if kind == "not_found":
            raise ChildFailure(kind, f"{where}: no such file or directory", exc.errno or 0) from exc
        raise ChildFailure(kind, f"{where}: {exc.strerror}", exc.errno or 0) from exc


def die_with_parent(parent_fd: int) -> None:
    """SIGKILL when the parent ends; leave now if it already has.

    Armed after the ids changed (a change of ids clears the setting) and
    kept across the exec. A parent that died before the setting took effect
    is seen as the hang-up of ``parent_fd``, whose write end only it held.
    """
    syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
    poller = select.poll()
    poller.register(parent_fd, select.POLLIN)
    if any(ev & (select.POLLHUP | select.POLLERR) for _, ev in poller.poll(0)):
        os._exit(137)


def with_home(env: Sequence[str], home: str) -> tuple[str, ...]:
    """Docker adds ``HOME`` from passwd when the environment has none."""
    if any(e.startswith("HOME=") for e in env):
        return tuple(env)
    return (*env, f"HOME={home}")


def start_time(pid: int) -> int:
    """Field 22 of ``/proc/<pid>/stat``: with the pid, it names the process uniquely.

    0 when the process is already gone (reaped by someone else's ``waitpid``).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    rest = data[data.rindex(b")") + 2 :].split()
    return int(rest[19])


def child_exit(code: int) -> None:
    """Leave a forked child at once (no atexit handlers, no buffered output of the parent)."""
    with contextlib.suppress(Exception):
        os._exit(code)
