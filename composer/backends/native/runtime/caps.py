"""Capabilities: Docker's default set, ``cap_add``/``cap_drop``, and applying them.

Docker gives a container 14 capabilities (``CapEff: 00000000a80425fb``),
the same set in bounding, permitted and effective and none inheritable or
ambient. A non-root user ends with none after ``execve`` (no ambient
capabilities), which the kernel does by itself once the bounding set and
the ids are right.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import syscalls

CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

DOCKER_DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except OSError:
        return max(CAPABILITIES.values())


def normalize(name: str) -> str:
    """``net_admin``, ``NET_ADMIN``, ``CAP_NET_ADMIN`` → ``CAP_NET_ADMIN`` (else ValueError)."""
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in CAPABILITIES:
        raise ValueError(f"unknown capability {name!r}")
    return upper


def all_caps() -> tuple[str, ...]:
    top = last_cap()
    return tuple(n for n, v in CAPABILITIES.items() if v <= top)


def compute(
    cap_add: Iterable[str] = (), cap_drop: Iterable[str] = (), *, privileged: bool = False
) -> tuple[str, ...]:
    """Docker's rule: defaults, minus drops (``ALL`` drops all), plus adds (``ALL`` adds all).

    Adds win over drops (``cap_drop: [ALL]`` + ``cap_add: [NET_ADMIN]`` keeps
    only NET_ADMIN); ``privileged`` keeps every capability.
    """
    if privileged:
        return all_caps()
    adds = {normalize(c) for c in cap_add}
    drops = {normalize(c) for c in cap_drop}
    if "ALL" in adds:
        return all_caps()
    base = set() if "ALL" in drops else set(DOCKER_DEFAULT_CAPS) - drops
    base |= adds
    return tuple(sorted(base, key=CAPABILITIES.__getitem__))


def mask(names: Iterable[str]) -> int:
    """The 64-bit mask of ``names`` (unknown names are ignored by the kernel anyway)."""
    value = 0
    for name in names:
        value |= 1 << CAPABILITIES[normalize(name)]
    return value


def drop_bounding(keep: int) -> None:
    """Remove every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)


def current_permitted() -> int:
    """This process's permitted set (``CapPrm``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapPrm:"):
                return int(line.split()[1], 16)
    return 0


def apply(keep: int) -> None:
    """Effective = permitted = ``keep``; nothing inheritable or ambient.

    Capabilities the runtime itself lacks (a host that withholds some from
    root) cannot be granted and are left out, as Docker's ``privileged``
    gets only what the daemon has.
    """
    keep &= current_permitted()
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    syscalls.capset(keep, keep, 0)
