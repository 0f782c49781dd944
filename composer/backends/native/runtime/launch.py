"""Start a container's PID 1: ``launch(spec, stdio, before_exec)``.

The dance (runc's, in Python with ctypes):

1. parent: create the cgroup, fork the *intermediate*, put it in the cgroup,
   tell it to go on;
2. intermediate: join the namespaces given by path, ``unshare`` the new
   ones, fork the container process (PID 1 of the new PID namespace),
   report its host pid, exit;
3. container process: mounts, ``pivot_root``, read-only and masked paths,
   sysctls, hostname — while the parent, knowing the pid, runs
   ``before_exec(pid)`` (network plumbing into ``/proc/<pid>/ns/net``);
4. container process: waits for the parent's go, drops privileges
   (``process.finish_and_exec``) and execs.

``launch`` returns once the exec happened, or raises the child's error. The
caller must be a child subreaper (``syscalls.set_child_subreaper``): the
intermediate exits, PID 1 is re-parented to the caller, and the caller
``waitpid``s it for the exit code.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import struct
import time
from collections.abc import Callable

from composer.errors import Unsupported

from . import devices, masks, mounts, process, report, seccomp, syscalls
from .cgroups import Cgroup, Layout, host_layout
from .paths import ensure_target
from .spec import INIT_TARGET, Launched, LaunchSpec, MountEntry, Stdio
from .users import UserError, resolve_in_root

BeforeExec = Callable[[int], None]


def launch(
    spec: LaunchSpec,
    stdio: Stdio,
    before_exec: BeforeExec | None = None,
    *,
    die_with_parent: bool = False,
) -> Launched:
    """Start ``spec``'s process; see the module docstring for the protocol.

    ``die_with_parent``: PID 1 gets SIGKILL when the caller ends (a one-off
    that the CLI process runs itself must not outlive it); never for what a
    supervisor starts, whose containers outlive it.

    Everything the child runs after ``pivot_root`` must already be imported:
    the host's module paths are gone from its view by then.
    """
    if not syscalls.is_child_subreaper():
        raise Unsupported(
            "the native runtime must run in a child subreaper",
            "call composer.backends.native.runtime.syscalls.set_child_subreaper() first",
        )
    for ns in spec.namespaces:
        if ns.type == "user" or (ns.type == "mnt" and ns.path is not None):
            raise Unsupported(
                f"container {spec.id}: a {'joined mount' if ns.type == 'mnt' else 'user'} "
                "namespace is not supported by the native runtime",
                "remove userns_mode, or use --backend docker",
            )
    if spec.namespace("mnt") is None:
        raise Unsupported(
            f"container {spec.id}: a container needs its own mount namespace",
            "keep the mnt entry in LaunchSpec.namespaces",
        )
    if spec.seccomp == "default" and not spec.privileged:
        seccomp.compiled(frozenset(spec.capabilities))  # once per capability set, in the parent
    layout = host_layout()
    cgroup = Cgroup(spec.cgroup.path, layout).create(spec.cgroup) if spec.cgroup else None
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    rep_r, rep_w = os.pipe2(os.O_CLOEXEC)
    try:
        middle = os.fork()
    except BaseException:
        for fd in (go_r, go_w, rep_r, rep_w):
            os.close(fd)
        raise
    if middle == 0:
        _intermediate(spec, layout, stdio, go_r, go_w, rep_r, rep_w, die_with_parent)
    os.close(go_r)
    os.close(rep_w)
    pid = 0
    middle_left = True
    try:
        reader = report.Reader(rep_r)
        if cgroup is not None:
            cgroup.add(middle)
        _release(go_w, b"1")
        item = reader.next()
        _reap(middle)
        middle_left = False
        if item is None:
            raise report.LaunchError(f"container {spec.id}: the runtime child died")
        if "error" in item:
            report.raise_for(item, f"container {spec.id}")
        pid = int(str(item["pid"]))
        if before_exec is not None:
            before_exec(pid)
        _release(go_w, b"2")
        item = reader.next()
        if item is not None and "error" in item:
            _reap(pid)
            pid = 0
            report.raise_for(item, f"container {spec.id}")
        started = process.start_time(pid)
        if spec.init:
            _wait_for_init(pid)
        return Launched(pid=pid, start_time=started, cgroup_path=cgroup.path if cgroup else None)
    except BaseException:
        for child in (middle if middle_left else 0, pid):
            if child:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
                _reap(child)
        if cgroup is not None:
            with contextlib.suppress(OSError):
                cgroup.remove()
        raise
    finally:
        os.close(go_w)
        os.close(rep_r)


def _wait_for_init(pid: int, timeout: float = 2.0) -> None:
    """Return once the init (tini) has started the program, or has exited.

    Until tini has set up its signal handling, a signal to PID 1 finds no
    handler and is dropped (PID 1 ignores what it does not handle): a
    ``stop`` right after ``start`` would then wait out the grace period.
    Tini starts the program only after that setup, so a child means ready.
    """
    path = f"/proc/{pid}/task/{pid}/children"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if f.read().strip():
                    return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.0005)


def _release(fd: int, step: bytes) -> None:
    """Tell the child to go on; a child that already failed has its error in the report."""
    with contextlib.suppress(BrokenPipeError):
        os.write(fd, step)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _intermediate(
    spec: LaunchSpec,
    layout: Layout,
    stdio: Stdio,
    go_r: int,
    go_w: int,
    rep_r: int,
    rep_w: int,
    die_with_parent: bool,
) -> None:
    """Never returns."""
    code = 1
    try:
        process.close_fds_except({go_r, rep_w, *stdio})
        if os.read(go_r, 1) != b"1":
            os._exit(1)
        flags = 0
        for ns in spec.namespaces:
            if ns.path is not None:
                fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    syscalls.setns(fd, syscalls.NS_FLAGS[ns.type])
                finally:
                    os.close(fd)
            elif ns.type != "cgroup" or layout.mode == "v2":
                flags |= syscalls.NS_FLAGS[ns.type]
        syscalls.unshare(flags)
        child = os.fork()
        if child == 0:
            _container(spec, layout, stdio, go_r, rep_w, die_with_parent)  # never returns
        report.send(rep_w, pid=child)
        code = 0
    except BaseException as exc:
        report.send_failure(rep_w, exc)
    finally:
        process.child_exit(code)


def _container(
    spec: LaunchSpec, layout: Layout, stdio: Stdio, go_r: int, rep_w: int, die_with_parent: bool
) -> None:
    try:
        process.reset_signals()
        process.setup_stdio(*stdio, tty=spec.tty)
        root_fd = _build_filesystem(spec, layout)
        net = spec.namespace("net")
        if net is not None and net.path is None:
            loopback_up()
        if spec.namespace("uts") is not None:
            if spec.hostname:
                syscalls.sethostname(spec.hostname)
            if spec.domainname:
                syscalls.setdomainname(spec.domainname)
        process.set_oom_score_adj(spec.oom_score_adj)
        try:
            user = resolve_in_root(root_fd, spec.user, spec.additional_groups)
        except UserError as exc:
            raise process.ChildFailure("user", str(exc)) from exc
        os.close(root_fd)
        if os.read(go_r, 1) != b"2":
            os._exit(1)
        if not die_with_parent:
            os.close(go_r)
        args = (INIT_TARGET, "--", *spec.args) if spec.init else spec.args
        if not args:
            raise process.ChildFailure("config", "no command given and the image has none")
        process.finish_and_exec(
            args=args,
            env=process.with_home(spec.env, user.home),
            cwd=spec.cwd or "/",
            user=user,
            capabilities=spec.capabilities,
            no_new_privileges=spec.no_new_privileges,
            use_seccomp=spec.seccomp == "default" and not spec.privileged,
            rlimits=spec.rlimits,
            # The launching process holds the write end until the exec (module notes).
            parent_fd=go_r if die_with_parent else -1,
        )
    except BaseException as exc:
        report.send_failure(rep_w, exc)
    process.child_exit(127)


def loopback_up() -> None:
    """Bring ``lo`` up in a new network namespace (Docker does, even for ``network_mode: none``)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s.fileno(), siocgifflags, req))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def _build_filesystem(spec: LaunchSpec, layout: Layout) -> int:
    """Everything from the rootfs mount to the masked paths; returns an fd of the new ``/``."""
    mounts.make_private_root()
    root_fd = mounts.mount_rootfs(spec.rootfs)
    mounts.mount_defaults(root_fd, spec, layout)
    extra = list(spec.mounts)
    if spec.init:
        extra.append(MountEntry(INIT_TARGET, "bind", spec.init_path, ("bind", "ro")))
    mounts.apply_mounts(root_fd, extra)
    if spec.cwd and spec.cwd != "/":
        # Docker creates a missing working directory.
        with contextlib.suppress(OSError):
            os.close(ensure_target(root_fd, spec.cwd, directory=True))
    if spec.tty:
        devices.bind_console(root_fd, 0)
    masks.pivot(root_fd)
    os.close(root_fd)
    root_fd = os.open("/", syscalls.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    masks.write_sysctls(spec.sysctls)
    masks.readonly_paths(root_fd, spec.readonly_paths)
    masks.masked_paths(root_fd, spec.masked_paths)
    if spec.readonly_rootfs:
        masks.readonly_root()
    return root_fd
