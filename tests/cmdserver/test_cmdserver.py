"""The warm command server, driven as a user drives it: whole ``composer`` processes.

Each test has a socket directory of its own (``COMPOSER_SERVER_DIR``), so its
server is its own, and stops it at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.cmdserver import identity

SERVED = "served by the command server"
WAIT = 60.0


@pytest.fixture
def server_dir() -> Iterator[Path]:
    # Short: a unix socket's path has at most 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="cs", dir="/tmp"))
    try:
        yield path
    finally:
        subprocess.run([sys.executable, "-m", "composer.cmdserver", "stop", str(path)], check=False)
        _wait_for(lambda: not list(path.glob("*.sock")), "the server to stop")
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _env(server_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE")}
    env.update(COMPOSER_SERVER_DIR=str(server_dir), **extra)
    return env


def composer(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "composer", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _server_pid(server_dir: Path) -> int:
    (lock,) = server_dir.glob("*.lock")
    return int(lock.read_text().strip())


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(p) for p in (task / "children").read_text().split())
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  web:\n"
        "    image: ${IMAGE:-busybox}\n"
        "    env_file: [app.env]\n"
        "    volumes: [./data:/data]\n"
    )
    (tmp_path / "app.env").write_text("MODE=test\n")
    (tmp_path / "sub").mkdir()
    return tmp_path


def _warm(server_dir: Path, project: Path) -> dict[str, str]:
    env = _env(server_dir)
    first = composer(["config", "--services"], env, project)
    assert first.returncode == 0, first.stderr
    _wait_for(lambda: list(server_dir.glob("*.sock")), "the server to listen")
    return env


def test_a_command_through_the_server_matches_one_in_its_own_process(
    server_dir: Path, project: Path
) -> None:
    env = _warm(server_dir, project)
    cases: list[tuple[list[str], Path, str | None, dict[str, str]]] = [
        (["config"], project, None, {"IMAGE": "alpine:3"}),
        (["-f", "../compose.yaml", "config", "--format", "json"], project / "sub", None, {}),
        (["-f", "-", "config"], project, "services:\n  a:\n    image: x\n", {}),
        (["-f", "missing.yaml", "config"], project, None, {}),
        (["config", "--no-such-flag"], project, None, {}),
        (["config", "-q"], project, None, {"IMAGE": "${BROKEN"}),
    ]
    for args, cwd, stdin, extra in cases:
        own = composer(args, {**env, **extra, "COMPOSER_SERVER": "0"}, cwd, stdin)
        served = _served(args, {**env, **extra, "COMPOSER_DEBUG": "1"}, cwd, stdin, server_dir)
        assert served.returncode == own.returncode, (args, served.stderr, own.stderr)
        assert served.stdout == own.stdout, args
        quiet = composer(args, {**env, **extra}, cwd, stdin)
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (
            own.returncode,
            own.stdout,
            own.stderr,
        ), args
    assert composer(["-f", "missing.yaml", "config"], env, project).returncode == 2


def _served(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None, server_dir: Path
) -> subprocess.CompletedProcess[str]:
    """Run through the server; again if it had just left because the code changed."""
    for _attempt in range(5):
        result = composer(args, env, cwd, stdin)
        if SERVED in result.stderr:
            return result
        _wait_for(lambda: list(server_dir.glob("*.sock")), "the server to listen")
    raise AssertionError(f"{args} never went through the server: {result.stderr}")


def test_the_server_is_not_used_when_turned_off(server_dir: Path, project: Path) -> None:
    env = _warm(server_dir, project)
    result = composer(["config"], {**env, "COMPOSER_SERVER": "0", "COMPOSER_DEBUG": "1"}, project)
    assert result.returncode == 0
    assert SERVED not in result.stderr


def _served_events(
    server_dir: Path, project: Path, root: Path, output: int
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start ``events`` (it runs until interrupted) through the server.

    Returns the client, the server's child running it, and the server.
    """
    env = {**_warm(server_dir, project), "COMPOSER_ROOT": str(root)}
    server = _server_pid(server_dir)
    client = subprocess.Popen(
        [sys.executable, "-m", "composer", "--backend", "native", "-p", "cs", "events"],
        env=env,
        cwd=project,
        stdout=output,
        stderr=output,
    )
    _wait_for(lambda: _children(server), "the server's child")
    (child,) = _children(server)
    return client, child, server


def test_ctrl_c_reaches_the_command_and_its_exit_code_comes_back(
    server_dir: Path, project: Path, tmp_path: Path
) -> None:
    client, child, _server = _served_events(server_dir, project, tmp_path / "root", subprocess.PIPE)
    try:
        client.send_signal(signal.SIGINT)
        _out, err = client.communicate(timeout=WAIT)
    finally:
        client.kill()
    assert client.returncode == 130, err  # as in a process of its own: Ctrl-C's code
    _wait_for(lambda: not Path(f"/proc/{child}").exists(), "the child to leave")


def test_a_killed_client_takes_its_command_with_it(
    server_dir: Path, project: Path, tmp_path: Path
) -> None:
    client, child, server = _served_events(
        server_dir, project, tmp_path / "root", subprocess.DEVNULL
    )
    client.kill()
    client.wait()
    _wait_for(lambda: not Path(f"/proc/{child}").exists(), "the orphaned command to end")
    assert Path(f"/proc/{server}").exists()


def test_an_idle_server_leaves_and_removes_its_socket(server_dir: Path, project: Path) -> None:
    env = _env(server_dir, COMPOSER_SERVER_IDLE="1")
    assert composer(["config", "-q"], env, project).returncode == 0
    _wait_for(lambda: list(server_dir.glob("*.sock")), "the server to listen")
    pid = _server_pid(server_dir)
    _wait_for(lambda: not list(server_dir.glob("*.sock")), "the idle server to leave")
    _wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), "its process to end")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def test_a_different_context_gets_a_server_of_its_own(server_dir: Path, project: Path) -> None:
    env = _warm(server_dir, project)
    other = composer(["config", "-q"], {**env, "LC_ALL": "C", "COMPOSER_DEBUG": "1"}, project)
    assert other.returncode == 0
    assert SERVED not in other.stderr
    _wait_for(lambda: len(list(server_dir.glob("*.sock"))) == 2, "a second server")


def test_context_covers_what_a_forked_child_would_inherit() -> None:
    import resource

    base = identity.context({"LANG": "C.UTF-8", "HOME": "/a"})
    assert identity.context({"LANG": "C.UTF-8", "HOME": "/b"}) == base  # passed per request
    assert identity.context({"LANG": "C"}) != base
    assert identity.context({"LANG": "C.UTF-8", "PYTHONHASHSEED": "1"}) != base
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    lowered = 0 if soft != 0 else 1
    if lowered > hard and hard != resource.RLIM_INFINITY:
        pytest.skip("cannot change RLIMIT_CORE here")
    resource.setrlimit(resource.RLIMIT_CORE, (lowered, hard))
    try:
        assert identity.context({"LANG": "C.UTF-8", "HOME": "/a"}) != base
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


def test_only_turning_it_off_or_no_verb_keeps_a_command_out() -> None:
    from composer.cmdserver.client import enabled

    assert enabled("run", {}) and enabled("exec", {}) and enabled("ps", {})
    assert not enabled("run", {"COMPOSER_SERVER": "off"})
    assert not enabled("ps", {"COMPOSER_SERVER": "0"})
    assert not enabled(None, {})


def test_a_server_refuses_once_its_code_changed(server_dir: Path, project: Path) -> None:
    from composer.cmdserver.server import Server

    server = Server(str(server_dir), "unused", idle=1.0)
    from composer.cmdserver import warm

    server.stamp = warm.code_stamp()
    assert server._code_unchanged()
    server.stamp = (*server.stamp[:-1], ("/changed", 0, 0))
    assert not server._code_unchanged()
    assert server.stopping


def test_a_server_started_from_a_c_locale_caller_serves_it() -> None:
    """The interpreter coerces the C locale (PEP 538) in the caller's environment."""

    def name(env: dict[str, str]) -> str:
        return subprocess.run(
            [sys.executable, "-m", "composer.cmdserver", "name"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    bare = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    assert name(bare) == name({**bare, "LC_CTYPE": "C.UTF-8"})


def test_output_that_cannot_be_written_is_one_error_either_way(
    server_dir: Path, project: Path
) -> None:
    env = _warm(server_dir, project)
    results = []
    for mode in ("0", "1"):
        with open("/dev/full", "w") as full:
            results.append(
                subprocess.run(
                    [sys.executable, "-m", "composer", "config"],
                    env={**env, "COMPOSER_SERVER": mode},
                    cwd=project,
                    stdout=full,
                    stderr=subprocess.PIPE,
                    text=True,
                    timeout=120,
                    check=False,
                )
            )
    for result in results:
        assert result.returncode == 1
        assert "No space left on device" in result.stderr
        assert "Traceback" not in result.stderr
