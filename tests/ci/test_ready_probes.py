"""Host-side probes against real loopback sockets: what counts as ready, and how a
``ProbeRunner`` paces its attempts, keeps its history and gives up."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest

from composer.backends.base import Backend, LogLine, PortBinding
from composer.clock import FakeClock
from composer.errors import ExecutionError
from composer.planner.ready_spec import ReadyProbe
from composer.ready_probes import ProbeRunner, host_address, http_attempt, tcp_attempt


@pytest.fixture
def listener() -> Iterator[int]:
    """A port that accepts and holds connections (a service that listens)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def hangs_up() -> Iterator[int]:
    """A port that accepts and closes at once (what docker-proxy does with no backend)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def web() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tcp(listener: int, hangs_up: int) -> None:
    assert tcp_attempt("127.0.0.1", listener)[0]
    ok, text = tcp_attempt("127.0.0.1", hangs_up)
    assert not ok
    assert "closed at once" in text
    ok, text = tcp_attempt("127.0.0.1", _closed_port())
    assert not ok
    assert "refused" in text.lower()


def test_http(web: int) -> None:
    assert http_attempt("127.0.0.1", web, "/health", None) == (
        True,
        f"GET http://127.0.0.1:{web}/health: 200",
    )
    assert http_attempt("127.0.0.1", web, "/nope", None)[0] is False
    assert http_attempt("127.0.0.1", web, "/nope", 404)[0] is True
    assert http_attempt("127.0.0.1", _closed_port(), "/", None)[0] is False


def test_host_address() -> None:
    assert host_address("") == "127.0.0.1"
    assert host_address("0.0.0.0") == "127.0.0.1"
    assert host_address("::") == "::1"
    assert host_address("127.0.0.2") == "127.0.0.2"


class _Engine:
    """The two verbs a probe uses, for one container."""

    def __init__(self, port: int | None, lines: list[str] | None = None) -> None:
        self.port = port
        self.lines = lines or []
        self.ports_asked = 0

    def container_ports(self, container_id: str) -> list[PortBinding]:
        self.ports_asked += 1
        if self.port is None:
            return []
        return [PortBinding(80, "tcp", "0.0.0.0", self.port)]

    def logs(self, container_id: str, **_: Any) -> Iterator[LogLine]:
        return iter([LogLine("stdout", text) for text in self.lines])


def _runner(engine: _Engine, probe: ReadyProbe, clock: FakeClock) -> ProbeRunner:
    return ProbeRunner(probe, cast(Backend, engine), "c1", "demo-db-1", clock)


def test_runner_passes_through_the_published_port(listener: int) -> None:
    clock = FakeClock()
    runner = _runner(_Engine(listener), ReadyProbe("tcp", port=80), clock)
    assert runner.check()
    assert runner.check()  # stays passed without another attempt
    assert runner.describe() == [f"probe tcp:80 ok: connected to 127.0.0.1:{listener}"]


def test_runner_paces_attempts_and_gives_up_after_its_timeout() -> None:
    clock = FakeClock()
    engine = _Engine(_closed_port())
    runner = _runner(engine, ReadyProbe("tcp", port=80, timeout=1.0, interval=0.25), clock)
    assert not runner.check()
    assert not runner.check()  # within the interval: no new attempt
    assert engine.ports_asked == 1
    for _ in range(3):
        clock.advance(0.25)
        assert not runner.check()
    clock.advance(0.25)
    with pytest.raises(ExecutionError) as info:
        runner.check()
    assert "readiness probe tcp:80 still failing after 1s" in info.value.message
    assert len(runner.describe()) == 5


def test_runner_unpublished_port_is_an_error() -> None:
    runner = _runner(_Engine(None), ReadyProbe("tcp", port=80), FakeClock())
    with pytest.raises(ExecutionError) as info:
        runner.check()
    assert "port 80/tcp is not published" in info.value.message


def test_runner_log_probe() -> None:
    engine = _Engine(None, ["booting", "listening on :80"])
    runner = _runner(engine, ReadyProbe("log", pattern=r"listening on :\d+"), FakeClock())
    assert runner.check()
    assert runner.describe() == ["probe log:/listening on :\\d+/ ok: matched: listening on :80"]
    engine.lines = ["booting"]
    waiting = _runner(engine, ReadyProbe("log", pattern="listening"), FakeClock())
    assert not waiting.check()
    assert waiting.describe() == ["probe log:/listening/ failed: no match in 1 log lines"]
