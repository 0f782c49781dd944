"""The fake engine's verbs around a running project: logs, exec, files, events, …

Containers print only what their ``Behaviour.output`` scripts, and exec'd
commands do what ``script_exec`` says (exit 0, silent, by default). Each
container has a small in-memory filesystem, enough for ``cp`` to round-trip
archives. Blocking verbs (``logs --follow``, ``wait``, ``attach``,
``events``) poll in steps of ``POLL`` on the clock, so with a ``FakeClock``
they return at the exact virtual time the awaited thing happens.
"""

from __future__ import annotations

import io
import posixpath
import shlex
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from typing import BinaryIO

from composer.backends import labels as lbl
from composer.backends.base import (
    EngineEvent,
    LogLine,
    LogStream,
    PathStat,
    PortBinding,
    ProjectSummary,
)
from composer.backends.fake.containers import ContainerVerbs
from composer.backends.fake.records import ExecScript, _Container
from composer.errors import BackendError, Conflict, NotFound, Unavailable

POLL = 0.1
"""Seconds between two looks at the fake engine while a verb blocks."""

DIRECTORY_MODE = (1 << 31) | 0o755
FILE_MODE = 0o644
TOP_TITLES = ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")


def _normal(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


class RuntimeVerbs(ContainerVerbs):
    """Logs, exec, attach, wait, top, files, events and listings, in memory."""

    # --- output ---------------------------------------------------------------

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        since: float | None = None,
        until: float | None = None,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> Iterator[LogLine]:
        with self._lock:
            c = self._find(container_id)
            self._record("logs", c.spec.name, follow)
            self._maybe_fail("logs", c.spec.name, c.spec.service, c.id)
            lines = [
                entry
                for entry in c.output
                if (since is None or entry[0] >= since) and (until is None or entry[0] <= until)
            ]
            if tail is not None:
                lines = lines[len(lines) - tail :] if tail > 0 else []
            seen = len(c.output)
        return self._follow_logs(c, lines, seen, follow, until, timestamps)

    def _follow_logs(
        self,
        c: _Container,
        first: Sequence[tuple[float, LogStream, str]],
        seen: int,
        follow: bool,
        until: float | None,
        timestamps: bool,
    ) -> Iterator[LogLine]:
        def line(entry: tuple[float, str, str]) -> LogLine:
            when, stream, text = entry
            return LogLine(
                "stderr" if stream == "stderr" else "stdout", text, when if timestamps else None
            )

        yield from (line(e) for e in first)
        while follow:
            with self._lock:
                running = self._status(c)[0] in ("running", "paused", "restarting")
                fresh, seen = c.output[seen:], len(c.output)
            yield from (line(e) for e in fresh if until is None or e[0] <= until)
            if not running or (until is not None and self.clock.now() >= until):
                return
            self.clock.sleep(POLL)

    # --- exec and attach ----------------------------------------------------------

    def exec_run(
        self,
        container_id: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        tty: bool = False,
        stdin: BinaryIO | None = None,
        privileged: bool = False,
        detach: bool = False,
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
    ) -> int:
        with self._lock:
            c = self._find(container_id)
            self._record("exec_run", c.spec.name, tuple(command), user, workdir, detach)
            self._maybe_fail("exec_run", c.spec.name, c.spec.service, c.id)
            if self._status(c)[0] != "running":
                raise Conflict(f"container {c.spec.name} is not running")
            script = self._exec_script(c, tuple(command))
            if not command:
                raise BackendError(f"exec in {c.spec.name}: no command given")
        if detach:
            return 0
        self.clock.sleep(script.duration)
        echoed = stdin.read() if stdin is not None and script.echo_stdin else b""
        if stdin is not None and not script.echo_stdin:
            stdin.read()
        for target, data in ((stdout, echoed + script.stdout), (stderr, script.stderr)):
            if tty:
                target = stdout
            if target is not None and data:
                target.write(data.replace(b"\n", b"\r\n") if tty else data)
                target.flush()
        return script.exit_code

    def _exec_script(self, c: _Container, command: tuple[str, ...]) -> ExecScript:
        for target in (c.spec.name, c.spec.service):
            for key in ((target, command), (target, None)):
                found = self._exec_scripts.get(key)
                if found is not None:
                    return found
        return ExecScript()

    def attach_run(
        self,
        container_id: str,
        *,
        stdin: BinaryIO | None,
        stdout: BinaryIO | None,
        stderr: BinaryIO | None,
        tty: bool,
    ) -> int:
        with self._lock:
            c = self._find(container_id)
            self._record("attach_run", c.spec.name)
            seen = len(c.output)
            running = self._status(c)[0] == "running"
        if not running:
            self.start_container(c.id)
        for entry in self._follow_logs(c, [], seen, True, None, False):
            target = stdout if entry.stream == "stdout" or tty else stderr
            if target is not None:
                target.write(entry.text.encode() + (b"\r\n" if tty else b"\n"))
                target.flush()
        return self.wait_container(c.id)

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        with self._lock:
            c = self._find(container_id)
            self._record("wait_container", c.spec.name, timeout)
        deadline = None if timeout is None else self.clock.now() + timeout
        while True:
            with self._lock:
                state, _health, code = self._status(c)
            if state not in ("running", "paused", "restarting"):
                return code or 0
            if deadline is not None and self.clock.now() >= deadline:
                raise Unavailable(f"wait for container {c.spec.name}: timed out")
            step = POLL if deadline is None else min(POLL, deadline - self.clock.now())
            self.clock.sleep(step)

    def top(
        self, container_id: str, ps_args: str | None = None
    ) -> tuple[list[str], list[list[str]]]:
        with self._lock:
            c = self._find(container_id)
            self._record("top", c.spec.name, ps_args)
            if self._status(c)[0] not in ("running", "paused"):
                raise Conflict(f"container {c.spec.name} is not running")
            command = shlex.join((*(c.spec.entrypoint or ()), *(c.spec.command or ())))
            return list(TOP_TITLES), [["root", "1", "0", "0", "00:00", "?", "00:00:00", command]]

    # --- files ----------------------------------------------------------------------

    def stat_path(self, container_id: str, path: str) -> PathStat:
        with self._lock:
            c = self._find(container_id)
            self._record("stat_path", c.spec.name, path)
            where = _normal(path)
            name = posixpath.basename(where) or "/"
            if where in c.directories:
                return PathStat(name, 4096, DIRECTORY_MODE)
            if where in c.files:
                return PathStat(name, len(c.files[where]), FILE_MODE)
            raise NotFound(f"stat {path} in container {c.spec.name}: no such file or directory")

    def copy_to(self, container_id: str, dest_path: str, tar_stream: bytes) -> None:
        with self._lock:
            c = self._find(container_id)
            self._record("copy_to", c.spec.name, dest_path)
            self._maybe_fail("copy_to", c.spec.name, c.spec.service, c.id)
            base = _normal(dest_path)
            if base in c.files:
                raise BackendError(f"copy into {dest_path} of {c.spec.name}: not a directory")
            if base not in c.directories:
                raise NotFound(f"copy into {dest_path} of {c.spec.name}: no such directory")
            try:
                with tarfile.open(fileobj=io.BytesIO(tar_stream), mode="r:*") as archive:
                    for member in archive.getmembers():
                        where = _normal(posixpath.join(base, member.name))
                        parent = posixpath.dirname(where)
                        while parent not in c.directories:
                            c.directories.add(parent)
                            parent = posixpath.dirname(parent)
                        if member.isdir():
                            c.directories.add(where)
                        elif member.isfile():
                            extracted = archive.extractfile(member)
                            c.files[where] = extracted.read() if extracted else b""
            except tarfile.TarError as exc:
                raise BackendError(f"copy into {dest_path} of {c.spec.name}: {exc}") from exc

    def copy_from(self, container_id: str, path: str) -> Iterator[bytes]:
        with self._lock:
            c = self._find(container_id)
            self._record("copy_from", c.spec.name, path)
            where = _normal(path)
            name = posixpath.basename(where) or "."
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                if where in c.files:
                    self._add_file(archive, name, c.files[where])
                elif where in c.directories:
                    self._add_tree(archive, c, where, name)
                else:
                    raise NotFound(f"copy {path} from {c.spec.name}: no such file or directory")
        return iter((buffer.getvalue(),))

    def _add_tree(self, archive: tarfile.TarFile, c: _Container, root: str, name: str) -> None:
        prefix = root.rstrip("/") + "/"
        for directory in sorted(d for d in c.directories if d == root or d.startswith(prefix)):
            info = tarfile.TarInfo(posixpath.join(name, directory[len(prefix) :]).rstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for path in sorted(p for p in c.files if p.startswith(prefix)):
            self._add_file(archive, posixpath.join(name, path[len(prefix) :]), c.files[path])

    @staticmethod
    def _add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), FILE_MODE
        archive.addfile(info, io.BytesIO(data))

    # --- events and listings ------------------------------------------------------------

    def events(
        self, project: str, *, since: float | None = None, until: float | None = None
    ) -> Iterator[EngineEvent]:
        with self._lock:
            self._record("events", project, since, until)
            start = self.clock.now() if since is None else since
        return self._event_stream(project, start, until)

    def _event_stream(
        self, project: str, start: float, until: float | None
    ) -> Iterator[EngineEvent]:
        sent: set[int] = set()  # by identity: a due exit may insert an earlier event
        while True:
            with self._lock:
                for c in list(self._containers.values()):
                    self._status(c)  # let scripted exits that came due emit their events
                fresh = [
                    e
                    for e in self._events
                    if e.time >= start
                    and (until is None or e.time <= until)
                    and e.attributes.get(lbl.LABEL_PROJECT) == project
                ]
            for event in fresh:
                if id(event) not in sent:
                    sent.add(id(event))
                    yield event
            if until is not None and self.clock.now() >= until:
                return
            self.clock.sleep(POLL)

    def list_projects(self) -> list[ProjectSummary]:
        with self._lock:
            self._record("list_projects")
            counts: dict[str, dict[str, int]] = {}
            files: dict[str, list[str]] = {}
            for c in sorted(self._containers.values(), key=lambda c: c.spec.name):
                name = c.spec.labels.get(lbl.LABEL_PROJECT)
                if not name:
                    continue
                state = self._status(c)[0]
                per_state = counts.setdefault(name, {})
                per_state[state] = per_state.get(state, 0) + 1
                seen = files.setdefault(name, [])
                for path in c.spec.labels.get(lbl.LABEL_CONFIG_FILES, "").split(","):
                    if path and path not in seen:
                        seen.append(path)
            return [ProjectSummary(n, counts[n], ",".join(files[n])) for n in sorted(counts)]

    def container_ports(self, container_id: str) -> list[PortBinding]:
        with self._lock:
            c = self._find(container_id)
            self._record("container_ports", c.spec.name)
            if self._status(c)[0] not in ("running", "paused"):
                return []
            return self._bindings(c)
