"""Run a process inside a running container: ``exec``, healthchecks, hooks.

``exec_in(pid, spec, stdio)`` forks a helper that joins the container's
cgroup and namespaces (cgroup, ipc, uts, net, pid, mnt — the ones that
differ from ours), then forks again so that the new process is inside the
PID namespace, and that process applies the same rules as the container's
PID 1 (user from the container's ``/etc/passwd``, capabilities, seccomp,
no_new_privs, closed fds, checked cwd) before exec.

CVE-2019-5736: the helpers are marked non-dumpable before they enter
anything, so a process of the container can neither ptrace them nor open
``/proc/<helper>/exe`` (the host's Python) for writing; they exec (or exit)
as soon as they are set up.
"""

from __future__ import annotations

import contextlib
import os
import signal

from . import process, report, seccomp, syscalls
from .caps import all_caps
from .cgroups import cgroup_of, host_layout
from .spec import ExecSpec, Launched, LaunchSpec, Stdio
from .users import UserError, resolve_in_root

_NS_ORDER = ("cgroup", "ipc", "uts", "net", "pid", "mnt")


def exec_spec_for(
    container: LaunchSpec,
    args: tuple[str, ...],
    *,
    user: str | None = None,
    env: tuple[str, ...] = (),
    cwd: str | None = None,
    privileged: bool = False,
    tty: bool = False,
) -> ExecSpec:
    """Docker's ``exec`` defaults: the container's env (overridden by ``env``), user, cwd, rules."""
    merged: dict[str, str] = {}
    for item in (*container.env, *env):
        key, _, value = item.partition("=")
        merged[key] = value
    full = privileged or container.privileged
    return ExecSpec(
        args=args,
        env=tuple(f"{k}={v}" for k, v in merged.items()),
        cwd=cwd or container.cwd or "/",
        user=container.user if user is None else user,
        additional_groups=container.additional_groups,  # group_add applies to exec -u too
        capabilities=all_caps() if full else container.capabilities,
        no_new_privileges=container.no_new_privileges,
        seccomp="unconfined" if full else container.seccomp,
        tty=tty,
        rlimits=container.rlimits,
    )


def exec_in(pid: int, spec: ExecSpec, stdio: Stdio) -> Launched:
    """Start ``spec`` inside the container whose PID 1 is ``pid``; returns the new process.

    The caller must be a child subreaper (the process is re-parented to it)
    and waits for it like for any container process.
    """
    if spec.seccomp == "default":
        seccomp.compiled(frozenset(spec.capabilities))
    if not os.path.exists(f"/proc/{pid}"):
        raise report.LaunchError(f"container process {pid} is not running", "start it first")
    rep_r, rep_w = os.pipe2(os.O_CLOEXEC)
    helper = os.fork()
    if helper == 0:
        _helper(pid, spec, stdio, rep_r, rep_w)  # never returns
    os.close(rep_w)
    child = 0
    try:
        reader = report.Reader(rep_r)
        item = reader.next()
        _reap(helper)
        if item is None:
            raise report.LaunchError(f"exec in {pid}: the runtime helper died")
        if "error" in item:
            report.raise_for(item, "exec failed")
        child = int(str(item["pid"]))
        item = reader.next()
        if item is not None and "error" in item:
            _reap(child)
            child = 0
            report.raise_for(item, "exec failed")
        return Launched(pid=child, start_time=process.start_time(child))
    except BaseException:
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
            _reap(child)
        raise
    finally:
        os.close(rep_r)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _helper(pid: int, spec: ExecSpec, stdio: Stdio, rep_r: int, rep_w: int) -> None:
    code = 1
    try:
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        process.close_fds_except({rep_w, *stdio})
        fds: list[tuple[str, int]] = []
        for ns in _NS_ORDER:
            theirs = f"/proc/{pid}/ns/{ns}"
            try:
                if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{ns}").st_ino:
                    continue
                fds.append((ns, os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)))
            except FileNotFoundError:
                continue
        _join_cgroup(pid)
        for ns, fd in fds:
            syscalls.setns(fd, syscalls.NS_FLAGS[ns])
            os.close(fd)
        child = os.fork()
        if child == 0:
            _run(spec, stdio, rep_w)  # never returns
        report.send(rep_w, pid=child)
        code = 0
    except BaseException as exc:
        report.send_failure(rep_w, exc)
    finally:
        process.child_exit(code)


def _join_cgroup(pid: int) -> None:
    """Move ourselves into the container's cgroup in every hierarchy (before joining its mnt ns)."""
    theirs = cgroup_of(pid)
    layout = host_layout()
    me = str(os.getpid())
    targets: list[str] = []
    for name, mountpoint in layout.v1:
        if name in theirs:
            targets.append(os.path.join(mountpoint, theirs[name].lstrip("/")))
    if layout.unified and "" in theirs:
        targets.append(os.path.join(layout.unified, theirs[""].lstrip("/")))
    for d in dict.fromkeys(targets):
        with contextlib.suppress(FileNotFoundError), open(f"{d}/cgroup.procs", "w") as f:
            f.write(me)


def _oom_score_like_pid_one() -> None:
    """The container's ``oom_score_adj`` (its PID 1's), not the caller's, as ``docker exec``."""
    try:
        with open("/proc/1/oom_score_adj") as f:
            wanted: int | None = int(f.read().strip())
    except (OSError, ValueError):
        wanted = None
    with contextlib.suppress(OSError):  # lowering it needs CAP_SYS_RESOURCE
        process.set_oom_score_adj(wanted)


def _run(spec: ExecSpec, stdio: Stdio, rep_w: int) -> None:
    try:
        process.reset_signals()
        process.setup_stdio(*stdio, tty=spec.tty)
        _oom_score_like_pid_one()
        root_fd = os.open("/", syscalls.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            user = resolve_in_root(root_fd, spec.user, spec.additional_groups)
        except UserError as exc:
            raise process.ChildFailure("user", str(exc)) from exc
        finally:
            os.close(root_fd)
        if not spec.args:
            raise process.ChildFailure("config", "no command given")
        process.finish_and_exec(
            args=spec.args,
            env=process.with_home(spec.env, user.home),
            cwd=spec.cwd or "/",
            user=user,
            capabilities=spec.capabilities,
            no_new_privileges=spec.no_new_privileges,
            use_seccomp=spec.seccomp == "default",
            rlimits=spec.rlimits,
        )
    except BaseException as exc:
        report.send_failure(rep_w, exc)
    process.child_exit(127)
