"""A seccomp filter with the effect of Docker's default profile.

Docker's profile is an allow-list (default action ``EPERM``) of about 350
system calls, some allowed only when a capability is granted. This filter
has the same default (``EPERM``) and allows every system call libseccomp
knows except the ones Docker's profile leaves out, each refused unless the
capability that unlocks it in Docker's profile is granted:

* always: ``keyctl``, ``add_key``, ``request_key``, ``kexec_*``,
  ``userfaultfd``, ``io_uring_*``, ``swapon``/``swapoff``, obsolete calls
  (``uselib``, ``ustat``, ``sysfs``, ``_sysctl``, ``nfsservctl``, …);
* ``clone`` with any ``CLONE_NEW*`` flag, ``unshare``, ``setns``, ``mount``,
  ``umount2``, ``pivot_root``, the new mount API, ``bpf``,
  ``perf_event_open``, … unless ``CAP_SYS_ADMIN``;
* ``clone3`` fails with ``ENOSYS`` (so libc falls back to ``clone``, whose
  flags the filter can see) unless ``CAP_SYS_ADMIN``;
* ``socket(AF_ALG)`` and ``socket(AF_VSOCK)``;
* ``personality`` except the harmless personas Docker allows.

The 32-bit x86 and x32 ABIs get the same rules, so ``int 0x80`` is no way
around them. The difference from Docker's list: a few rarely used calls
Docker never listed stay allowed, unless they are named here.

Building a filter with libseccomp takes milliseconds, so the compiled BPF
program is cached per capability set and loaded in the child with one
``prctl``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import platform
import tempfile
from collections.abc import Iterable

from . import syscalls

ALWAYS_DENIED: tuple[str, ...] = (
    "add_key",
    "keyctl",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "swapon",
    "swapoff",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "nfsservctl",
    "vm86",
    "vm86old",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "afs_syscall",
    "getpmsg",
    "putpmsg",
    "security",
    "tuxcall",
    "vserver",
    "open_by_handle_at",
    "bdflush",
    "pciconfig_iobase",
    "pciconfig_read",
    "pciconfig_write",
)

BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": (
        "unshare",
        "setns",
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "fanotify_init",
        "lookup_dcookie",
        "name_to_handle_at",
        "quotactl",
        "quotactl_fd",
        "bpf",
        "perf_event_open",
        "syslog",
    ),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_MODULE": ("init_module", "finit_module", "delete_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": (
        "settimeofday",
        "stime",
        "clock_settime",
        "clock_settime64",
        "clock_adjtime",
        "clock_adjtime64",
    ),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "set_mempolicy", "mbind", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}

CLONE_NEW_MASK = 0x7E020000
"""CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET."""
AF_ALG = 38
AF_VSOCK = 40
ALLOWED_PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)


def denied_calls(capabilities: Iterable[str]) -> set[str]:
    """The calls refused with EPERM for a process holding ``capabilities``."""
    granted = set(capabilities)
    denied = set(ALWAYS_DENIED)
    unlocked: set[str] = set()
    for cap, calls in BY_CAPABILITY.items():
        (unlocked if cap in granted else denied).update(calls)
    return denied - unlocked


CACHE_DIR = "/run/composer/seccomp"
"""Compiled filters kept between processes (a tmpfs: gone at reboot)."""


@functools.lru_cache(maxsize=32)
def compiled(capabilities: frozenset[str]) -> bytes:
    """The BPF program for ``capabilities``: from the cache, or compiled and cached.

    Compiling goes through libseccomp for ~400 rules (about 0.25 s), which
    every ``run`` or build would pay again; the cache key covers everything
    the program depends on (this module's rules, the capability set, the
    machine, the kernel and libseccomp), so a stale program is never used.
    """
    path = _cache_path(capabilities)
    if path is not None:
        with contextlib.suppress(OSError), open(path, "rb") as f:
            return f.read()
    program = _compile(capabilities)
    if path is not None:
        with contextlib.suppress(OSError):
            os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=CACHE_DIR)
            with os.fdopen(fd, "wb") as f:
                f.write(program)
            os.replace(tmp, path)
    return program


def _cache_path(capabilities: frozenset[str]) -> str | None:
    try:
        with open(__file__, "rb") as f:
            source = f.read()
    except OSError:
        return None
    h = hashlib.sha256(source)
    for part in (*sorted(capabilities), platform.machine(), os.uname().release, _lib_version()):
        h.update(part.encode() + b"\0")
    return os.path.join(CACHE_DIR, h.hexdigest() + ".bpf")


def _lib_version() -> str:
    """libseccomp's version (``a.b.c``), part of the cache key."""
    import ctypes

    class _Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
        lib.seccomp_version.restype = ctypes.POINTER(_Version)
        v = lib.seccomp_version().contents
    except (OSError, AttributeError):
        return "unknown"
    return f"{v.major}.{v.minor}.{v.micro}"


def _compile(capabilities: frozenset[str]) -> bytes:
    """Build the BPF program (native byte order) for ``capabilities`` with libseccomp.

    Default action EPERM, as Docker's: every system call libseccomp knows
    for these architectures is allowed by name, except the denied ones and
    the four with argument rules (``clone``, ``clone3``, ``socket``,
    ``personality``). A number libseccomp does not know is refused.
    """
    import pyseccomp as sc

    native = sc.system_arch()
    archs = [native]
    if native == sc.Arch.X86_64:
        archs += [sc.Arch.X86, sc.Arch.X32]
    flt = sc.SyscallFilter(sc.ERRNO(errno.EPERM))
    for arch in archs[1:]:
        flt.add_arch(arch)

    def rule(action: int, name: str, *args: object) -> None:
        # A name that is no system call on these architectures is skipped.
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            flt.add_rule(action, name, *args)

    special = {"clone", "clone3", "socket", "personality"}
    skip = denied_calls(capabilities) | special
    for name in sorted(_known_names(tuple(archs)) - skip):
        rule(sc.ALLOW, name)
    if "CAP_SYS_ADMIN" in capabilities:
        rule(sc.ALLOW, "clone")
        rule(sc.ALLOW, "clone3")
    else:
        rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_NEW_MASK, 0))
        rule(sc.ERRNO(errno.ENOSYS), "clone3")
    rule(sc.ALLOW, "socket", sc.Arg(0, sc.LT, AF_ALG))
    rule(sc.ALLOW, "socket", sc.Arg(0, sc.EQ, AF_ALG + 1))
    rule(sc.ALLOW, "socket", sc.Arg(0, sc.GT, AF_VSOCK))
    for persona in ALLOWED_PERSONAS:
        rule(sc.ALLOW, "personality", sc.Arg(0, sc.EQ, persona))
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        return out.read()


@functools.lru_cache(maxsize=4)
def _known_names(archs: tuple[int, ...]) -> frozenset[str]:
    """Every system call name libseccomp knows for ``archs`` (3,000 lookups: done once)."""
    import pyseccomp as sc

    names: set[str] = set()
    for arch in archs:
        for nr in range(0, 1024):
            try:
                names.add(sc.resolve_syscall(arch, nr).decode())
            except ValueError:
                continue
    return frozenset(names)


def load(capabilities: Iterable[str]) -> None:
    """Install the filter on the calling thread (needs no_new_privs or CAP_SYS_ADMIN)."""
    syscalls.load_seccomp_bpf(compiled(frozenset(capabilities)))


def filter_mode(pid: int | str = "self") -> int:
    """The ``Seccomp:`` field of ``/proc/<pid>/status`` (0 off, 2 filter)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    return 0
