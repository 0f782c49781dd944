"""``python -m composer.backends.native.supervisor --root R --project P``.

Starts the project's supervisor as a daemon and exits once it listens (0)
or failed (1, with the reason on stderr), so that a client learns both
without polling:

1. the starting process makes a pipe and forks; it then reads the pipe
   until the daemon writes ``ok`` or an error and closes it;
2. the child calls ``setsid`` and forks again (the grandchild can never
   acquire a controlling terminal), and exits;
3. the grandchild — the supervisor — sends stdio to ``supervisor.log``,
   becomes a child subreaper, takes the lock on ``supervisor.pid``
   (one supervisor per project: if another holds it and answers on the
   socket, there is nothing to do), re-adopts what its predecessor left
   running, listens on ``supervisor.sock``, reports ``ok`` and serves.

SIGTERM or SIGINT make it leave as the ``shutdown`` request does: the
socket goes, the containers keep running and the next supervisor adopts them.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

LOCK_WAIT = 15.0


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m composer.backends.native.supervisor")
    p.add_argument("--root", required=True, help="the state root (COMPOSER_ROOT)")
    p.add_argument("--project", required=True)
    p.add_argument("--foreground", action="store_true", help="do not daemonise")
    p.add_argument("--launcher", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    if args.foreground:
        return _supervise(args, report=None)
    r, w = os.pipe()
    if os.fork() > 0:
        os.close(w)
        with os.fdopen(r, "rb") as f:
            answer = f.read().decode(errors="replace")
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-1, 0)
        if answer.startswith("ok"):
            return 0
        sys.stderr.write(answer or "the supervisor died before it was ready\n")
        return 1
    os.close(r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    try:
        code = _supervise(args, report=w)
    except BaseException as exc:  # report anything rather than die silently
        with contextlib.suppress(OSError):
            os.write(w, f"{type(exc).__name__}: {exc}\n".encode())
        code = 1
    logging.shutdown()
    os._exit(code)


def _supervise(args: argparse.Namespace, report: int | None) -> int:
    from composer.backends.native.state import StateRoot, check_name

    root = StateRoot(Path(args.root))
    home = root.project(check_name("project", args.project))
    home.mkdir(parents=True, exist_ok=True)
    if report is not None:
        _redirect_stdio(home / "supervisor.log")
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s supervisor[{os.getpid()}] %(levelname)s %(message)s",
    )

    def ready(message: str) -> None:
        if report is not None:
            os.write(report, message.encode())
            os.close(report)

    lock_fd = _take_lock(home)
    if lock_fd is None:
        ready("ok (another supervisor serves the project)\n")
        return 0
    os.ftruncate(lock_fd, 0)
    os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)

    from composer.backends.native.runtime.syscalls import set_child_subreaper
    from composer.backends.native.supervisor.launcher import load_launcher
    from composer.backends.native.supervisor.manager import ProjectManager
    from composer.backends.native.supervisor.server import Server
    from composer.clock import RealClock

    set_child_subreaper()
    server = Server(home / "supervisor.sock")
    manager = ProjectManager(
        root, args.project, load_launcher(args.launcher), RealClock(), server.idle_check
    )
    server.manager = manager
    try:
        manager.adopt_all()
        server.bind()
    except BaseException as exc:
        ready(f"error: {exc}\n")
        manager.close()
        raise
    ready("ok\n")
    if args.launcher is None:  # the real runtime: import it while the client is busy
        from composer.backends.native.supervisor import warmup

        warmup.start(root, args.project)
    # SIGTERM/SIGINT: leave as on ``shutdown`` (the containers stay; a successor adopts them).
    signal.signal(signal.SIGTERM, lambda *_: server.request_exit())
    signal.signal(signal.SIGINT, lambda *_: server.request_exit())
    logging.info("serving project %s", args.project)
    try:
        server.serve()
    finally:
        manager.close()
        logging.info("leaving")
    from composer.backends.native.supervisor.home import remove_home

    remove_home(root, args.project, held=lock_fd)  # an empty project leaves nothing
    return 0


def _redirect_stdio(log: Path) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)


def _take_lock(home: Path) -> int | None:
    """The locked ``supervisor.pid``; ``None`` when a live supervisor already holds it.

    A holder that does not answer on the socket is on its way out (it
    removes the socket first), so it is waited for.
    """
    path = home / "supervisor.pid"
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        home.mkdir(parents=True, exist_ok=True)  # a leaving supervisor may remove it
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _names(path, fd):
                return fd
            os.close(fd)  # its holder removed it on leaving: lock the new one
            continue
        except BlockingIOError:
            pass
        if _answers(home / "supervisor.sock"):
            os.close(fd)
            return None
        if time.monotonic() > deadline:
            os.close(fd)
            raise TimeoutError("another supervisor holds the project's lock and does not answer")
        time.sleep(0.01)


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open on ``fd``."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _answers(path: Path) -> bool:
    from composer.backends.native.supervisor.protocol import connect_unix

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            connect_unix(s, str(path))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
