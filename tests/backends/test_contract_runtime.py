"""The CLI's verbs (logs, exec, attach, wait, top, cp, events, ls, images, ports) on every backend.

Same harness as ``test_contract``: each test runs on the in-memory fake and
on the real Docker engine. What a container prints or an exec'd command
does comes from its command on Docker and from a script on the fake.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import replace

import pytest

from composer.backends import labels as L
from composer.backends.base import ContainerSpec, LogLine, PortSpec
from composer.backends.fake import FakeBackend
from composer.errors import Conflict, NotFound, Unavailable

from .conftest import TEST_IMAGE, Harness, Specs

LINES = (("stdout", "out one"), ("stderr", "err one"), ("stdout", "out two"))


def printing(h: Harness, spec: ContainerSpec, *, exit_code: int | None = None) -> ContainerSpec:
    """A container that prints ``LINES`` at start, then exits with ``exit_code`` or runs on."""
    script = "echo 'out one'; echo 'err one' >&2; echo 'out two'; "
    script += f"sleep 0.3; exit {exit_code}" if exit_code is not None else "exec sleep 300"
    if isinstance(h.backend, FakeBackend):
        h.backend.script(
            spec.service,
            output=LINES,  # type: ignore[arg-type]
            exit_after=0.3 if exit_code is not None else None,
            exit_code=exit_code or 0,
        )
    return replace(spec, command=("sh", "-c", script))


def now(h: Harness) -> float:
    return h.clock.now() if h.clock is not None else time.time()


def by_stream(lines: list[LogLine]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"stdout": [], "stderr": []}
    for line in lines:
        out[line.stream].append(line.text)
    return out


def started(h: Harness, spec: ContainerSpec) -> str:
    cid = h.backend.create_container(spec)
    h.backend.start_container(cid)
    return cid


# --- logs -----------------------------------------------------------------------


def test_logs_are_lines_split_by_stream(harness: Harness) -> None:
    b = harness.backend
    cid = started(harness, printing(harness, harness.specs.container()))
    harness.wait_for(lambda: len(list(b.logs(cid))) == 3)
    lines = list(b.logs(cid))
    assert by_stream(lines) == {"stdout": ["out one", "out two"], "stderr": ["err one"]}
    assert all(line.time is None for line in lines)
    assert len(list(b.logs(cid, tail=1))) == 1
    assert list(b.logs(cid, tail=0)) == []


def test_logs_with_timestamps_and_time_window(harness: Harness) -> None:
    b = harness.backend
    before = now(harness) - 1
    cid = started(harness, printing(harness, harness.specs.container()))
    harness.wait_for(lambda: len(list(b.logs(cid))) == 3)
    stamped = list(b.logs(cid, timestamps=True))
    assert [line.text for line in stamped if line.stream == "stdout"] == ["out one", "out two"]
    for line in stamped:
        assert line.time is not None and before <= line.time <= now(harness) + 1
    assert list(b.logs(cid, until=before)) == []
    assert len(list(b.logs(cid, since=before))) == 3


def test_followed_logs_end_when_the_container_exits(harness: Harness) -> None:
    b = harness.backend
    cid = started(harness, printing(harness, harness.specs.container(), exit_code=0))
    lines = list(b.logs(cid, follow=True))
    assert by_stream(lines)["stdout"] == ["out one", "out two"]
    assert b.inspect_container(cid).state == "exited"


def test_logs_of_a_missing_container(harness: Harness) -> None:
    with pytest.raises(NotFound):
        list(harness.backend.logs("no-such-container-" + harness.specs.project))


# --- exec, attach, wait -------------------------------------------------------------


def test_exec_streams_output_and_returns_the_exit_code(harness: Harness) -> None:
    b, spec = harness.backend, harness.specs.container()
    command = ["sh", "-c", "echo hi; echo oops >&2; exit 3"]
    if isinstance(b, FakeBackend):
        b.script_exec(spec.service, command, exit_code=3, stdout=b"hi\n", stderr=b"oops\n")
    cid = started(harness, spec)
    out, err = io.BytesIO(), io.BytesIO()
    assert b.exec_run(cid, command, stdout=out, stderr=err) == 3
    assert (out.getvalue(), err.getvalue()) == (b"hi\n", b"oops\n")


def test_exec_forwards_stdin_until_its_end(harness: Harness) -> None:
    b, spec = harness.backend, harness.specs.container()
    if isinstance(b, FakeBackend):
        b.script_exec(spec.service, ["cat"], echo_stdin=True)
    cid = started(harness, spec)
    out = io.BytesIO()
    assert b.exec_run(cid, ["cat"], stdin=io.BytesIO(b"line 1\nline 2\n"), stdout=out) == 0
    assert out.getvalue() == b"line 1\nline 2\n"


def test_exec_detached_returns_zero_and_needs_a_running_container(harness: Harness) -> None:
    b, spec = harness.backend, harness.specs.container()
    if isinstance(b, FakeBackend):
        b.script_exec(spec.service, ["false"], exit_code=1)
    cid = b.create_container(spec)
    with pytest.raises(Conflict):
        b.exec_run(cid, ["true"])
    b.start_container(cid)
    assert b.exec_run(cid, ["false"], detach=True) == 0
    assert b.exec_run(cid, ["false"]) == 1


def test_attach_run_starts_streams_and_returns_the_exit_code(harness: Harness) -> None:
    b = harness.backend
    spec = printing(harness, harness.specs.container(), exit_code=4)
    cid = b.create_container(spec)
    out, err = io.BytesIO(), io.BytesIO()
    assert b.attach_run(cid, stdin=None, stdout=out, stderr=err, tty=False) == 4
    assert out.getvalue() == b"out one\nout two\n"
    assert err.getvalue() == b"err one\n"
    assert b.inspect_container(cid).state == "exited"


def test_wait_returns_the_exit_code_or_times_out(harness: Harness) -> None:
    b = harness.backend
    cid = started(harness, harness.exiting(harness.specs.container("quick"), 7))
    assert b.wait_container(cid) == 7
    assert b.wait_container(cid) == 7  # already exited: at once
    slow = started(harness, harness.specs.container("slow"))
    with pytest.raises(Unavailable, match="timed out"):
        b.wait_container(slow, timeout=1)
    assert b.inspect_container(slow).state == "running"


def test_top_lists_processes_of_a_running_container(harness: Harness) -> None:
    b, spec = harness.backend, harness.specs.container()
    cid = b.create_container(spec)
    with pytest.raises(Conflict):
        b.top(cid)
    b.start_container(cid)
    titles, rows = b.top(cid)
    assert "PID" in titles and "CMD" in titles
    command = [row[titles.index("CMD")] for row in rows]
    assert any("sleep 300" in c for c in command), command


# --- files -------------------------------------------------------------------------


def archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def extract(chunks: list[bytes]) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        return {
            m.name: (tar.extractfile(m) or io.BytesIO()).read()
            for m in tar.getmembers()
            if m.isfile()
        }


def test_copy_in_stat_and_copy_out(harness: Harness) -> None:
    b = harness.backend
    cid = started(harness, harness.specs.container())
    b.copy_to(cid, "/tmp", archive({"d/f.txt": b"hello", "top.txt": b"x"}))
    assert b.stat_path(cid, "/tmp/d").is_dir
    stat = b.stat_path(cid, "/tmp/d/f.txt")
    assert (stat.name, stat.size, stat.is_dir) == ("f.txt", 5, False)
    assert extract(list(b.copy_from(cid, "/tmp/d"))) == {"d/f.txt": b"hello"}
    assert extract(list(b.copy_from(cid, "/tmp/top.txt"))) == {"top.txt": b"x"}


def test_copy_errors(harness: Harness) -> None:
    b = harness.backend
    cid = started(harness, harness.specs.container())
    with pytest.raises(NotFound):
        b.stat_path(cid, "/no/such/path")
    with pytest.raises(NotFound):
        list(b.copy_from(cid, "/no/such/path"))
    with pytest.raises(NotFound):
        b.copy_to(cid, "/no/such/dir", archive({"f": b""}))


# --- events and listings -------------------------------------------------------------


def test_events_of_the_project_in_a_time_window(harness: Harness) -> None:
    b, specs = harness.backend, harness.specs
    since = now(harness) - 1
    spec = specs.container()
    cid = started(harness, spec)
    b.stop_container(cid, timeout=1)
    other = Specs(specs.project + "x").container()
    other_id = b.create_container(other)
    try:
        until = now(harness) + 0.5
        if harness.clock is None:
            time.sleep(0.6)
        else:
            harness.clock.advance(0.6)
        events = list(b.events(specs.project, since=since, until=until))
    finally:
        b.remove_container(other_id, force=True)
    assert {e.name for e in events} == {spec.name}
    actions = [e.action for e in events]
    for expected in ("create", "start", "die", "stop"):
        assert expected in actions, actions
    assert actions.index("create") < actions.index("start") < actions.index("die")
    first = events[0]
    assert (first.type, first.id, first.service) == ("container", cid, "app")
    assert first.attributes[L.LABEL_PROJECT] == specs.project
    assert [e.time for e in events] == sorted(e.time for e in events)


def test_list_projects_counts_states_and_names_config_files(harness: Harness) -> None:
    b, specs = harness.backend, harness.specs
    files = {L.LABEL_CONFIG_FILES: "/srv/compose.yaml,/srv/override.yaml"}
    started(harness, specs.container("web", extra_labels=files))
    b.create_container(specs.container("db", extra_labels=files))
    found = {p.name: p for p in b.list_projects()}
    mine = found[specs.project]
    assert dict(mine.status_counts) == {"running": 1, "created": 1}
    assert mine.config_files == "/srv/compose.yaml,/srv/override.yaml"


def test_list_images_skips_missing_ones(harness: Harness) -> None:
    b = harness.backend
    image_id = b.image_id(TEST_IMAGE)
    assert image_id is not None
    found = b.list_images([TEST_IMAGE, "composer-missing:never", image_id])
    assert [i.ref for i in found] == [TEST_IMAGE, image_id]
    assert {i.id for i in found} == {image_id}
    assert TEST_IMAGE in found[0].repo_tags
    assert found[0].size >= 0 and found[0].created >= 0


def test_push_of_a_missing_image(harness: Harness) -> None:
    with pytest.raises(NotFound):
        harness.backend.push_image("127.0.0.1:9/composer-missing:never")


def test_ports_and_ps_fields(harness: Harness) -> None:
    b = harness.backend
    spec = replace(
        harness.specs.container(), ports=(PortSpec(target=80), PortSpec(target=81, published="0"))
    )
    cid = started(harness, spec)
    bindings = b.container_ports(cid)
    assert {p.target for p in bindings} == {80, 81}
    assert all(p.protocol == "tcp" and p.host_port and p.host_port > 0 for p in bindings)
    listed = harness.container(spec.name)
    assert (listed.image, listed.status.startswith("Up")) == (TEST_IMAGE, True), listed.status
    assert "sleep 300" in listed.command
    assert {p.target for p in listed.ports} == {80, 81}
    b.stop_container(cid, timeout=1)
    assert b.container_ports(cid) == []
    assert harness.container(spec.name).status.startswith("Exited (")
