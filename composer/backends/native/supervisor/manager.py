"""The containers of one project as the supervisor runs them.

``ProjectManager`` holds one ``Managed`` per container and does what the
protocol's verbs ask: start (stdio, networks, launch, ports, DNS, hooks,
healthchecks), stop (pre-stop hooks, stop signal, grace period, SIGKILL),
kill, pause, unpause, wait and attach; it records every change in
``state.json`` and applies restart policies when a process ends.

Container output goes through FIFOs in the container's directory rather
than anonymous pipes: the container holds its end open read-write, so it
always has a reader and never gets ``EPIPE``/``SIGPIPE`` when a supervisor
dies; the next supervisor opens the FIFOs again and carries on logging.
(A container with a TTY has a pseudo-terminal instead, whose master dies
with the supervisor that held it: such a container is re-adopted without
its output.)

Locks: ``lock`` (with the ``changed`` condition) guards every ``Managed``
and is never held across a launch, a hook or a wait; each container's
``op_lock`` serialises its lifecycle verbs. Launches of different
containers run in parallel (one thread per client connection).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal as signals
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from composer.backends.native.runtime.spec import Launched, LaunchSpec, Stdio
from composer.backends.native.state import StateRoot
from composer.backends.native.supervisor import health as H
from composer.backends.native.supervisor import probes
from composer.backends.native.supervisor.attach import Attachment
from composer.backends.native.supervisor.launcher import Launcher, send_signal
from composer.backends.native.supervisor.logs import LogFile, LogPump
from composer.backends.native.supervisor.netglue import NetGlue
from composer.backends.native.supervisor.records import (
    EXIT_UNKNOWN,
    ContainerRecord,
    ContainerRunState,
    HealthcheckRecord,
    HealthState,
    HookRecord,
    ProbeResult,
    log_path,
    project_container_ids,
    read_record,
    read_state,
    same_process,
    to_json,
    write_state,
)
from composer.backends.native.supervisor.restart import RestartTracker, parse_policy
from composer.backends.native.supervisor.timers import Timer, Timers
from composer.backends.native.supervisor.watcher import Exit, ExitWatcher
from composer.backends.signal_reach import parse_signal, signal_reaches
from composer.clock import Clock
from composer.errors import BackendError, Conflict, NotFound

if TYPE_CHECKING:
    from composer.backends.runtime import LogStream

log = logging.getLogger(__name__)

ACTIVE = ("running", "paused", "restarting")
DRAIN_TIMEOUT = 2.0
KILL_WAIT = 30.0
"""Seconds to wait for a process after SIGKILL before the stop is reported as failed."""


def _check(record: ContainerRecord) -> HealthcheckRecord | None:
    """The container's healthcheck, unless it has none or it is disabled (``NONE``)."""
    check = record.healthcheck
    if check is None or not check.test or check.test[0] == "NONE":
        return None
    return check


@dataclass(eq=False)
class Managed:
    record: ContainerRecord
    state: ContainerRunState
    tracker: RestartTracker
    log: LogFile
    op_lock: threading.Lock = field(default_factory=threading.Lock)
    launched: Launched | None = None
    pidfd: int = -1
    run: int = 0
    """Counts starts, so that callbacks of an earlier run are recognised as stale."""
    finished: threading.Event = field(default_factory=threading.Event)
    stdin_w: int = -1
    """Write end of the container's stdin (``stdin_open``), or a TTY master."""
    restart_timer: Timer | None = None
    health_timer: Timer | None = None
    starting: bool = False
    _launch: LaunchSpec | None = None

    def __post_init__(self) -> None:
        self.finished.set()

    @property
    def id(self) -> str:
        return self.record.id

    def launch_spec(self) -> LaunchSpec:
        if self._launch is None:
            self._launch = LaunchSpec.from_json(json.dumps(self.record.launch))
        return self._launch


class ProjectManager:
    def __init__(
        self,
        root: StateRoot,
        project: str,
        launcher: Launcher,
        clock: Clock,
        on_idle: Callable[[], None],
    ) -> None:
        self.root = root
        self.project = project
        self.launcher = launcher
        self.clock = clock
        self.on_idle = on_idle
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.containers: dict[str, Managed] = {}
        self.pump = LogPump()
        self.watcher = ExitWatcher()
        self.timers = Timers(on_error=lambda exc: log.exception("timer failed", exc_info=exc))
        self.net = NetGlue(root)

    # --- bookkeeping ----------------------------------------------------------------

    def get(self, container_id: str) -> Managed:
        """The container, loaded from its record on first use (``NotFound`` without one)."""
        with self.lock:
            m = self.containers.get(container_id)
            if m is not None:
                return m
            try:
                record = read_record(self.root, container_id)
            except (FileNotFoundError, ValueError) as exc:
                raise NotFound(f"no such container: {container_id}") from exc
            if record.project != self.project:
                raise NotFound(
                    f"container {container_id} belongs to project {record.project}, "
                    f"not {self.project}"
                )
            state = read_state(self.root, container_id)
            m = Managed(
                record,
                state,
                RestartTracker(parse_policy(record.restart), self.clock, state.restart_count),
                LogFile(log_path(self.root, container_id)),
            )
            self.containers[container_id] = m
            return m

    def _save(self, m: Managed, **changes: Any) -> None:
        """Change the container's state and write ``state.json`` (lock held)."""
        m.state = replace(m.state, **changes)
        if self.root.container(m.id).is_dir():  # never bring back a removed container's directory
            write_state(self.root, m.id, m.state)
        self.changed.notify_all()

    def active(self) -> bool:
        """Whether any container of the project is running, paused, starting or due to restart."""
        with self.lock:
            return any(m.state.status in ACTIVE or m.starting for m in self.containers.values())

    def forget(self, container_id: str, *, force: bool = False) -> None:
        """Stop tracking a container that is being removed (killed first with ``force``)."""
        m = self.get(container_id)
        if m.state.status in ACTIVE:
            if not force:
                raise Conflict(
                    f"cannot remove container {m.record.name}: container is {m.state.status}",
                    "stop the container before removing it or force the removal",
                )
            self.stop(container_id, timeout=0, signal="SIGKILL")
        with self.lock:
            self.containers.pop(container_id, None)
            m.log.close()
        self.on_idle()

    # --- adoption -------------------------------------------------------------------

    def adopt_all(self) -> None:
        """Take over the project's containers after another supervisor ended.

        A container whose recorded PID still runs with the same start time
        is watched again (its exit code will be ``EXIT_UNKNOWN``: it is not
        our child); one that is gone is recorded as exited with
        ``EXIT_UNKNOWN`` and its restart policy applies; one that was
        waiting to restart is started.
        """
        for cid in project_container_ids(self.root, self.project):
            # state.json alone says whether there is anything to adopt: the records of
            # containers only created (an up's, while this supervisor starts) are
            # decoded when first asked for
            if read_state(self.root, cid).status not in ACTIVE:
                continue
            from composer.backends.native.oneoff_owner import run_by_cli  # only when adopting

            if run_by_cli(self.root, cid):
                continue  # a one-off its CLI runs and removes itself (oneoff_owner.py)
            try:
                m = self.get(cid)
            except NotFound:
                continue
            status = m.state.status
            if status in ("running", "paused"):
                if same_process(m.state.pid, m.state.pid_start_time):
                    self._adopt(m)
                else:
                    self._lost(m)
            elif status == "restarting":
                self._schedule_restart(m, 0)

    def _adopt(self, m: Managed) -> None:
        try:
            pidfd = os.pidfd_open(m.state.pid)
        except ProcessLookupError:
            self._lost(m)
            return
        m.pidfd = pidfd
        m.run += 1
        run = m.run
        m.finished = threading.Event()
        m.launched = Launched(m.state.pid, m.state.pid_start_time, m.state.cgroup_path or None)
        m.log.open()
        if not m.record.tty:
            for stream in ("stdout", "stderr"):
                path = self.root.container(m.id) / f"{stream}.fifo"
                with contextlib.suppress(OSError):
                    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                    self.pump.add(m.id, stream, fd, m.log)
        try:
            ports = self.net.adopted(m.record)
        except Exception as exc:
            log.warning("container %s: ports and DNS after adoption: %s", m.id, exc)
            ports = ()
        with self.lock:
            self._save(m, ports=ports)
        self.watcher.watch(m.state.pid, pidfd, lambda e: self._exited(m, run, e))
        self._schedule_probe(m, run)

    def _lost(self, m: Managed) -> None:
        with contextlib.suppress(Exception):
            self.net.stopped(m.record)
        self._record_exit(m, exit_code=EXIT_UNKNOWN, exit_code_known=False)

    # --- start ------------------------------------------------------------------------

    def start(self, container_id: str, *, by_user: bool = True) -> None:
        m = self.get(container_id)
        with m.op_lock:
            self._start(m, by_user=by_user)

    def _start(self, m: Managed, *, by_user: bool) -> None:
        with self.lock:
            status = m.state.status
            if status == "running":
                return
            if status == "paused":
                raise Conflict(
                    f"cannot start container {m.record.name}: container is paused",
                    "unpause it instead",
                )
            if m.restart_timer is not None:
                m.restart_timer.cancel()
                m.restart_timer = None
            m.starting = True
        try:
            self._launch(m, by_user=by_user)
        finally:
            with self.lock:
                m.starting = False
                self.changed.notify_all()

    def _launch(self, m: Managed, *, by_user: bool) -> None:
        spec = m.launch_spec()
        m.log.open()
        child_fds, out_fds, keep_fd = self._stdio(m)
        try:
            launched = self.launcher.launch(
                spec, Stdio(*child_fds), before_exec=lambda pid: self.net.join(m.record, pid)
            )
            self.watcher.own(launched.pid)  # before the sweep can see it exit
            pidfd = os.pidfd_open(launched.pid)
        except BaseException as exc:
            for fd in {*child_fds, *(fd for fd, _ in out_fds), keep_fd} - {-1}:
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(Exception):
                self.net.stopped(m.record)
            message = str(exc) if isinstance(exc, BackendError) else f"{type(exc).__name__}: {exc}"
            with self.lock:
                self._save(m, error=message)
            if isinstance(exc, BackendError):
                raise
            raise BackendError(f"cannot start container {m.record.name}: {exc}") from exc
        for fd, stream in out_fds:
            self.pump.add(m.id, stream, fd, m.log)
        for fd in set(child_fds):
            os.close(fd)
        if by_user:
            m.tracker.user_start()
        else:
            m.tracker.started()
        with self.lock:
            m.run += 1
            run = m.run
            m.pidfd = pidfd
            m.launched = launched
            m.finished = threading.Event()
            if m.stdin_w >= 0:
                with contextlib.suppress(OSError):
                    os.close(m.stdin_w)
            m.stdin_w = keep_fd
            self._save(
                m,
                status="running",
                pid=launched.pid,
                pid_start_time=launched.start_time,
                cgroup_path=launched.cgroup_path or "",
                started_at=self.clock.now(),
                exit_code=None,
                exit_code_known=True,
                restart_count=m.tracker.restart_count,
                stopped_by_user=False,
                health=HealthState() if _check(m.record) else None,
                ports=(),
                error="",
            )
        self.watcher.watch(launched.pid, pidfd, lambda e: self._exited(m, run, e))
        try:
            ports = self.net.started(m.record)
        except Exception as exc:
            self.kill(m.id, "SIGKILL", user=True)
            raise BackendError(f"cannot publish the ports of {m.record.name}: {exc}") from exc
        if ports:
            with self.lock:
                if m.run == run:
                    self._save(m, ports=ports)
        for hook in m.record.post_start:
            self._hook(m, hook, "post_start")
        self._schedule_probe(m, run)

    def _stdio(self, m: Managed) -> tuple[tuple[int, int, int], list[tuple[int, LogStream]], int]:
        """The container's fds 0-2, the read ends for the pump, and the stdin end to keep."""
        if m.record.tty:
            master, slave = os.openpty()
            os.set_inheritable(master, False)
            return (slave, slave, slave), [(master, "stdout")], os.dup(master)
        out: list[tuple[int, LogStream]] = []
        child: list[int] = []
        streams: tuple[LogStream, ...] = ("stdout", "stderr")
        for stream in streams:
            path = self.root.container(m.id) / f"{stream}.fifo"
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISFIFO(os.lstat(path).st_mode):
                    os.unlink(path)
            with contextlib.suppress(FileExistsError):
                os.mkfifo(path, 0o600)
            # Read-write for the container: it is then always its own reader (module notes).
            child.append(os.open(path, os.O_RDWR | os.O_CLOEXEC))
            out.append((os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), stream))
        if m.record.stdin_open:
            stdin_r, keep = os.pipe2(os.O_CLOEXEC)
        else:
            stdin_r, keep = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), -1
        return (stdin_r, child[0], child[1]), out, keep

    # --- exit and restart -------------------------------------------------------------

    def _exited(self, m: Managed, run: int, result: Exit) -> None:
        """Called on the watcher thread; the bookkeeping runs on a thread of its own."""
        threading.Thread(
            target=self._finish, args=(m, run, result), name=f"exit-{m.id[:12]}", daemon=True
        ).start()

    def _finish(self, m: Managed, run: int, result: Exit) -> None:
        self.pump.drained(m.id, DRAIN_TIMEOUT)
        with self.lock:
            if m.run != run:
                return
            if m.health_timer is not None:
                m.health_timer.cancel()
                m.health_timer = None
            launched, m.launched = m.launched, None
            self.watcher.disown(m.state.pid)
            if m.pidfd >= 0:
                os.close(m.pidfd)
            m.pidfd = -1
            if m.stdin_w >= 0:
                with contextlib.suppress(OSError):
                    os.close(m.stdin_w)
                m.stdin_w = -1
        with contextlib.suppress(Exception):
            self.net.stopped(m.record)
        if launched is not None:
            try:
                self.launcher.release(m.launch_spec(), launched)
            except Exception as exc:
                log.warning("container %s: release after exit: %s", m.id, exc)
        self._record_exit(
            m,
            pid_start_time=0,
            cgroup_path="",
            exit_code=result.code,
            exit_code_known=result.known,
            ports=(),
        )

    def _record_exit(self, m: Managed, **changes: Any) -> None:
        """Record the end of a run and, in the same step, whether and when it restarts."""
        code = changes["exit_code"]
        now = self.clock.now()
        with self.lock:
            delay = m.tracker.exited(code, stopped_by_user=m.state.stopped_by_user)
            self._save(
                m,
                status="exited" if delay is None else "restarting",
                pid=0,
                finished_at=now,
                restart_count=m.tracker.restart_count,
                **changes,
            )
            m.finished.set()
            if delay is not None:
                self._schedule_restart(m, delay)
        if delay is None:
            self.on_idle()
        else:
            # Only state.json's last exit is seen by the event log; a restarted run's is not.
            self._event(m, "die", when=now, exitCode=str(code))

    def _schedule_restart(self, m: Managed, delay: float) -> None:
        def fire() -> None:
            threading.Thread(target=restart, name=f"restart-{m.id[:12]}", daemon=True).start()

        def restart() -> None:
            with m.op_lock:
                with self.lock:
                    if m.state.status != "restarting" or m.restart_timer is not timer:
                        return
                    m.restart_timer = None
                try:
                    self._start(m, by_user=False)
                    self._event(m, "start")
                except Exception as exc:
                    log.warning("container %s: restart failed: %s", m.id, exc)
                    with self.lock:
                        self._save(m, status="exited", error=str(exc))
                    self.on_idle()

        with self.lock:
            timer = self.timers.call_later(delay, fire)
            m.restart_timer = timer

    # --- stop, kill, pause ------------------------------------------------------------

    def stop(self, container_id: str, timeout: float | None, signal: str | None = None) -> None:
        """Graceful stop: pre-stop hooks, the stop signal, ``timeout`` seconds, SIGKILL."""
        m = self.get(container_id)
        grace = m.record.stop_timeout if timeout is None else timeout
        with self.lock:
            if m.state.status == "restarting" and m.restart_timer is not None:
                m.restart_timer.cancel()
                m.restart_timer = None
                self._save(m, status="exited", stopped_by_user=True)
                self.on_idle()
                return
            if m.state.status not in ("running", "paused"):
                return
            self._save(m, stopped_by_user=True)
            finished = m.finished
        if m.state.status == "running":
            for hook in m.record.pre_stop:
                self._hook(m, hook, "pre_stop")
        signo = parse_signal(signal or m.record.stop_signal)
        pid = m.state.pid
        if pid and signal_reaches(pid, signo) is False:
            grace = 0  # PID 1 has no handler: the kernel drops the signal (signal_reach.py)
        self._signal(m, signo, thaw=True)
        if finished.wait(max(grace, 0)):
            return
        self._signal(m, signals.SIGKILL, thaw=True)
        if not finished.wait(KILL_WAIT):
            raise BackendError(
                f"container {m.record.name} did not exit after SIGKILL",
                "the process may be stuck in the kernel (uninterruptible sleep)",
            )

    def kill(self, container_id: str, signal: str = "SIGKILL", *, user: bool = True) -> None:
        """Send ``signal``; SIGKILL or the stop signal count as a user stop (no restart)."""
        m = self.get(container_id)
        signo = parse_signal(signal)
        with self.lock:
            if m.state.status not in ("running", "paused"):
                raise Conflict(
                    f"cannot kill container {m.record.name}: container is not running"
                    f" ({m.state.status})"
                )
            final = signo in (signals.SIGKILL, parse_signal(m.record.stop_signal))
            if final and user:
                self._save(m, stopped_by_user=True)
        self._signal(m, signo, thaw=final)

    def _signal(self, m: Managed, signo: int, *, thaw: bool) -> None:
        # Under the lock: ``_finish`` closes the pidfd under it, so the fd number
        # can never have been reused for another process's pidfd here.
        with self.lock:
            if m.state.pid <= 0 or m.pidfd < 0:
                return
            with contextlib.suppress(ProcessLookupError):
                send_signal(m.pidfd, m.state.pid, signo)
            paused, launched = m.state.status == "paused", m.launched
        if thaw and paused and launched is not None:
            with contextlib.suppress(Exception):
                self.launcher.thaw(launched)
            with self.lock:
                if m.state.status == "paused":
                    self._save(m, status="running")

    def pause(self, container_id: str) -> None:
        m = self.get(container_id)
        with m.op_lock, self.lock:
            if m.state.status == "paused":
                raise Conflict(f"container {m.record.name} is already paused")
            if m.state.status != "running" or m.launched is None:
                raise Conflict(f"container {m.record.name} is not running")
            self.launcher.freeze(m.launched)
            self._save(m, status="paused")

    def unpause(self, container_id: str) -> None:
        m = self.get(container_id)
        with m.op_lock, self.lock:
            if m.state.status != "paused" or m.launched is None:
                raise Conflict(f"container {m.record.name} is not paused")
            self.launcher.thaw(m.launched)
            self._save(m, status="running")

    # --- wait, status, attach -----------------------------------------------------------

    def wait(self, container_id: str, timeout: float | None) -> int:
        """The exit code once the current run ends (at once when not running).

        A container waiting to restart counts as not running: its last exit
        code is returned. ``EXIT_UNKNOWN`` when the code could not be known.
        """
        m = self.get(container_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            while m.starting or m.state.status in ("running", "paused"):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    from composer.errors import Unavailable

                    raise Unavailable(f"timed out waiting for container {m.record.name}")
                self.changed.wait(left)
            return m.state.exit_code if m.state.exit_code is not None else 0

    def status(self, container_id: str) -> dict[str, Any]:
        m = self.get(container_id)
        with self.lock:
            out: dict[str, Any] = to_json(m.state)
            out["restart_pending"] = m.restart_timer is not None
            return out

    def attach(self, container_id: str, fds: list[int], *, stdin: bool) -> int:
        """Copy the container's output to ``fds`` (and ``fds[0]`` to its stdin), start it
        unless it runs, and return its exit code when it ends."""
        m = self.get(container_id)
        stdin_fd = fds[0] if stdin and fds else -1
        outs = fds[1:] if stdin else fds
        att = Attachment(stdout=outs[0] if outs else -1, stderr=outs[1] if len(outs) > 1 else -1)
        with self.lock:
            m.log.sinks.append(att.sink)
        try:
            with m.op_lock:
                self._start(m, by_user=True)
                with self.lock:
                    keep, finished, run = m.stdin_w, m.finished, m.run
            if stdin_fd >= 0 and keep >= 0:
                att.forward_stdin(stdin_fd, keep, lambda: self._stdin_eof(m, run))
            finished.wait()
        finally:
            with self.lock, contextlib.suppress(ValueError):
                m.log.sinks.remove(att.sink)
            att.close()
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return self.wait(container_id, None)

    def _stdin_eof(self, m: Managed, run: int) -> None:
        """End of an attached stdin: a one-off container sees end of file (``docker run -i``)."""
        if not m.record.oneoff or m.record.tty:
            return
        with self.lock:
            if m.run == run and m.stdin_w >= 0:
                os.close(m.stdin_w)
                m.stdin_w = -1

    # --- hooks and healthchecks ---------------------------------------------------------

    def _hook(self, m: Managed, hook: HookRecord, kind: str) -> None:
        pid = m.state.pid
        spec = probes.exec_spec(
            m.launch_spec(),
            hook.command,
            user=hook.user,
            working_dir=hook.working_dir,
            environment=hook.environment,
            privileged=hook.privileged,
        )
        try:
            result = probes.run_in(self.launcher, self.watcher, pid, spec, m.record.stop_timeout)
        except Exception as exc:
            m.log.write("stderr", f"{kind} hook failed: {exc}\n".encode())
            return
        if result.output:
            m.log.write("stdout", result.output.encode())
        if result.exit_code != 0:
            m.log.write("stderr", f"{kind} hook exited with {result.exit_code}\n".encode())

    def _schedule_probe(self, m: Managed, run: int) -> None:
        check = _check(m.record)
        if check is None:
            return
        status = m.state.health.status if m.state.health is not None else "starting"
        delay = H.next_probe_delay(check, m.state.started_at, self.clock.now(), status)

        def fire() -> None:
            threading.Thread(target=probe, name=f"health-{m.id[:12]}", daemon=True).start()

        def probe() -> None:
            with self.lock:
                if m.run != run or m.state.status not in ("running", "paused"):
                    return
                pid, paused = m.state.pid, m.state.status == "paused"
            if not paused:
                self._probe(m, run, pid)
            with self.lock:
                if m.run == run and m.state.status in ("running", "paused"):
                    self._schedule_probe(m, run)

        with self.lock:
            m.health_timer = self.timers.call_later(delay, fire)

    def _probe(self, m: Managed, run: int, pid: int) -> None:
        check = m.record.healthcheck
        assert check is not None
        spec = probes.exec_spec(m.launch_spec(), H.probe_args(check))
        try:
            res = probes.run_in(self.launcher, self.watcher, pid, spec, check.timeout)
            if res.exit_code == -1:
                result = H.timeout_result(res.start, res.end, check.timeout)
            else:
                result = ProbeResult(res.start, res.end, res.exit_code, res.output)
        except Exception as exc:
            now = self.clock.now()
            result = ProbeResult(now, now, -1, f"cannot run the healthcheck: {exc}")
        with self.lock:
            if m.run != run or m.state.health is None:
                return
            before = m.state.health.status
            health = H.apply_probe(m.state.health, result, check, m.state.started_at)
            self._save(m, health=health)
        if health.status != before:
            self._event(m, f"health_status: {health.status}")

    def _event(self, m: Managed, action: str, when: float | None = None, **attrs: str) -> None:
        """Append to the project's event log what happened without a client asking."""
        from composer.backends.native import events

        spec = m.record.spec
        labels = spec.get("labels") or {}
        attributes = {**labels, "name": m.record.name, "image": str(spec.get("image")), **attrs}
        events.record(
            self.root,
            self.project,
            "container",
            action,
            m.id,
            m.record.name,
            service=m.record.service,
            attributes=attributes,
            when=when,
        )

    # --- shutdown -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the supervisor's threads; containers keep running (a successor adopts them)."""
        self.timers.close()
        self.watcher.close()
        self.pump.close()
        self.net.close()
        with self.lock:
            for m in self.containers.values():
                m.log.close()
