"""Running ``x-composer.ready`` probes from the host (see ``composer.planner.ready_spec``).

A ``ProbeRunner`` belongs to one container. ``check()`` makes at most one
attempt per probe interval (the executor may poll faster) and keeps the last
results, so that a failed wait can show what the probe saw. It raises
``ExecutionError`` once the probe's own timeout has passed since its first
attempt. Everything goes through the Backend protocol: the published host
port comes from ``container_ports``, log lines from ``logs``; nothing runs
inside the container, so the image needs no shell and no client.
"""

from __future__ import annotations

import re
import socket
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from composer.errors import BackendError, ExecutionError

if TYPE_CHECKING:
    from composer.backends.base import Backend
    from composer.clock import Clock
    from composer.planner.ready_spec import ReadyProbe

HISTORY = 5
"""Probe results kept for the failure report."""

CONNECT_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One attempt: when (on the runner's clock), whether it passed, what it saw."""

    at: float
    ok: bool
    text: str


def host_address(host_ip: str) -> str:
    """Where to connect for a binding on ``host_ip`` (a wildcard means loopback)."""
    if host_ip in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host_ip == "::":
        return "::1"
    return host_ip


def published(backend: Backend, container_id: str, port: int) -> tuple[str, int] | None:
    """The host address and port container ``port``/tcp is published on, if it is."""
    for binding in backend.container_ports(container_id):
        if binding.target == port and binding.protocol == "tcp" and binding.host_port:
            return host_address(binding.host_ip), binding.host_port
    return None


class ProbeRunner:
    """The probe of one container, attempted at most once per interval."""

    def __init__(
        self, probe: ReadyProbe, backend: Backend, container_id: str, name: str, clock: Clock
    ) -> None:
        self.probe = probe
        self.backend = backend
        self.container_id = container_id
        self.name = name
        self.clock = clock
        self.history: deque[ProbeResult] = deque(maxlen=HISTORY)
        self._first: float | None = None
        self._last: float | None = None
        self._passed = False

    def check(self) -> bool:
        """One attempt when due; True once the probe has passed."""
        if self._passed:
            return True
        now = self.clock.now()
        if self._first is None:
            self._first = now
        if self._last is not None and now - self._last < self.probe.interval:
            return False
        self._last = now
        ok, text = self._attempt()
        self.history.append(ProbeResult(now, ok, text))
        if ok:
            self._passed = True
            return True
        if now - self._first >= self.probe.timeout:
            raise ExecutionError(
                f"container {self.name}: readiness probe {self.probe} still failing after "
                f"{self.probe.timeout:g}s: {text}",
                hint="`composer logs` shows the container's output",
            )
        return False

    def describe(self) -> list[str]:
        """The last results, oldest first, for a failure report."""
        return [f"probe {self.probe} {'ok' if r.ok else 'failed'}: {r.text}" for r in self.history]

    def _attempt(self) -> tuple[bool, str]:
        try:
            if self.probe.kind == "log":
                return self._log()
            target = published(self.backend, self.container_id, self.probe.port or 0)
        except BackendError as exc:
            return False, exc.message
        if target is None:
            raise ExecutionError(
                f"container {self.name}: port {self.probe.port}/tcp is not published",
                hint=f'publish it (ports: ["{self.probe.port}"]) for the readiness probe',
            )
        if self.probe.kind == "tcp":
            return tcp_attempt(*target)
        return http_attempt(*target, self.probe.path, self.probe.status)

    def _log(self) -> tuple[bool, str]:
        pattern = re.compile(self.probe.pattern)
        lines = 0
        for line in self.backend.logs(self.container_id):
            lines += 1
            if pattern.search(line.text):
                return True, f"matched: {line.text.strip()[:200]}"
        return False, f"no match in {lines} log lines"


HOLD = 0.25
"""Seconds a connection must stay open (or bring data) to count as accepted."""


def tcp_attempt(host: str, port: int) -> tuple[bool, str]:
    """A TCP connect that the service itself accepted.

    A published port can be answered by the engine's userland proxy
    (Docker's ``docker-proxy``) before anything listens in the container:
    the connect succeeds and the proxy hangs up at once. So the connection
    must also stay open for ``HOLD`` seconds, or bring data (a server that
    speaks first).
    """
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as conn:
            conn.settimeout(HOLD)
            try:
                data = conn.recv(1)
            except TimeoutError:
                return True, f"connected to {host}:{port}"
            if data:
                return True, f"connected to {host}:{port}"
            return False, f"{host}:{port}: connection closed at once (nothing listening yet)"
    except OSError as exc:
        return False, f"{host}:{port}: {exc.strerror or exc}"


def http_attempt(host: str, port: int, path: str, status: int | None) -> tuple[bool, str]:
    """A GET of ``path``; passes on ``status`` (any 2xx when None)."""
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
    try:
        conn.request("GET", path, headers={"User-Agent": "composer-ready"})
        response = conn.getresponse()
        response.read(65536)
        code = response.status
    except (OSError, http.client.HTTPException) as exc:
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return False, f"GET http://{host}:{port}{path}: {text}"
    finally:
        conn.close()
    ok = code == status if status is not None else 200 <= code < 300
    return ok, f"GET http://{host}:{port}{path}: {code}"
