"""``python -m composer.cmdserver serve DIR NAME`` | ``stop [DIR]`` | ``name``.

``serve`` is how ``composer.cmdserver.client.start`` launches a server (in
its own session, standard streams on /dev/null). ``stop`` asks every server
in the socket directory to leave (SIGTERM); test scripts use it to leave
nothing running behind them.
"""

from __future__ import annotations

import os
import sys

_MAX_SOCKET_PATH = 107


def _stop(directory: str) -> int:
    import fcntl
    import signal

    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return 0
    for name in names:
        if not name.endswith(".lock"):
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held: a server runs; its pid is in the file
            try:
                pid = int(os.pread(fd, 32, 0).decode().strip() or 0)
                if pid > 0:
                    os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                pass
        finally:
            os.close(fd)
    return 0


def main(argv: list[str]) -> int:
    from composer.cmdserver import identity, server

    if len(argv) == 3 and argv[0] == "serve":
        directory, name = argv[1], argv[2]
        if len(os.path.join(directory, name + ".sock")) > _MAX_SOCKET_PATH:
            return 2  # longer than a unix socket address may be
        if not identity.private_dir(directory):
            return 2
        if identity.server_name(identity.context(os.environ)) != name:
            return 2  # started in another context than the one it would serve
        instance = server.Server(directory, name, server.idle_seconds(dict(os.environ)))
        return instance.serve()
    if argv == ["name"]:  # which server this context would use
        sys.stdout.write(identity.server_name(identity.context(os.environ)) + "\n")
        return 0
    if argv[:1] == ["stop"] and len(argv) <= 2:
        chosen = argv[1] if len(argv) == 2 else identity.socket_dir(os.environ)
        return _stop(chosen) if chosen else 0
    sys.stderr.write("usage: python -m composer.cmdserver serve DIR NAME | stop [DIR] | name\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
