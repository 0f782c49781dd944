"""Docker specifics of the CLI's verbs: stream framing, TTYs, stdin on attach, early close."""

from __future__ import annotations

import io
import itertools
import struct
import time
from dataclasses import replace
from typing import Any

import pytest

from composer.backends.base import LogLine
from composer.backends.docker import streams
from composer.errors import BackendError, NotFound

from .conftest import TEST_IMAGE, Specs

# --- framing, without an engine ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:01Z", 1.0),
        ("2024-03-01T10:00:00.5Z", 1709287200.5),
        ("2024-03-01T10:00:00.123456789Z", 1709287200.123456789),
        ("2024-03-01T12:00:00+02:00", 1709287200.0),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("yesterday", None),
    ],
)
def test_parse_time(text: str, expected: float | None) -> None:
    got = streams.parse_time(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)


def test_api_time_keeps_nanoseconds() -> None:
    assert streams.api_time(1709287200.5) == "1709287200.500000000"


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(data)) + data


def reader(data: bytes, step: int | None = None) -> Any:
    buffer = io.BytesIO(data)
    return (lambda n: buffer.read(min(n, step))) if step else buffer.read


def test_multiplexed_frames_become_lines_per_stream() -> None:
    raw = (
        frame(1, b"par")
        + frame(2, b"oops\n")
        + frame(1, b"tial\nwhole\n")
        + frame(3, b"stdin echo is ignored\n")
        + frame(1, b"no newline")
    )
    lines = list(streams.log_lines(streams.response_frames(reader(raw), tty=False), False))
    assert lines == [
        LogLine("stderr", "oops"),
        LogLine("stdout", "partial"),
        LogLine("stdout", "whole"),
        LogLine("stdout", "no newline"),
    ]


def test_truncated_frame_ends_the_stream() -> None:
    raw = frame(1, b"ok\n") + struct.pack(">BxxxL", 1, 100) + b"short"
    assert [
        x.text for x in streams.log_lines(streams.response_frames(reader(raw), False), False)
    ] == ["ok"]


def test_tty_output_is_all_stdout_and_loses_carriage_returns() -> None:
    raw = b"one\r\ntwo\r\nthr"
    frames = streams.response_frames(reader(raw + b"ee\r\n", step=4), tty=True)
    assert [(x.stream, x.text) for x in streams.log_lines(frames, False)] == [
        ("stdout", "one"),
        ("stdout", "two"),
        ("stdout", "three"),
    ]


def test_timestamp_prefix_becomes_the_line_time() -> None:
    raw = frame(1, b"2024-03-01T10:00:00.25Z hello world\n") + frame(2, b"not-a-time text\n")
    lines = list(streams.log_lines(streams.response_frames(reader(raw), False), True))
    assert lines[0] == LogLine("stdout", "hello world", pytest.approx(1709287200.25))
    assert lines[1] == LogLine("stderr", "not-a-time text", None)


# --- on the engine -------------------------------------------------------------------


@pytest.fixture
def docker(docker_backend: Any, docker_project: str) -> Any:
    return docker_backend


def test_tty_container_logs_and_exec(docker: Any, specs: Specs) -> None:
    spec = replace(
        specs.container(), tty=True, command=("sh", "-c", "echo one; echo two >&2; sleep 300")
    )
    cid = docker.create_container(spec)
    docker.start_container(cid)
    deadline = time.monotonic() + 10
    while len(list(docker.logs(cid))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(x.stream, x.text) for x in docker.logs(cid)] == [("stdout", "one"), ("stdout", "two")]
    out = io.BytesIO()
    code = docker.exec_run(cid, ["sh", "-c", "echo hi >&2; exit 2"], tty=True, stdout=out)
    assert (code, out.getvalue()) == (2, b"hi\r\n")


def test_exec_with_user_workdir_and_environment(docker: Any, specs: Specs) -> None:
    cid = docker.create_container(specs.container())
    docker.start_container(cid)
    out = io.BytesIO()
    code = docker.exec_run(
        cid,
        ["sh", "-c", 'echo "$(id -u) $(pwd) $GREETING"'],
        user="1234",
        workdir="/tmp",
        env={"GREETING": "hello there"},
        stdout=out,
    )
    assert (code, out.getvalue()) == (0, b"1234 /tmp hello there\n")


def test_followed_logs_deliver_lines_while_the_container_runs(docker: Any, specs: Specs) -> None:
    spec = replace(specs.container(), command=("sh", "-c", "echo first; sleep 2; echo second"))
    cid = docker.create_container(spec)
    docker.start_container(cid)
    lines = docker.logs(cid, follow=True)
    assert next(lines).text == "first"
    # The first line arrives while the container still runs (it sleeps 2 s).
    assert docker.inspect_container(cid).state == "running"
    assert [x.text for x in lines] == ["second"]


def test_attach_run_forwards_stdin(docker: Any, specs: Specs) -> None:
    spec = replace(
        specs.container(oneoff=True), stdin_open=True, command=("sh", "-c", "tr a-z A-Z; exit 5")
    )
    cid = docker.create_container(spec)
    out = io.BytesIO()
    code = docker.attach_run(cid, stdin=io.BytesIO(b"shout\n"), stdout=out, stderr=None, tty=False)
    assert (code, out.getvalue()) == (5, b"SHOUT\n")


def test_events_stream_can_be_closed_while_it_waits(docker: Any, specs: Specs) -> None:
    since = time.time() - 1
    cid = docker.create_container(specs.container())
    events = docker.events(specs.project, since=since)
    first = next(events)
    assert (first.action, first.id) == ("create", cid)
    events.close()  # no until: the stream would block for ever


def test_push_to_an_unreachable_registry(docker: Any) -> None:
    ref = "127.0.0.1:9/composer-push-test:1"
    docker.api.tag(TEST_IMAGE, "127.0.0.1:9/composer-push-test", tag="1")
    try:
        with pytest.raises(BackendError) as caught:
            docker.push_image(ref)
        assert not isinstance(caught.value, NotFound)
        assert caught.value.message.startswith(f"push {ref}: ")
    finally:
        docker.remove_image(ref)


def test_stat_and_copy_of_a_missing_container(docker: Any) -> None:
    with pytest.raises(NotFound):
        docker.stat_path("composer-no-such-container", "/")
    with pytest.raises(NotFound):
        list(itertools.islice(docker.copy_from("composer-no-such-container", "/"), 1))
