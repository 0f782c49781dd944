"""Thin ctypes wrappers for the Linux calls the runtime needs and Python lacks.

Each wrapper raises ``OSError`` with the real errno, so callers can tell
"not permitted" from "no such file". Syscalls without a glibc wrapper
(``pivot_root``, ``openat2``, ``capset``, ``close_range``) go through
``syscall(2)`` with the number for the running architecture.
"""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
"""The C library already loaded in this process (``find_library`` would run ``ldconfig``)."""

# Namespace flags (sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NS_FLAGS = {
    "mnt": CLONE_NEWNS,
    "cgroup": CLONE_NEWCGROUP,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "user": CLONE_NEWUSER,
    "pid": CLONE_NEWPID,
    "net": CLONE_NEWNET,
}

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2

# openat2(2)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
O_PATH = 0o10000000

_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capset": 126, "capget": 125},
    "aarch64": {"pivot_root": 41, "capset": 91, "capget": 90},
}
_GENERIC = {
    "openat2": 437,
    "close_range": 436,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
}


def _nr(name: str) -> int:
    if name in _GENERIC:
        return _GENERIC[name]
    table = _SYSCALLS.get(platform.machine())
    if table is None:
        raise OSError(f"unsupported architecture {platform.machine()}")
    return table[name]


def _check(result: int, what: str = "") -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{os.strerror(err)}{': ' + what if what else ''}")
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data or None)),
        f"mount {fstype or ''} {source or ''} on {target}",
    )


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_nr("pivot_root"), _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(
        _libc.prctl(
            option,
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(arg3),
            ctypes.c_ulong(arg4),
            ctypes.c_ulong(arg5),
        ),
        f"prctl {option}",
    )


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """``openat2(2)``: open ``path`` below ``dirfd`` under the ``RESOLVE_*`` rules."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(
        _libc.syscall(
            _nr("openat2"), dirfd, _b(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))
        ),
        path,
    )


FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 4


def mount_new_api(fstype: str, options: list[tuple[str, str]], target: str) -> None:
    """Mount with ``fsopen``/``fsconfig``/``fsmount``/``move_mount`` (no page limit on options).

    Each ``(key, value)`` is one ``fsconfig`` call, so overlayfs can take its
    layers one by one (``lowerdir+``, kernel 6.8+).
    """
    fs = _check(_libc.syscall(_nr("fsopen"), _b(fstype), 1), f"fsopen {fstype}")
    try:
        for key, value in options:
            _check(
                _libc.syscall(_nr("fsconfig"), fs, FSCONFIG_SET_STRING, _b(key), _b(value), 0),
                f"{fstype} option {key}={value}",
            )
        _check(_libc.syscall(_nr("fsconfig"), fs, FSCONFIG_CMD_CREATE, None, None, 0), fstype)
        mnt = _check(_libc.syscall(_nr("fsmount"), fs, 1, 0), f"fsmount {fstype}")
    finally:
        os.close(fs)
    try:
        _check(
            _libc.syscall(_nr("move_mount"), mnt, b"", -100, _b(target), MOVE_MOUNT_F_EMPTY_PATH),
            f"move_mount {fstype} to {target}",
        )
    finally:
        os.close(mnt)


def close_range_cloexec(first: int) -> None:
    """Mark every fd >= ``first`` close-on-exec (``close_range(first, ~0, CLOEXEC)``)."""
    _check(_libc.syscall(_nr("close_range"), first, ctypes.c_uint(0xFFFFFFFF), 4), "close_range")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_CAP_V3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's capability sets (64-bit masks)."""
    header = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(_nr("capset"), ctypes.byref(header), data), "capset")


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def load_seccomp_bpf(program: bytes) -> None:
    """Install a compiled classic-BPF seccomp program on the calling thread."""
    count = len(program) // ctypes.sizeof(_SockFilter)
    buf = (_SockFilter * count).from_buffer_copy(program)
    prog = _SockFprog(count, ctypes.cast(buf, ctypes.POINTER(_SockFilter)))
    _check(
        _libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), 0, 0),
        "seccomp",
    )


def set_child_subreaper() -> None:
    """Make the calling process the reaper of its orphaned descendants.

    ``launch`` forks twice (so that the container's PID 1 is a child of a
    process inside the new PID namespace's creation); the intermediate
    exits, and PID 1 is re-parented to the nearest subreaper — the caller,
    which can then ``waitpid`` it for the exit code.
    """
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def is_child_subreaper() -> bool:
    value = ctypes.c_int(0)
    _check(_libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0), "prctl")
    return bool(value.value)
