"""The child → parent report pipe, and the errors the parent raises from it.

The children write JSON lines: ``{"pid": N}`` (the container process's host
pid) and at most one ``{"error": kind, "message": …}``. The write end is
close-on-exec, so a successful ``execve`` closes it: end-of-file with no
error line means the program is running.
"""

from __future__ import annotations

import json
import os

from composer.errors import BackendError, NotFound, Unsupported

from .process import ChildFailure


class LaunchError(BackendError):
    """A container process could not be started; ``exit_code`` follows ``docker run``."""

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int = 125) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code


class ExecutableNotFound(LaunchError, NotFound):
    """The command does not exist in the container (``docker run`` exits 127)."""


def send(fd: int, **item: object) -> None:
    os.write(fd, (json.dumps(item) + "\n").encode())


def send_failure(fd: int, exc: BaseException) -> None:
    """Report ``exc`` from a child (best effort: the parent may be gone)."""
    try:
        if isinstance(exc, ChildFailure):
            send(fd, error=exc.kind, message=exc.message, errno=exc.errno)
        elif isinstance(exc, OSError):
            send(fd, error="setup", message=str(exc), errno=exc.errno or 0)
        else:
            send(fd, error="setup", message=f"{type(exc).__name__}: {exc}", errno=0)
    except OSError:
        pass


class Reader:
    """Reads report lines from the pipe until a pid, an error, or end-of-file."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""
        self.eof = False

    def next(self) -> dict[str, object] | None:
        while b"\n" not in self.buf:
            if self.eof:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                self.eof = True
                continue
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        value = json.loads(line)
        assert isinstance(value, dict)
        return value


def raise_for(item: dict[str, object], what: str) -> None:
    """Turn a child's error line into the ``BackendError`` the user sees."""
    kind = str(item.get("error"))
    message = f"{what}: {item.get('message')}"
    if kind == "not_found":
        raise ExecutableNotFound(
            message,
            "check the command and the image's PATH (or give an absolute path)",
            exit_code=127,
        )
    if kind == "permission":
        raise LaunchError(message, "the file must be executable by the user", exit_code=126)
    if kind == "cwd":
        raise LaunchError(
            message, "check working_dir and that the user may enter it", exit_code=126
        )
    if kind == "user":
        raise LaunchError(message, "the user must exist in the image's /etc/passwd or be numeric")
    if kind == "unsupported":
        raise Unsupported(message, "use --backend docker")
    raise LaunchError(message, "run with --debug for details; the setup step is named above")
