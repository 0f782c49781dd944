"""A project's supervisor home (``<root>/projects/<name>/``) and its removal.

The home holds ``supervisor.pid`` (the supervisor's lock, and its pid for
``observe``), ``supervisor.log`` and ``supervisor.sock``. Once a project has
no container left, nothing of it may remain (``down`` leaves nothing): the
supervisor removes its home when it leaves an empty project, and the CLI
does when it removes a project's last resource and no supervisor holds the
lock. The lock file is deleted only by its holder; a supervisor starting at
that moment sees that the path no longer names the file it locked and takes
a new one (``supervisor.__main__``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from composer.backends.native.state import StateRoot

FILES = ("supervisor.sock", "supervisor.log", "supervisor.pid")


def remove_home(root: StateRoot, project: str, *, held: int | None = None) -> bool:
    """Remove ``project``'s home if it has no container; True when it is gone.

    ``held`` is the caller's descriptor of the locked ``supervisor.pid`` (the
    supervisor itself); without it the lock is tried, and a live supervisor
    holding it keeps the home (it removes it itself when it leaves).
    """
    from composer.backends.native.observe import raw_records

    home = root.project(project)
    fd = held
    if fd is None:
        try:
            fd = os.open(home / "supervisor.pid", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
    try:
        if any(True for _ in raw_records(root, project)):
            return False
        for name in FILES:
            with contextlib.suppress(FileNotFoundError):
                (home / name).unlink()
        with contextlib.suppress(FileNotFoundError, OSError):
            home.rmdir()  # not empty: something else lives there, keep it
        return True
    finally:
        if fd is not None and held is None:
            os.close(fd)
