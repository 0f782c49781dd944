"""``exec`` from the CLI process: a process in a running container, its stdio pumped.

No supervisor is involved: the runtime's ``exec_in`` joins the container's
namespaces and cgroup and starts the process with the container's rules
(user, capabilities, seccomp, environment); this module gives it pipes (or
a pseudo-terminal with ``tty``), forwards ``stdin`` until its end, copies
its output as it comes and returns its exit code (``128 + signal`` when a
signal ended it, as Docker reports). The CLI process becomes a child
subreaper for the call, which ``exec_in`` requires to wait for the process.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import selectors
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO

from composer.errors import BackendError

if TYPE_CHECKING:
    from composer.backends.native.observe import Snapshot
    from composer.backends.native.runtime.spec import Stdio

PR_SET_CHILD_SUBREAPER = 36
CHUNK = 1 << 16


PR_GET_CHILD_SUBREAPER = 37


class _Subreaper:
    """Being a child subreaper, for as long as an ``exec_in`` hands its process over.

    The attribute belongs to the whole process, so it is counted across the
    threads that need it and given back when the last one is done: a
    long-lived caller (the test runner, a watch loop) must not go on
    collecting the orphans of every process it started. One instance per
    process, since the kernel attribute is per process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._before = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        with self._lock:
            if self._users == 0:
                current = ctypes.c_int(0)
                libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(current), 0, 0, 0)
                self._before = current.value
                libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and not self._before:
                    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


_SUBREAPER = _Subreaper()


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run_exec(
    snap: Snapshot,
    command: Sequence[str],
    *,
    user: str | None = None,
    workdir: str | None = None,
    env: Mapping[str, str] | None = None,
    tty: bool = False,
    stdin: BinaryIO | None = None,
    privileged: bool = False,
    detach: bool = False,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
) -> int:
    """Run ``command`` in the container of ``snap``; its exit code (0 when detached)."""
    from composer.backends.native.runtime.exec import exec_in, exec_spec_for
    from composer.backends.native.runtime.spec import LaunchSpec, Stdio

    launch = LaunchSpec.from_json(json.dumps(snap.record.launch))
    spec = exec_spec_for(
        launch,
        tuple(command),
        user=user or None,
        env=tuple(f"{k}={v}" for k, v in (env or {}).items()),
        cwd=workdir or None,
        privileged=privileged,
        tty=tty and not detach,
    )
    pid1 = snap.state.pid
    if detach:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            with _SUBREAPER.held():
                launched = exec_in(pid1, spec, Stdio(null, null, null))
        finally:
            os.close(null)
        # It is this process's child now (we are its subreaper): reap it when it ends, or
        # its zombie would hold the container's PID namespace open after PID 1 exits.
        threading.Thread(target=_reap, args=(launched.pid,), daemon=True).start()
        return 0
    if tty:
        return _run_tty(pid1, spec, stdin, stdout)
    ours: list[int] = []
    theirs: list[int] = []
    try:
        stdio, out_r, err_r = pipe_stdio(stdin is not None, ours, theirs)
        with _SUBREAPER.held():
            launched = exec_in(pid1, spec, stdio)
        for fd in theirs:
            os.close(fd)
        theirs = []
        feeder = None
        if stdin is not None:
            feeder = threading.Thread(target=_feed, args=(stdin, ours[0]), daemon=True)
            ours.remove(ours[0])
            feeder.start()
        _pump({out_r: stdout, err_r: stderr})
        _, status = os.waitpid(launched.pid, 0)
        return exit_code(status)
    except ChildProcessError as exc:
        raise BackendError(f"exec {' '.join(command)}: lost its process") from exc
    finally:
        for fd in (*ours, *theirs):
            with contextlib.suppress(OSError):
                os.close(fd)


def pipe_stdio(with_stdin: bool, ours: list[int], theirs: list[int]) -> tuple[Stdio, int, int]:
    """Pipes for a process's standard streams (stdin from /dev/null without ``with_stdin``).

    The process's ends are appended to ``theirs``, ours to ``ours`` (the
    stdin writer first, when there is one), so that the caller closes them
    whatever happens; returns the process's ``Stdio`` and our stdout and
    stderr readers.
    """
    from composer.backends.native.runtime.spec import Stdio

    if with_stdin:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        ours.append(in_w)
    else:
        in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    theirs.append(in_r)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    ours.append(out_r)
    theirs.append(out_w)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    ours.append(err_r)
    theirs.append(err_w)
    return Stdio(in_r, out_w, err_w), out_r, err_r


def _read_some(source: BinaryIO) -> bytes:
    """What is there now (``read1``: an interactive stdin must not wait for a full chunk)."""
    read1 = getattr(source, "read1", None)
    data = read1(CHUNK) if callable(read1) else source.read(CHUNK)
    return bytes(data or b"")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _feed(source: BinaryIO, fd: int) -> None:
    """Copy ``source`` into the process's stdin, then close it (end of file)."""
    try:
        while True:
            chunk = _read_some(source)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _pump(targets: dict[int, BinaryIO | None]) -> None:
    """Copy every fd to its target until each one reaches end of file."""
    sel = selectors.DefaultSelector()
    for fd in targets:
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(targets)
    try:
        while open_fds:
            for key, _ in sel.select():
                fd = int(key.fd)
                try:
                    data = os.read(fd, CHUNK)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(fd)
                    open_fds.discard(fd)
                    continue
                out = targets[fd]
                if out is not None:
                    out.write(data)
                    with contextlib.suppress(AttributeError, OSError, ValueError):
                        out.flush()
    finally:
        sel.close()


def _run_tty(pid1: int, spec: object, stdin: BinaryIO | None, stdout: BinaryIO | None) -> int:
    from composer.backends.native.runtime.exec import exec_in
    from composer.backends.native.runtime.spec import ExecSpec, Stdio

    assert isinstance(spec, ExecSpec)
    master, slave = container_pty(pid1)
    os.set_inheritable(master, False)
    try:
        with _SUBREAPER.held():
            launched = exec_in(pid1, spec, Stdio(slave, slave, slave))
        os.close(slave)
        slave = -1
        if stdin is not None:
            feeder_fd = os.dup(master)
            threading.Thread(target=_feed_tty, args=(stdin, feeder_fd), daemon=True).start()
        _pump({master: stdout})
        _, status = os.waitpid(launched.pid, 0)
        return exit_code(status)
    finally:
        for fd in (master, slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def container_pty(pid1: int) -> tuple[int, int]:
    """A pseudo-terminal from the container's own ``/dev/pts`` (so that ``tty`` names it
    there, as with ``docker exec -t``); the host's when that cannot be had."""
    import fcntl
    import struct

    from composer.backends.native.copy import open_in_root

    root = -1
    master = -1
    try:
        root = os.open(f"/proc/{pid1}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        master = open_in_root(root, "/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY)
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = int(fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC))
        return master, slave
    except (OSError, BackendError):
        if master >= 0:
            os.close(master)
        return pty.openpty()
    finally:
        if root >= 0:
            os.close(root)


def _feed_tty(source: BinaryIO, fd: int) -> None:
    """As ``_feed``, but a terminal's end of input is ^D, not a closed fd."""
    try:
        while chunk := _read_some(source):
            os.write(fd, chunk)
        os.write(fd, b"\x04")
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def attached(
    call: Callable[[tuple[int | None, int, int]], int],
    *,
    stdin: BinaryIO | None,
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
) -> int:
    """Run ``call`` (an attach that blocks until the container ends) with pipes whose other
    ends are pumped from ``stdin`` and into ``stdout``/``stderr``; its result."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    in_r = in_w = -1
    if stdin is not None:
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        threading.Thread(target=_feed, args=(stdin, in_w), daemon=True).start()
    pump = threading.Thread(target=_pump, args=({out_r: stdout, err_r: stderr},), daemon=True)
    pump.start()
    try:
        result = call((in_r if in_r >= 0 else None, out_w, err_w))
    finally:
        for fd in (out_w, err_w, in_r):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        pump.join(timeout=30)
        for fd in (out_r, err_r):
            with contextlib.suppress(OSError):
                os.close(fd)
    return result
