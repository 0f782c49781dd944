"""Container cgroups on cgroup v1, v2 and the hybrid layout.

The layout is read from ``/proc/self/mountinfo``: every v1 hierarchy
(``/sys/fs/cgroup/<controller>``, including named ones like
``name=systemd``) and the v2 tree (``/sys/fs/cgroup`` or, on a hybrid host,
``/sys/fs/cgroup/unified``). A container's cgroup is the same relative
path in each of them (``composer/<id>``, as Docker uses ``docker/<id>``);
limits go wherever their controller lives, which on a hybrid host is v1.

Limits follow Docker: ``memory_swap`` is the memory+swap total,
``cpu_quota``/``cpu_period`` come from ``cpus``, ``cpu_shares`` becomes a
v2 ``cpu.weight`` by the current (log-scale) formula, and the v1 device
controller gets Docker's default rules (every node may be created, only the
standard ones opened).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import signal
import time
from dataclasses import dataclass

from .spec import CgroupSpec

DEFAULT_PARENT = "composer"

DOCKER_DEVICE_RULES: tuple[str, ...] = (
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
)
"""Docker's default device allow-list (after ``a`` is denied)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each hierarchy is mounted: v1 controller name → mount point, and the v2 tree."""

    v1: tuple[tuple[str, str], ...]
    unified: str | None

    @property
    def mode(self) -> str:
        if self.v1 and self.unified:
            return "hybrid"
        return "v1" if self.v1 else "v2"

    def v1_mount(self, controller: str) -> str | None:
        for name, mountpoint in self.v1:
            if name == controller:
                return mountpoint
        return None

    def mountpoints(self) -> list[str]:
        seen: list[str] = []
        for _, mp in self.v1:
            if mp not in seen:
                seen.append(mp)
        if self.unified:
            seen.append(self.unified)
        return seen


def detect_layout(mountinfo: str = "/proc/self/mountinfo") -> Layout:
    v1: list[tuple[str, str]] = []
    unified: str | None = None
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            parts = right.split()
            if len(parts) < 3:
                continue
            mountpoint = left.split()[4]
            if parts[0] == "cgroup2":
                unified = unified or mountpoint
            elif parts[0] == "cgroup":
                for opt in parts[2].split(","):
                    if opt in ("rw", "ro") or opt.startswith(("release_agent", "clone_children")):
                        continue
                    if opt == "xattr" or opt == "noprefix":
                        continue
                    v1.append((opt.removeprefix("name="), mountpoint))
    return Layout(tuple(v1), unified)


@functools.lru_cache(maxsize=1)
def host_layout() -> Layout:
    """``detect_layout()`` of this process's view, read once (hierarchies are not remounted)."""
    return detect_layout()


def cpu_shares_to_weight(shares: int) -> int:
    """cgroup v2 ``cpu.weight`` for v1 ``cpu.shares`` (the log-scale formula of runc/crun).

    Maps 2 → 1, 1024 → 100 and 262144 → 10000, quadratic in log2 so that the
    default (1024) lands on v2's default weight (100).
    """
    if shares <= 0:
        return 100
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    lg = math.log2(shares)
    exponent = (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0
    return max(1, min(10000, math.ceil(10**exponent)))


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


class Cgroup:
    """One container cgroup (the same relative path in every hierarchy)."""

    def __init__(self, path: str, layout: Layout | None = None) -> None:
        clean = path.strip("/")
        if not clean or ".." in clean.split("/"):
            raise ValueError(f"invalid cgroup path {path!r}")
        self.path = clean
        self.layout = layout or host_layout()

    def dirs(self) -> list[str]:
        return [os.path.join(mp, self.path) for mp in self.layout.mountpoints()]

    def _ctrl_dir(self, controller: str) -> str | None:
        mp = self.layout.v1_mount(controller)
        if mp is not None:
            return os.path.join(mp, self.path)
        if self.layout.unified and self.layout.mode == "v2":
            return os.path.join(self.layout.unified, self.path)
        return None

    # --- lifecycle ---------------------------------------------------------

    def create(self, spec: CgroupSpec | None = None) -> Cgroup:
        """Make the directories and write the limits (idempotent)."""
        for mp in self.layout.mountpoints():
            for attempt in range(3):
                try:
                    self._mkdirs(mp)
                    break
                except FileNotFoundError:
                    # A shared parent was removed (``remove_empty_parent`` of
                    # another caller) between our mkdirs: make it again.
                    if attempt == 2:
                        raise
        if spec is not None:
            self.apply(spec)
        return self

    def _mkdirs(self, mountpoint: str) -> None:
        current = mountpoint
        is_cpuset = mountpoint == self.layout.v1_mount("cpuset")
        is_v2 = mountpoint == self.layout.unified and self.layout.mode == "v2"
        for part in self.path.split("/"):
            parent = current
            current = os.path.join(current, part)
            if is_v2:
                self._enable_v2_controllers(parent)
            try:
                os.mkdir(current, 0o755)
            except FileExistsError:
                continue
            if is_cpuset:
                # A new v1 cpuset is empty and refuses tasks until it has cpus and mems.
                for name in ("cpuset.cpus", "cpuset.mems"):
                    _write(os.path.join(current, name), _read(os.path.join(parent, name)).strip())

    @staticmethod
    def _enable_v2_controllers(parent: str) -> None:
        try:
            available = _read(os.path.join(parent, "cgroup.controllers")).split()
            enabled = _read(os.path.join(parent, "cgroup.subtree_control")).split()
        except OSError:
            return
        want = [c for c in ("cpu", "cpuset", "memory", "pids", "io") if c in available]
        missing = [c for c in want if c not in enabled]
        if missing:
            with contextlib.suppress(OSError):
                _write(
                    os.path.join(parent, "cgroup.subtree_control"),
                    " ".join("+" + c for c in missing),
                )

    def apply(self, spec: CgroupSpec) -> None:
        """Write ``spec``'s limits into the controllers that exist on this host."""
        if self.layout.v1_mount("memory") is not None or self.layout.mode != "v2":
            self._apply_v1(spec)
        else:
            self._apply_v2(spec)

    def _apply_v1(self, spec: CgroupSpec) -> None:
        mem = self._ctrl_dir("memory")
        if mem:
            if spec.memory_limit is not None:
                _write(f"{mem}/memory.limit_in_bytes", str(spec.memory_limit))
            if spec.memory_swap is not None and os.path.exists(
                f"{mem}/memory.memsw.limit_in_bytes"
            ):
                _write(f"{mem}/memory.memsw.limit_in_bytes", str(spec.memory_swap))
            if spec.memory_reservation is not None:
                _write(f"{mem}/memory.soft_limit_in_bytes", str(spec.memory_reservation))
            if spec.memory_swappiness is not None:
                _write(f"{mem}/memory.swappiness", str(spec.memory_swappiness))
        cpu = self._ctrl_dir("cpu")
        if cpu:
            if spec.cpu_period is not None:
                _write(f"{cpu}/cpu.cfs_period_us", str(spec.cpu_period))
            if spec.cpu_quota is not None:
                _write(f"{cpu}/cpu.cfs_quota_us", str(spec.cpu_quota))
            if spec.cpu_shares is not None:
                _write(f"{cpu}/cpu.shares", str(spec.cpu_shares))
        cpuset = self._ctrl_dir("cpuset")
        if cpuset:
            if spec.cpuset_cpus is not None:
                _write(f"{cpuset}/cpuset.cpus", spec.cpuset_cpus)
            if spec.cpuset_mems is not None:
                _write(f"{cpuset}/cpuset.mems", spec.cpuset_mems)
        pids = self._ctrl_dir("pids")
        if pids and spec.pids_limit is not None:
            _write(f"{pids}/pids.max", "max" if spec.pids_limit <= 0 else str(spec.pids_limit))
        devices = self._ctrl_dir("devices")
        if devices:
            if spec.allow_all_devices:
                _write(f"{devices}/devices.allow", "a")
            else:
                _write(f"{devices}/devices.deny", "a")
                for rule in (*DOCKER_DEVICE_RULES, *spec.device_rules):
                    _write(f"{devices}/devices.allow", rule)

    def _apply_v2(self, spec: CgroupSpec) -> None:
        d = os.path.join(self.layout.unified or "/sys/fs/cgroup", self.path)
        if spec.memory_limit is not None:
            _write(f"{d}/memory.max", str(spec.memory_limit))
        if spec.memory_swap is not None and os.path.exists(f"{d}/memory.swap.max"):
            swap = spec.memory_swap
            value = "max" if swap < 0 else str(max(0, swap - (spec.memory_limit or 0)))
            _write(f"{d}/memory.swap.max", value)
        if spec.memory_reservation is not None:
            _write(f"{d}/memory.low", str(spec.memory_reservation))
        if spec.cpu_quota is not None or spec.cpu_period is not None:
            quota = "max" if not spec.cpu_quota or spec.cpu_quota < 0 else str(spec.cpu_quota)
            _write(f"{d}/cpu.max", f"{quota} {spec.cpu_period or 100000}")
        if spec.cpu_shares is not None:
            _write(f"{d}/cpu.weight", str(cpu_shares_to_weight(spec.cpu_shares)))
        if spec.cpuset_cpus is not None:
            _write(f"{d}/cpuset.cpus", spec.cpuset_cpus)
        if spec.cpuset_mems is not None:
            _write(f"{d}/cpuset.mems", spec.cpuset_mems)
        if spec.pids_limit is not None:
            _write(f"{d}/pids.max", "max" if spec.pids_limit <= 0 else str(spec.pids_limit))
        # Device rules on pure v2 need an eBPF program; the device nodes a
        # container gets are still only the ones made in its /dev.

    def add(self, pid: int) -> None:
        """Move ``pid`` into this cgroup in every hierarchy."""
        for d in self.dirs():
            _write(os.path.join(d, "cgroup.procs"), str(pid))

    # --- queries and control ------------------------------------------------

    def _procs_dir(self) -> str:
        for ctrl in ("pids", "memory", "freezer"):
            d = self._ctrl_dir(ctrl)
            if d:
                return d
        return self.dirs()[0]

    def pids(self) -> list[int]:
        try:
            text = _read(os.path.join(self._procs_dir(), "cgroup.procs"))
        except FileNotFoundError:
            return []
        return [int(x) for x in text.split()]

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.dirs())

    def freeze(self, timeout: float = 5.0) -> None:
        """Stop every process (pause); returns once the kernel says they are frozen."""
        self._set_frozen(True, timeout)

    def thaw(self, timeout: float = 5.0) -> None:
        self._set_frozen(False, timeout)

    def frozen(self) -> bool:
        d = self.layout.v1_mount("freezer")
        if d is not None:
            return _read(os.path.join(d, self.path, "freezer.state")).strip() == "FROZEN"
        assert self.layout.unified is not None
        events = _read(os.path.join(self.layout.unified, self.path, "cgroup.events"))
        return "frozen 1" in events

    def _set_frozen(self, frozen: bool, timeout: float) -> None:
        d = self.layout.v1_mount("freezer")
        if d is not None:
            path = os.path.join(d, self.path, "freezer.state")
            want = "FROZEN" if frozen else "THAWED"
            deadline = time.monotonic() + timeout
            while True:
                _write(path, want)
                if _read(path).strip() == want:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cgroup {self.path} did not reach {want}")
                time.sleep(0.002)
        assert self.layout.unified is not None
        base = os.path.join(self.layout.unified, self.path)
        _write(os.path.join(base, "cgroup.freeze"), "1" if frozen else "0")
        deadline = time.monotonic() + timeout
        while self.frozen() != frozen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"cgroup {self.path} did not {'freeze' if frozen else 'thaw'}")
            time.sleep(0.002)

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Signal every process of the cgroup (thawing first so SIGKILL is delivered)."""
        with contextlib.suppress(OSError, AssertionError):
            if self.frozen():
                self.thaw()
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def remove(self, timeout: float = 5.0) -> None:
        """Remove the directories; kills what is left first. Missing ones are fine."""
        deadline = time.monotonic() + timeout
        while True:
            busy = False
            for d in self.dirs():
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        raise
                    busy = True
            if not busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"cgroup {self.path} still has processes")
            self.kill_all()
            time.sleep(0.005)


def remove_empty_parent(path: str, layout: Layout | None = None) -> None:
    """Remove the parent cgroup ``path`` in every hierarchy if nothing is left in it.

    A parent still holding a container (of another caller) stays: ``rmdir``
    of a non-empty cgroup fails and is ignored.
    """
    clean = path.strip("/")
    if not clean or ".." in clean.split("/"):
        raise ValueError(f"invalid cgroup path {path!r}")
    for mp in (layout or host_layout()).mountpoints():
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(mp, clean))


def cgroup_of(pid: int | str = "self") -> dict[str, str]:
    """``/proc/<pid>/cgroup`` as hierarchy → path (v2 under ``""``)."""
    out: dict[str, str] = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c.removeprefix("name=")] = path
    return out
