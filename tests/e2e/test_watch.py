"""``composer watch`` against dockerd: real watch loops, real containers.

Each test writes a compose file with ``develop.watch`` rules into its own
directory, starts ``python -m composer watch`` as a user would, edits files
and checks the container through the Engine API. Waiting is by condition
(a file appears, a line is printed), never by elapsed time; a test's
ordering marker (one more synced file) proves that earlier batches were
handled, since batches are handled in order.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.ops_support import (
    Run,
    docker_backend,
    engine_missing,
    project_name,
    remove_project,
    wait_until,
    write_project,
)

SLEEPER = '["sh", "-c", "date >> /tmp/starts; exec sleep 1000"]'


@dataclass
class Engine:
    """One engine under test: its backend object and the environment the CLI gets."""

    kind: str
    backend: Any
    env: dict[str, str]


@pytest.fixture(scope="module")
def docker_engine() -> Any:
    return docker_backend()


@pytest.fixture(scope="module")
def bb_archive(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any) -> Path:
    """``docker save bb:latest`` once, for the native state roots to load."""
    path = tmp_path_factory.mktemp("bb") / "bb.tar"
    done = subprocess.run(["docker", "save", "-o", str(path), "bb:latest"], check=False)
    if done.returncode != 0:
        engine_missing("docker save bb:latest failed")
    return path


@pytest.fixture(params=["docker", "native"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, docker_engine: Any) -> Iterator[Engine]:
    """Each engine in turn; a native one gets its own state root with bb:latest."""
    env = {**_env(tmp_path), "COMPOSER_BACKEND": request.param}
    if request.param == "docker":
        yield Engine("docker", docker_engine, env)
        return
    if os.geteuid() != 0 or "overlay" not in Path("/proc/filesystems").read_text():
        engine_missing("the native engine needs root and overlayfs")
    from composer.backends.native.backend import NativeBackend
    from composer.backends.native.images.archive import load

    env["COMPOSER_ROOT"] = str(tmp_path / "state")
    native = NativeBackend(env)
    load(native.images, request.getfixturevalue("bb_archive"))
    try:
        yield Engine("native", native, env)
    finally:
        native.shutdown()


@pytest.fixture
def name(engine: Engine) -> Iterator[str]:
    project = project_name()
    yield project
    backend = engine.backend
    if engine.kind == "docker":
        remove_project(backend, project)
        with contextlib.suppress(Exception):
            for image in backend.api.images(filters={"reference": f"{project}-*"}):
                backend.api.remove_image(image["Id"], force=True)
        return
    for c in backend.observe(project).containers:
        with contextlib.suppress(Exception):
            backend.remove_container(c.id, force=True, volumes=True)
    state = backend.observe(project)
    for network in state.networks:
        with contextlib.suppress(Exception):
            backend.remove_network(network)
    for volume in state.volumes:
        with contextlib.suppress(Exception):
            backend.remove_volume(volume)


def _env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE", "COMPOSER"))}
    environ.update(
        {
            "COMPOSE_ANSI": "never",
            "COMPOSE_PROGRESS": "plain",
            "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        }
    )
    return environ


class Watch:
    """A running ``composer watch`` whose output lines are read in a thread."""

    def __init__(self, root: Path, name: str, env: dict[str, str], *args: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "composer", "-p", name, "watch", *args],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, text: str, timeout: float = 60) -> str:
        """The next line containing ``text`` (earlier lines are kept in ``seen``)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r}; saw {self.seen}") from None
            self.seen.append(line)
            if text in line:
                return line

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextlib.contextmanager
def watching(root: Path, name: str, engine: Engine, *args: str) -> Iterator[Watch]:
    watch = Watch(root, name, engine.env, *args)
    try:
        watch.expect("Watch enabled")
        yield watch
    finally:
        watch.stop()


def composer(*args: str, cwd: Path, env: dict[str, str]) -> Run:
    """``python -m composer ARGS`` on the engine that ``env`` names (``COMPOSER_BACKEND``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "composer", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def container(engine: Engine, name: str, service: str) -> str:
    """The id of the service's one running container."""
    (found,) = [
        c
        for c in engine.backend.observe(name).containers
        if c.service == service and not c.oneoff and c.state == "running"
    ]
    return str(found.id)


def sh(engine: Engine, cid: str, script: str) -> tuple[int, str]:
    """Run ``sh -c script`` in the container; (exit code, output)."""
    out = io.BytesIO()
    code = engine.backend.exec_run(cid, ["sh", "-c", script], stdout=out, stderr=out)
    return code, out.getvalue().decode()


def read(engine: Engine, cid: str, path: str) -> str | None:
    code, out = sh(engine, cid, f"cat {path}")
    return out if code == 0 else None


def test_sync_files_and_directories(engine: Engine, name: str, tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            image: bb:latest
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - path: ./src
                  action: sync
                  target: /app
                  initial_sync: true
        """,
    )
    src = root / "src"
    (src / "old").mkdir(parents=True)
    (src / "keep.txt").write_text("initial\n")
    (src / "old" / "x").write_text("x\n")
    with watching(root, name, engine) as watch:
        cid = container(engine, name, "web")
        assert any("web: initial sync 3 files" in line for line in watch.seen), watch.seen
        assert read(engine, cid, "/app/keep.txt") == "initial\n"
        # created, changed
        (src / "new.txt").write_text("new\n")
        (src / "keep.txt").write_text("changed\n")
        wait_until(lambda: read(engine, cid, "/app/new.txt") == "new\n")
        wait_until(lambda: read(engine, cid, "/app/keep.txt") == "changed\n")
        # a directory tree created at once, files written before it was watched
        (src / "tree" / "a" / "b").mkdir(parents=True)
        (src / "tree" / "a" / "b" / "deep.txt").write_text("deep\n")
        (src / "tree" / "empty").mkdir()
        wait_until(lambda: read(engine, cid, "/app/tree/a/b/deep.txt") == "deep\n")
        wait_until(lambda: sh(engine, cid, "test -d /app/tree/empty")[0] == 0)
        # deleted file, removed directory, renamed file
        (src / "new.txt").unlink()
        (src / "old" / "x").unlink()
        (src / "old").rmdir()
        (src / "keep.txt").rename(src / "renamed.txt")
        wait_until(lambda: read(engine, cid, "/app/renamed.txt") == "changed\n")
        wait_until(lambda: sh(engine, cid, "test -e /app/new.txt")[0] != 0)
        wait_until(lambda: sh(engine, cid, "test -e /app/old")[0] != 0)
        wait_until(lambda: sh(engine, cid, "test -e /app/keep.txt")[0] != 0)
        line = watch.expect("web: sync")
        assert "ms" in line


def test_ignore_include_dockerignore_and_editor_files(
    engine: Engine, name: str, tmp_path: Path
) -> None:
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            build: .
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - {{path: ./src, action: sync, target: /app, ignore: ["*.tmp", cache]}}
                - {{path: ./docs, action: sync, target: /docs, include: ["*.md"]}}
        """,
    )
    (root / "Dockerfile").write_text("FROM bb:latest\n")
    (root / ".dockerignore").write_text("src/secret*\n!src/secret-ok\n")
    for d in ("src/cache", "docs"):
        (root / d).mkdir(parents=True)
    with watching(root, name, engine) as watch:
        cid = container(engine, name, "web")
        src, docs = root / "src", root / "docs"
        for rel in ["a.tmp", "cache/c", ".a.py.swp", "a.py~", "4913", ".#a.py", "secret.key"]:
            (src / rel).write_text("no\n")
        (src / "secret-ok").write_text("yes\n")
        (docs / "notes.txt").write_text("no\n")
        (docs / "guide.md").write_text("yes\n")
        (src / "marker").write_text("done\n")
        wait_until(lambda: read(engine, cid, "/app/marker") == "done\n")
        wait_until(lambda: read(engine, cid, "/docs/guide.md") == "yes\n")
        assert read(engine, cid, "/app/secret-ok") == "yes\n"
        code, listing = sh(engine, cid, "ls -a /app /docs")
        assert code == 0
        for absent in ["a.tmp", "cache", ".a.py.swp", "a.py~", "4913", ".#a.py", "secret.key"]:
            assert absent not in listing.split(), listing
        assert "notes.txt" not in listing
        del watch


def test_one_restart_per_save(engine: Engine, name: str, tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            image: bb:latest
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - {{path: ./conf, action: sync+restart, target: /etc/app}}
                - {{path: ./other, action: restart}}
                - {{path: ./marker, action: sync, target: /marker}}
        """,
    )
    for d in ("conf", "other", "marker"):
        (root / d).mkdir()
    with watching(root, name, engine) as watch:
        cid = container(engine, name, "web")
        assert read(engine, cid, "/tmp/starts") is not None
        # One save of an editor that writes a temporary file and renames it, plus a
        # second file of the same save.
        (root / "conf" / "app.conf.tmp~").write_text("v2\n")
        (root / "conf" / "app.conf.tmp~").rename(root / "conf" / "app.conf")
        (root / "conf" / "extra.conf").write_text("x\n")
        watch.expect("web: sync+restart")
        wait_until(lambda: read(engine, cid, "/etc/app/app.conf") == "v2\n")
        # The marker is handled after every earlier batch.
        (root / "marker" / "m").write_text("1\n")
        wait_until(lambda: read(engine, cid, "/marker/m") == "1\n")
        watch.expect("web: sync 1 file")
        starts = read(engine, cid, "/tmp/starts") or ""
        assert len(starts.splitlines()) == 2, starts
        assert sum("restart" in line for line in watch.seen) == 1, watch.seen
        # A plain restart rule: one more restart. (On a loaded machine the notifier can
        # report the marker's write once more, late; it then rides along in this batch.)
        (root / "other" / "x").write_text("x\n")
        line = watch.expect("web: restart")
        assert "other/x" in line, line
        wait_until(lambda: len((read(engine, cid, "/tmp/starts") or "").splitlines()) == 3)
        assert sum("restart" in line for line in watch.seen) == 2, watch.seen


def test_sync_exec_runs_the_command(engine: Engine, name: str, tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            image: bb:latest
            init: true
            command: {SLEEPER}
            tmpfs: [/out]
            develop:
              watch:
                - path: ./src
                  action: sync+exec
                  target: /app
                  exec:
                    command: ["sh", "-c", "echo $$GREETING $$(id -u) $$(pwd) >> /out/log"]
                    user: "1234"
                    working_dir: /app
                    environment: {{GREETING: hello}}
        """,
    )
    (root / "src").mkdir()
    with watching(root, name, engine) as watch:
        cid = container(engine, name, "web")
        (root / "src" / "main.py").write_text("print(1)\n")
        watch.expect("web: sync+exec")
        assert read(engine, cid, "/out/log") == "hello 1234 /app\n"
        assert read(engine, cid, "/app/main.py") == "print(1)\n"


def test_rebuild_touches_only_the_changed_service(
    engine: Engine, name: str, tmp_path: Path
) -> None:
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            build: ./web
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - {{path: ./web, action: rebuild}}
          api:
            build: ./api
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - {{path: ./api, action: rebuild}}
        """,
    )
    for service in ("web", "api"):
        (root / service).mkdir()
        (root / service / "Dockerfile").write_text("FROM bb:latest\nCOPY version /version\n")
        (root / service / "version").write_text("1\n")
    with watching(root, name, engine) as watch:
        web, api = container(engine, name, "web"), container(engine, name, "api")
        api_image = engine.backend.image_id(f"{name}-api")
        assert read(engine, web, "/version") == "1\n"
        (root / "web" / "version").write_text("2\n")
        line = watch.expect("web: rebuild")
        assert "failed" not in line, line
        new_web = container(engine, name, "web")
        assert new_web != web
        assert read(engine, new_web, "/version") == "2\n"
        assert container(engine, name, "api") == api
        assert engine.backend.image_id(f"{name}-api") == api_image
        assert not any(seen.startswith("api:") for seen in watch.seen), watch.seen


def test_compose_file_reload(engine: Engine, name: str, tmp_path: Path) -> None:
    text = f"""
        services:
          web:
            image: bb:latest
            init: true
            command: {SLEEPER}
            environment: {{LEVEL: "1"}}
            develop:
              watch:
                - {{path: ./src, action: sync, target: /app}}
        """
    root = write_project(tmp_path, text)
    (root / "src").mkdir()
    with watching(root, name, engine) as watch:
        web = container(engine, name, "web")
        write_project(root, text.replace('LEVEL: "1"', 'LEVEL: "2"'))
        assert "failed" not in watch.expect(f"{name}: reload")
        new_web = container(engine, name, "web")
        assert new_web != web
        assert sh(engine, new_web, "echo $LEVEL")[1] == "2\n"
        # A broken file is reported and watching goes on with the model it had.
        (root / "compose.yaml").write_text("services:\n  web:\n    image: [\n")
        assert "not reloaded" in watch.expect("not reloaded")
        (root / "src" / "after.txt").write_text("still\n")
        wait_until(lambda: read(engine, new_web, "/app/after.txt") == "still\n")
        assert watch.proc.poll() is None


def test_detached_watch_survives_the_terminal_and_stops_with_down(
    engine: Engine, name: str, tmp_path: Path
) -> None:
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            image: bb:latest
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - {{path: ./src, action: sync, target: /app}}
        """,
    )
    (root / "src").mkdir()
    env = engine.env
    # `up -d --watch` runs in a session of its own that ends, like a closed terminal.
    started = subprocess.run(
        [sys.executable, "-m", "composer", "-p", name, "up", "-d", "--watch"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    pidfile = root / "run" / "composer" / name / "watch.pid"
    pid = int(pidfile.read_text().split()[0])
    os.kill(pid, 0)
    cid = container(engine, name, "web")
    log = root / "run" / "composer" / name / "watch.log"
    wait_until(lambda: "Watch enabled" in log.read_text())
    (root / "src" / "bg.txt").write_text("background\n")
    wait_until(lambda: read(engine, cid, "/app/bg.txt") == "background\n")
    assert "already watched" in composer("-p", name, "up", "-d", "--watch", cwd=root, env=env).err
    down = composer("-p", name, "down", "-t", "0", cwd=root, env=env)
    assert down.code == 0, down.err
    assert "Stopped the background watcher" in down.err
    assert not pidfile.exists()
    assert not engine.backend.observe(name).containers
    wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid))
    stopped = composer("-p", name, "watch", "--stop", cwd=root, env=env)
    assert "No background watcher" in stopped.err


def _zombie(pid: int) -> bool:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rfind(")") + 2] == "Z"


def test_watch_stop_ends_the_background_watcher(engine: Engine, name: str, tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            image: bb:latest
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - {{path: ., action: sync, target: /app, ignore: [run]}}
        """,
    )
    env = engine.env
    assert composer("-p", name, "up", "-d", "--watch", cwd=root, env=env).code == 0
    pidfile = root / "run" / "composer" / name / "watch.pid"
    pid = int(pidfile.read_text().split()[0])
    stopped = composer("-p", name, "watch", "--stop", cwd=root, env=env)
    assert stopped.code == 0 and f"pid {pid}" in stopped.err
    assert not pidfile.exists()


def test_no_watch_rules_is_an_error(engine: Engine, name: str, tmp_path: Path) -> None:
    root = write_project(tmp_path, "services:\n  web:\n    image: bb:latest\n")
    result = composer("-p", name, "watch", "--no-up", cwd=root, env=engine.env)
    assert result.code == 2
    assert "none of the selected services is configured for watch" in result.err


def test_up_watch_attached(engine: Engine, name: str, tmp_path: Path) -> None:
    """``up --watch``: logs and watch lines on the terminal; Ctrl-C stops the stack."""
    root = write_project(
        tmp_path,
        """
        services:
          web:
            image: bb:latest
            init: true
            command: ["sh", "-c", "echo web is up; exec sleep 1000"]
            develop:
              watch:
                - {path: ./src, action: sync, target: /app}
        """,
    )
    (root / "src").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "composer", "-p", name, "up", "--watch"],
        cwd=root,
        env=engine.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []

    def expect(text: str) -> None:
        while not any(text in line for line in seen):
            seen.append(lines.get(timeout=60))

    try:
        expect("Watch enabled")
        expect("web is up")
        cid = container(engine, name, "web")
        (root / "src" / "live.txt").write_text("live\n")
        expect("web: sync 1 file")
        assert read(engine, cid, "/app/live.txt") == "live\n"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    wait_until(lambda: all(c.state != "running" for c in engine.backend.observe(name).containers))


def test_a_symlink_in_the_container_cannot_lead_out_of_it(
    engine: Engine, name: str, tmp_path: Path
) -> None:
    """A synced path through a container symlink lands inside the container, never
    on the host, though the link's target is a host directory's path."""
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            image: bb:latest
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - {{path: ./src, action: sync, target: /app}}
        """,
    )
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (root / "src" / "evil").mkdir(parents=True)
    with watching(root, name, engine) as watch:
        cid = container(engine, name, "web")
        # The link's target exists in the container too (Docker does not extract
        # through a dangling link); on the host it is an empty directory.
        script = f"mkdir -p /app {host_dir} && ln -s {host_dir} /app/evil"
        assert sh(engine, cid, script)[0] == 0
        (root / "src" / "evil" / "x").write_text("contained\n")
        watch.expect("web: sync 1 file")
        assert list(host_dir.iterdir()) == []
        assert read(engine, cid, f"{host_dir}/x") == "contained\n"
        assert read(engine, cid, "/app/evil/x") == "contained\n"


def test_prune_removes_the_previous_image(engine: Engine, name: str, tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            build: ./web
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - {{path: ./web, action: rebuild}}
        """,
    )
    (root / "web").mkdir()
    (root / "web" / "Dockerfile").write_text("FROM bb:latest\nCOPY version /version\n")
    (root / "web" / "version").write_text("1\n")
    with watching(root, name, engine, "--prune") as watch:
        old = engine.backend.image_id(f"{name}-web")
        assert old is not None
        (root / "web" / "version").write_text("2\n")
        assert "failed" not in watch.expect("web: rebuild")
        new = engine.backend.image_id(f"{name}-web")
        assert new is not None and new != old
        assert engine.backend.image_id(old) is None


def test_a_container_recreated_behind_the_watch_is_found_again(
    engine: Engine, name: str, tmp_path: Path
) -> None:
    root = write_project(
        tmp_path,
        f"""
        services:
          web:
            image: bb:latest
            init: true
            command: {SLEEPER}
            develop:
              watch:
                - {{path: ./src, action: sync, target: /app}}
        """,
    )
    (root / "src").mkdir()
    with watching(root, name, engine) as watch:
        (root / "src" / "one").write_text("1\n")
        watch.expect("web: sync 1 file")
        again = composer("-p", name, "up", "-d", "--force-recreate", cwd=root, env=engine.env)
        assert again.code == 0, again.err
        new = container(engine, name, "web")
        assert read(engine, new, "/app/one") is None, again.err  # a fresh container
        (root / "src" / "two").write_text("2\n")
        line = watch.expect("web: sync")
        assert "failed" not in line, line
        assert read(engine, new, "/app/two") == "2\n"
