"""k8s-file log format, the pump and the reader (tail, since/until, follow)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from composer.backends.native.supervisor import logs as L
from composer.backends.runtime import LogLine


def test_timestamp_round_trip_keeps_nanoseconds() -> None:
    ns = 1_767_322_245_123_456_789
    text = L.format_timestamp(ns)
    assert text == "2026-01-02T02:50:45.123456789Z"
    assert abs(L.parse_timestamp(text) - ns / 1e9) < 1e-6
    assert L.parse_timestamp("2026-01-02T03:50:45.5+01:00") == 1_767_322_245.5


def test_records_mark_full_and_partial_lines() -> None:
    out = L.format_records("stdout", b"one\ntwo\nthr", 0, ends_line=False)
    assert out.split(b"\n")[:-1] == [
        b"1970-01-01T00:00:00.000000000Z stdout F one",
        b"1970-01-01T00:00:00.000000000Z stdout F two",
        b"1970-01-01T00:00:00.000000000Z stdout P thr",
    ]
    assert L.format_records("stderr", b"end", 0, ends_line=True).endswith(b"stderr F end\n")
    assert L.format_records("stdout", b"\n", 0, ends_line=False).endswith(b"stdout F \n")


def test_long_lines_are_split_and_joined_back(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    line = b"z" * (L.MAX_LINE * 2 + 5)
    path.write_bytes(L.format_records("stdout", line + b"\n", 0, ends_line=False))
    assert path.read_bytes().count(b" P ") == 2
    assert [x.text for x in L.read_logs(path)] == [line.decode()]


def _write(path: Path, records: list[tuple[int, str, str]]) -> None:
    with open(path, "ab") as f:
        for sec, stream, text in records:
            f.write(L.format_records(stream, text.encode(), sec * 10**9, ends_line=False))  # type: ignore[arg-type]


def test_reader_joins_fragments_per_stream_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    _write(
        path,
        [(1, "stdout", "a\n"), (2, "stdout", "b-"), (2, "stderr", "err\n"), (3, "stdout", "c\n")],
    )
    _write(path, [(4, "stdout", "d\n"), (5, "stdout", "e\n")])
    assert list(L.read_logs(path)) == [
        LogLine("stdout", "a"),
        LogLine("stderr", "err"),
        LogLine("stdout", "b-c"),
        LogLine("stdout", "d"),
        LogLine("stdout", "e"),
    ]
    assert [x.text for x in L.read_logs(path, since=3, until=5)] == ["d"]
    assert [x.text for x in L.read_logs(path, tail=2)] == ["d", "e"]
    assert [x.text for x in L.read_logs(path, tail=0)] == []
    assert [x.text for x in L.read_logs(path, tail=99)] == ["a", "err", "b-c", "d", "e"]
    assert [x.time for x in L.read_logs(path, tail=1, timestamps=True)] == [5.0]
    assert list(L.read_logs(tmp_path / "missing.log")) == []


def test_follow_sees_new_lines_until_told_to_stop(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    _write(path, [(1, "stdout", "old\n")])
    running = threading.Event()
    running.set()
    got: list[str] = []
    it = L.read_logs(path, follow=running.is_set, tail=1)
    got.append(next(it).text)

    def writer() -> None:
        _write(path, [(2, "stdout", "new\n")])
        time.sleep(0.2)
        _write(path, [(3, "stderr", "last\n")])
        running.clear()

    t = threading.Thread(target=writer)
    t.start()
    got.extend(x.text for x in it)
    t.join()
    assert got == ["old", "new", "last"]


def test_pump_writes_records_and_feeds_sinks(tmp_path: Path) -> None:
    pump = L.LogPump()
    log = L.LogFile(tmp_path / "c.log").open()
    seen: list[tuple[str, bytes]] = []
    log.sinks.append(lambda stream, data: seen.append((stream, data)))
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    ended: list[str] = []
    pump.add("c", "stdout", r1, log, on_eof=lambda: ended.append("out"))
    pump.add("c", "stderr", r2, log)
    os.write(w1, b"hello\nwor")
    os.write(w2, b"oops\n")
    assert not pump.drained("c", 0.05)
    os.write(w1, b"ld\n")
    os.close(w1)
    os.close(w2)
    assert pump.drained("c", 5)
    pump.close()
    log.close()
    lines = list(L.read_logs(tmp_path / "c.log"))
    assert sorted((x.stream, x.text) for x in lines) == [
        ("stderr", "oops"),
        ("stdout", "hello"),
        ("stdout", "world"),
    ]
    assert b"".join(d for s, d in seen if s == "stdout") == b"hello\nworld\n"
    assert ended == ["out"]
