"""The pytest plugin: integration-test stacks that come up isolated and never leak.

Registered through the ``pytest11`` entry point, so installing composer is
enough. A test module (or conftest) declares a stack with the fixture
factory; the fixture's name is the variable's:

```python
from composer.pytest_plugin import composer_stack

web = composer_stack(files=["compose.yaml"], scope="session")

def test_home(web):
    assert urllib.request.urlopen(web.url("web", 80, "/")).status == 200
```

What a stack does (see docs/pytest-plugin.md):

* **isolated**: a unique project name and ephemeral host ports
  (``composer.isolate``), so parallel sessions and xdist workers sharing
  one compose file with fixed host ports never collide;
* **reaped**: a watchdog removes the stack if the pytest process dies
  without tearing down, even by SIGKILL (``composer.reaper``);
* **ready**: set-up is ``up --wait``: healthchecks, ``x-composer.ready``
  probes, one-shot services that must complete;
* **torn down** with containers, networks and volumes even when set-up
  failed half-way; ``--composer-logs-dir`` keeps each service's log;
* a failing test gets the stack's logs attached to its report.

Under pytest-xdist, ``--composer-xdist=worker`` (the default) gives each
worker its own stack; ``--composer-xdist=shared`` gives the whole session
one stack, brought up by the first worker under a file lock and removed by
the last one to leave.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from composer.app_lifecycle import Runtime
    from composer.backends.base import Backend, ObservedContainer
    from composer.schema.model import Project

XDIST_MODES = ("worker", "shared")
LOG_TAIL = 200
"""Log lines per service attached to the report of a failing test."""


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What ``Stack.exec`` ran: exit code and the two outputs, decoded."""

    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class StackConfig:
    """The arguments of ``composer_stack``."""

    files: tuple[str, ...]
    services: tuple[str, ...]
    profiles: tuple[str, ...]
    backend: str | None
    base_dir: Path
    project_name: str | None
    isolate: bool
    reap: bool
    wait_timeout: float | None
    env: tuple[tuple[str, str], ...]


@dataclass
class Stack:
    """A running stack, as a test sees it."""

    project: Project
    backend: Backend
    rt: Runtime = field(repr=False)

    @property
    def name(self) -> str:
        """The project name (unique when isolated)."""
        return self.project.name

    def containers(self, service: str | None = None) -> list[ObservedContainer]:
        """The stack's service containers (of ``service`` when given), by name."""
        found = [
            c
            for c in self.backend.observe(self.project.name).containers
            if not c.oneoff and (service is None or c.service == service)
        ]
        return sorted(found, key=lambda c: (c.number or 0, c.name))

    def container(self, service: str, index: int = 1) -> ObservedContainer:
        """Container number ``index`` of ``service``."""
        for c in self.containers(service):
            if (c.number or 1) == index:
                return c
        from composer.errors import NotFound

        raise NotFound(f"service {service!r} has no container number {index}")

    def host_address(self, service: str, port: int, *, index: int = 1) -> tuple[str, int]:
        """Where container ``port``/tcp of ``service`` is published: (host, port)."""
        from composer.errors import NotFound
        from composer.ready_probes import published

        c = self.container(service, index)
        found = published(self.backend, c.id, port)
        if found is None:
            raise NotFound(
                f"port {port}/tcp of service {service!r} is not published",
                hint=f'publish it in the compose file: ports: ["{port}"]',
            )
        return found

    def host_port(self, service: str, port: int, *, index: int = 1) -> int:
        """The host port container ``port`` of ``service`` is published on."""
        return self.host_address(service, port, index=index)[1]

    def url(self, service: str, port: int, path: str = "/", *, scheme: str = "http") -> str:
        """``http://127.0.0.1:<host port><path>`` of the service's port."""
        host, host_port = self.host_address(service, port)
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{host_port}{path if path.startswith('/') else '/' + path}"

    def exec(self, service: str, cmd: Sequence[str] | str, *, index: int = 1) -> ExecResult:
        """Run ``cmd`` in the service's container (a string runs under ``sh -c``)."""
        command = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        out, err = io.BytesIO(), io.BytesIO()
        code = self.backend.exec_run(
            self.container(service, index).id, command, stdout=out, stderr=err
        )
        return ExecResult(code, out.getvalue().decode(errors="replace"), err.getvalue().decode())

    def logs(self, service: str, *, tail: int | None = None) -> str:
        """The output of the service's containers, one line per line."""
        lines: list[str] = []
        for c in self.containers(service):
            lines.extend(line.text for line in self.backend.logs(c.id, tail=tail))
        return "".join(f"{line}\n" for line in lines)

    def wait_ready(self, service: str, *, timeout: float | None = None) -> None:
        """Wait until ``service`` is ready as ``up --wait`` means it (probe, healthcheck)."""
        from composer import wait_report
        from composer.app_lifecycle import carry_out
        from composer.planner.options import ReadyOptions
        from composer.planner.reconcile import reconcile

        observed = self.backend.observe(self.project.name)
        plan = reconcile(self.project, observed, ReadyOptions((service,), no_deps=True), now=0.0)
        result = carry_out(self.rt, self.backend, observed, plan, wait_timeout=timeout)
        if not result.ok:
            raise wait_report.report(self.backend, result, observed)


# --- bringing stacks up and down ---------------------------------------------------


def _runtime(config: StackConfig, backend_name: str, project_name: str | None) -> Runtime:
    from composer.app_lifecycle import Runtime
    from composer.clock import RealClock
    from composer.options import GlobalOptions, Invocation
    from composer.progress import QuietRenderer

    environ = {**os.environ, **dict(config.env)}
    options = GlobalOptions(
        files=config.files,
        project_name=project_name,
        profiles=config.profiles,
        backend=backend_name,
    )
    invocation = Invocation(working_dir=config.base_dir, environ=environ, read_stdin=lambda: "")
    return Runtime(
        options=options,
        invocation=invocation,
        renderer=QuietRenderer(),
        warn=lambda text: None,
        show_plan=lambda plan: None,
        clock=RealClock(),
    )


def _backend_name(config: StackConfig, pytest_config: pytest.Config) -> str:
    from composer.options import DEFAULT_BACKEND

    chosen = config.backend or pytest_config.getoption("composer_backend", None)
    return str(chosen or os.environ.get("COMPOSER_BACKEND") or DEFAULT_BACKEND)


def start(
    config: StackConfig,
    backend_name: str,
    *,
    name: str | None = None,
    reap_pid: int | None = None,
) -> Stack:
    """Load, isolate, arm the reaper, ``up --wait``; on failure remove what was made."""
    from composer import app_lifecycle, isolate, reaper
    from composer.backends.factory import open_backend
    from composer.planner.options import UpOptions

    rt = _runtime(config, backend_name, name or config.project_name)
    project = app_lifecycle.load(rt, config.services)
    if config.isolate and name is None and config.project_name is None:
        # Networks and volumes are named after the project by the loader.
        rt = _runtime(config, backend_name, isolate.unique_name(project.name))
        project = app_lifecycle.load(rt, config.services)
    if config.isolate:
        project = isolate.isolate(project)
    backend = open_backend(backend_name, rt.invocation.environ)
    if reap_pid is not None:
        reaper.arm(backend, backend_name, project.name, reap_pid, rt.invocation.environ)
    request = app_lifecycle.UpRequest(
        plan=UpOptions(services=config.services),
        detach=True,
        wait=True,
        wait_timeout=config.wait_timeout,
    )
    try:
        app_lifecycle.up(rt, backend, project, request)
    except BaseException:
        stop(Stack(project, backend, rt), logs_dir=None)
        raise
    return Stack(project, backend, rt)


def stop(stack: Stack, *, logs_dir: str | None) -> None:
    """Remove the stack: containers (killed), networks, volumes; logs saved first."""
    from composer import reaper

    reaper.purge(stack.backend, stack.project.name, logs_dir=logs_dir)


# --- xdist: one shared stack per session ---------------------------------------------


def _shared_dir(key: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"composer-pytest-{key}"
    path.mkdir(exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[dict[str, Any]]:
    """The shared stack's record (``{"users": n}``), read and written under a file lock."""
    with (path / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record_path = path / "record.json"
        try:
            record: dict[str, Any] = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = {"users": 0}
        yield record
        record_path.write_text(json.dumps(record))


def _shared_key(config: StackConfig, fixture: str) -> str:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")
    digest = hashlib.sha256(f"{run}|{config.base_dir}|{fixture}".encode()).hexdigest()
    return digest[:10]


# --- the fixture factory ---------------------------------------------------------------


def composer_stack(
    files: Sequence[str] = (),
    services: Sequence[str] = (),
    profiles: Sequence[str] = (),
    backend: str | None = None,
    scope: str = "session",
    *,
    project_name: str | None = None,
    isolate: bool = True,
    reap: bool = True,
    wait_timeout: float | None = 120.0,
    env: dict[str, str] | None = None,
    name: str | None = None,
) -> Any:
    """A pytest fixture that yields a running ``Stack``.

    ``files`` are relative to the directory of the module that calls this
    (empty: compose.yaml found from there, as the CLI does). ``services``
    limits the stack (their dependencies come too); ``scope`` is the
    fixture's. ``isolate=False`` keeps the file's project name and host
    ports; ``reap=False`` leaves no watchdog behind the session.
    """
    caller = inspect.stack()[1].filename
    config = StackConfig(
        files=tuple(files),
        services=tuple(services),
        profiles=tuple(profiles),
        backend=backend,
        base_dir=Path(caller).resolve().parent,
        project_name=project_name,
        isolate=isolate,
        reap=reap,
        wait_timeout=wait_timeout,
        env=tuple(sorted((env or {}).items())),
    )

    def fixture(request: pytest.FixtureRequest) -> Iterator[Stack]:
        pytest_config = request.config
        backend_name = _backend_name(config, pytest_config)
        logs_dir = pytest_config.getoption("composer_logs_dir", None)
        shared = (
            pytest_config.getoption("composer_xdist", "worker") == "shared"
            and "PYTEST_XDIST_WORKER" in os.environ
        )
        if not shared:
            stack = start(config, backend_name, reap_pid=os.getpid() if config.reap else None)
            try:
                yield stack
            finally:
                stop(stack, logs_dir=logs_dir)
            return
        yield from _shared(config, backend_name, request.fixturename or "stack", logs_dir)

    decorated: Callable[..., Any] = pytest.fixture(scope=scope, name=name)(fixture)  # type: ignore[call-overload]
    return decorated


def _shared(
    config: StackConfig, backend_name: str, fixture: str, logs_dir: str | None
) -> Iterator[Stack]:
    """One stack for every xdist worker: the first brings it up, the last removes it."""
    from composer import isolate

    key = _shared_key(config, fixture)
    where = _shared_dir(key)
    with _locked(where) as record:
        # The controller (the workers' parent) owns the shared stack's life.
        reap_pid = os.getppid() if config.reap else None
        stack = start(config, backend_name, name=isolate.unique_name("pt", key), reap_pid=reap_pid)
        record["users"] = int(record.get("users", 0)) + 1
    try:
        yield stack
    finally:
        with _locked(where) as record:
            record["users"] = int(record.get("users", 1)) - 1
            if record["users"] <= 0:
                stop(stack, logs_dir=logs_dir)


# --- pytest hooks ------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("composer", "composer integration-test stacks")
    group.addoption(
        "--composer-backend",
        default=None,
        help="Engine of composer_stack fixtures: native or docker (default: COMPOSER_BACKEND).",
    )
    group.addoption(
        "--composer-xdist",
        default="worker",
        choices=XDIST_MODES,
        help="Under pytest-xdist: a stack per worker (worker) or one per session (shared).",
    )
    group.addoption(
        "--composer-logs-dir",
        default=None,
        metavar="DIR",
        help="Write each service's log to DIR/<service>.log when a stack is removed.",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the logs of the item's stacks to the report of a failing test."""
    report = yield
    if report.failed and call.when in ("call", "setup"):
        funcargs = getattr(item, "funcargs", {}) or {}
        for value in funcargs.values():
            if isinstance(value, Stack):
                _attach_logs(report, value)
    return report


def _attach_logs(report: pytest.TestReport, stack: Stack) -> None:
    from composer.errors import ComposerError

    try:
        services = sorted({c.service for c in stack.containers()})
        for service in services:
            text = stack.logs(service, tail=LOG_TAIL)
            report.sections.append((f"composer logs: {stack.name} {service}", text))
    except ComposerError as exc:
        report.sections.append((f"composer logs: {stack.name}", f"unavailable: {exc.message}"))
