"""Which callers a command server may serve, and where its socket lives.

A forked child of the server inherits the server's process context, not the
caller's: its namespaces, cgroup, capabilities, resource limits, root
directory, user and interpreter. Those decide what a command sees and may do
(a container's cgroup parent, the ``ulimits`` clamp, the network namespace
of ``run``), so a server only serves callers whose context is identical to
its own: the context is serialised here, the socket name is derived from it,
and the server compares the whole of it on every request. What the child can
take over from the caller per request (environment, working directory,
umask, standard streams) is not part of it.

This runs in every client, before anything is imported: only builtins and C
modules.
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib
from collections.abc import Mapping

_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
_STATUS_KEYS = (b"CapInh", b"CapPrm", b"CapEff", b"CapBnd", b"CapAmb", b"NoNewPrivs", b"Seccomp")
# The environment the interpreter itself consumed at start-up (encodings,
# hash seed, import path): fixed in the server, so they must match.
_START_ENV_PREFIXES = ("PYTHON", "LC_")
_START_ENV_NAMES = frozenset({"LANG", "LANGUAGE"})


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError:
        return b""


def _namespaces() -> tuple[str, ...]:
    found = []
    for name in _NAMESPACES:
        try:
            found.append(os.readlink(f"/proc/self/ns/{name}"))
        except OSError:
            found.append("")
    return tuple(found)


def _status() -> tuple[bytes, ...]:
    return tuple(
        line
        for line in _read("/proc/self/status").splitlines()
        if line.split(b":", 1)[0] in _STATUS_KEYS
    )


def _limits() -> tuple[tuple[int, int], ...]:
    import resource

    return tuple(
        resource.getrlimit(getattr(resource, name))
        for name in sorted(dir(resource))
        if name.startswith("RLIMIT_")
    )


def _flags() -> tuple[int | str, ...]:
    """The interpreter's flags, with UTF-8 mode replaced by the encodings it decides.

    A caller started in the C locale runs in UTF-8 mode with ``LC_CTYPE``
    coerced to ``C.UTF-8`` in its environment (PEP 538, 540); a server
    started with that environment runs in that locale instead, not in UTF-8
    mode. The encodings are what matter, and they are the same.
    """
    import _locale

    names = sys.flags.__match_args__
    values = tuple(v for name, v in zip(names, sys.flags, strict=True) if name != "utf8_mode")
    preferred = "utf-8" if sys.flags.utf8_mode else _locale.nl_langinfo(_locale.CODESET)
    return (*values, preferred.lower().replace("_", "-"), sys.getfilesystemencoding())


def package_dir() -> str:
    """The directory of the ``composer`` package this process runs."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def context(environ: Mapping[str, str]) -> bytes:
    """The caller's process context, serialised (equal bytes, equal context)."""
    root = os.stat("/")
    start_env = sorted(
        (key, value)
        for key, value in environ.items()
        if key.startswith(_START_ENV_PREFIXES) or key in _START_ENV_NAMES
    )
    package = package_dir()
    return marshal.dumps(
        (
            1,  # the layout of this tuple
            sys.executable,
            sys.version,
            package,
            tuple(sys.path[1:]),  # [0] is the script's or working directory
            _flags(),
            tuple(sorted((str(k), str(v)) for k, v in sys._xoptions.items())),
            tuple(sys.warnoptions),
            os.getuid(),
            os.geteuid(),
            os.getgid(),
            os.getegid(),
            tuple(sorted(os.getgroups())),
            (root.st_dev, root.st_ino),
            _namespaces(),
            _read("/proc/self/cgroup"),
            _status(),
            _limits(),
            tuple(start_env),
        )
    )


def socket_dir(environ: Mapping[str, str]) -> str | None:
    """Where this user's servers listen, or None when there is no safe place.

    ``COMPOSER_SERVER_DIR`` overrides it (tests use a directory of their own).
    Otherwise root uses ``/run/composer/cli`` and other users
    ``$XDG_RUNTIME_DIR/composer-cli``: both private to the user, on tmpfs.
    """
    chosen = environ.get("COMPOSER_SERVER_DIR")
    if chosen:
        return chosen
    if os.getuid() == 0:
        return "/run/composer/cli"
    runtime = environ.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime, "composer-cli") if runtime else None


def server_name(context_bytes: bytes) -> str:
    """The file name shared by a context's socket and lock."""
    return f"s{zlib.crc32(context_bytes):08x}{len(context_bytes):05x}"


def private_dir(path: str) -> bool:
    """Create ``path`` if needed; True only if it is ours alone (mode 0700, our uid)."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return False
    import stat

    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )
