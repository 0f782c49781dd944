"""The pure pieces of the inspection verbs: Go-compatible formatting, flag parsing,
and the use cases over the in-memory backend."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from composer import app_ops, render_ops
from composer.app_ops_run import apply_env, extract_to_host, parse_labels, split_copy_arg
from composer.backends.base import LogLine, ObservedContainer, PortBinding, ProjectSummary
from composer.errors import PlanError


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (2 * 3600, "2 hours"),
        (47 * 3600, "47 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (3 * 365 * 86400, "3 years"),
    ],
)
def test_human_duration_matches_go_units(seconds: float, text: str) -> None:
    assert render_ops.human_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (1984291, "1.98MB"), (12_345_678_901, "12.3GB")],
)
def test_human_size_matches_go_units(size: int, text: str) -> None:
    assert render_ops.human_size(size) == text


@pytest.mark.parametrize(
    ("bindings", "text"),
    [
        ([], ""),
        ([PortBinding(80)], "80/tcp"),
        ([PortBinding(80), PortBinding(81), PortBinding(82), PortBinding(90)], "80-82/tcp, 90/tcp"),
        ([PortBinding(80, "tcp", "0.0.0.0", 8080)], "0.0.0.0:8080->80/tcp"),
        ([PortBinding(80, "tcp", "::", 8080)], "[::]:8080->80/tcp"),
        ([PortBinding(80, "tcp", "0.0.0.0", 80)], "0.0.0.0:80->80/tcp"),
        ([PortBinding(53, "udp", "127.0.0.1", 5353), PortBinding(9000)],
         "9000/tcp, 127.0.0.1:5353->53/udp"),
    ],
)  # fmt: skip
def test_displayable_ports_matches_docker_ps(bindings: list[PortBinding], text: str) -> None:
    assert render_ops.displayable_ports(bindings) == text


def test_go_quote_and_ellipsis() -> None:
    assert render_ops.go_quote('sh -c "echo \\x"') == '"sh -c \\"echo \\\\x\\""'
    assert render_ops.go_quote("a\tb\n") == '"a\\tb\\n"'
    assert render_ops.ellipsis("docker-entrypoint.sh nginx", 20) == "docker-entrypoint.s…"
    assert render_ops.ellipsis("short", 20) == "short"


def test_tabwrite_pads_like_go() -> None:
    rows = [["NAME", "STATUS", "CONFIG FILES"], ["demo", "running(2)", "/x/compose.yaml"]]
    assert render_ops.tabwrite(rows, minwidth=20, padding=3) == (
        "NAME                STATUS              CONFIG FILES\n"
        "demo                running(2)          /x/compose.yaml\n"
    )
    wide = [["A", "B"], ["a-much-longer-cell-value", "b"]]
    assert render_ops.tabwrite(wide, minwidth=10, padding=3).splitlines()[0] == "A" + " " * 26 + "B"


def test_rfc3339_formats() -> None:
    moment = datetime(2024, 1, 2, 13, 23, 37, 120000, tzinfo=UTC).timestamp()
    assert render_ops.rfc3339_nano(moment, utc=True) == "2024-01-02T13:23:37.12Z"
    assert render_ops.rfc3339_nano_fixed(moment) == "2024-01-02T13:23:37.120000000Z"
    whole = datetime(2024, 1, 2, tzinfo=UTC).timestamp()
    assert render_ops.rfc3339_nano(whole, utc=True) == "2024-01-02T00:00:00Z"


def _container(name: str, service: str, **fields: object) -> ObservedContainer:
    base: dict[str, object] = {
        "id": "f" * 64,
        "name": name,
        "service": service,
        "number": 1,
        "oneoff": False,
        "state": "running",
        "labels": {"com.docker.compose.project": "demo"},
        "created_at": 1000.0,
        "image": "bb:latest",
        "command": "httpd -f -p 80 -h /",
        "status": "Up 5 seconds",
    }
    base.update(fields)
    return ObservedContainer(**base)  # type: ignore[arg-type]


def test_ps_table_and_json_records() -> None:
    web = _container("demo-web-1", "web", ports=(PortBinding(80, "tcp", "0.0.0.0", 8080),))
    table = render_ops.ps_table([web], now=1065.0)
    header, row = table.splitlines()
    assert header.split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    assert row.split("   ")[0] == "demo-web-1"
    assert '"httpd -f -p 80 -h /"' in row
    assert "About a minute ago" in row
    assert row.endswith("0.0.0.0:8080->80/tcp")
    record = json.loads(render_ops.ps_json([web], "demo", now=1065.0))
    assert record["Publishers"] == [
        {"URL": "0.0.0.0", "TargetPort": 80, "PublishedPort": 8080, "Protocol": "tcp"}
    ]
    assert (record["ID"], record["RunningFor"], record["ExitCode"]) == (
        "f" * 12,
        "About a minute ago",
        0,
    )
    assert list(record) == sorted(record)  # Go marshals the context's fields by name


def test_top_table_moves_cmd_last_and_fills_gaps() -> None:
    web = app_ops.ProcessTable("w", "web", "1", ("UID", "PID", "CMD"), (("root", "1", "httpd"),))
    db = app_ops.ProcessTable(
        "d", "db", "1", ("UID", "PID", "CMD", "X"), (("root", "9", "sh", "y"),)
    )
    tables = [web, db]
    lines = render_ops.top_table(tables).splitlines()
    assert lines[0].split() == ["SERVICE", "#", "UID", "PID", "X", "CMD"]
    assert lines[1].split() == ["web", "1", "root", "1", "-", "httpd"]
    assert lines[2].split() == ["db", "1", "root", "9", "y", "sh"]
    assert render_ops.top_table([]) == ""


def test_log_formatter_aligns_colours_and_timestamps() -> None:
    fmt = render_ops.LogFormatter(["web-1", "worker-1"])
    assert fmt.format("web-1", LogLine("stdout", "hi")) == "web-1     | hi\n"
    coloured = render_ops.LogFormatter(["a-1", "b-1"], colour=True)
    first, second = (
        coloured.format("a-1", LogLine("stdout", "x")),
        coloured.format("b-1", LogLine("stdout", "x")),
    )
    assert first.startswith("\x1b[36m") and second.startswith("\x1b[33m")  # fmt: skip
    bare = render_ops.LogFormatter(prefix=False, timestamps=True)
    line = LogLine("stderr", "boom", time=datetime(2024, 1, 2, tzinfo=UTC).timestamp())
    assert bare.format("x", line) == "2024-01-02T00:00:00.000000000Z boom\n"


def test_event_json_has_sorted_keys() -> None:
    from composer.backends.base import EngineEvent

    event = EngineEvent(
        1700000000.5, "container", "start", "c" * 64, "demo-web-1", "web", {"image": "bb"}
    )
    data = render_ops.event_json(event)
    assert list(json.loads(data)) == ["action", "attributes", "id", "service", "time", "type"]
    assert data.endswith("\n") and " " not in data.split('"time"')[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10m", 1000.0 - 600),
        ("1h30m", 1000.0 - 5400),
        ("1.5s", 998.5),
        ("0", 1000.0),
        ("1700000000", 1700000000.0),
        ("2024-01-02T00:00:00Z", datetime(2024, 1, 2, tzinfo=UTC).timestamp()),
    ],
)
def test_parse_timestamp(value: str, expected: float) -> None:
    assert app_ops.parse_timestamp(value, now=1000.0) == pytest.approx(expected)


def test_parse_timestamp_refuses_nonsense() -> None:
    with pytest.raises(PlanError, match="--until: invalid time"):
        app_ops.parse_timestamp("yesterday", now=0, flag="--until")


def test_flag_parsers() -> None:
    assert app_ops.parse_tail("all") is None
    assert app_ops.parse_tail("5") == 5
    with pytest.raises(PlanError):
        app_ops.parse_tail("five")
    assert app_ops.parse_ps_filter("status=exited") == ("exited",)
    with pytest.raises(PlanError, match="unknown filter"):
        app_ops.parse_ps_filter("name=x")
    assert app_ops.parse_ls_filter("name=demo") == "demo"
    assert parse_labels(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(PlanError):
        parse_labels(["novalue"])
    assert apply_env({"A": "1"}, ["B=2", "C", "D"], {"C": "3"}) == {"A": "1", "B": "2", "C": "3"}
    assert split_copy_arg("web:/etc/hosts") == ("web", "/etc/hosts")
    assert split_copy_arg("./a:b") == (None, "./a:b")
    assert split_copy_arg("-") == (None, "-")
    assert split_copy_arg("plain") == (None, "plain")


class _Projects:
    """Just enough of a backend for ``list_projects``."""

    def list_projects(self) -> list[ProjectSummary]:
        return [
            ProjectSummary("beta", {"running": 2, "exited": 1}, "/b/compose.yaml"),
            ProjectSummary("alpha", {"exited": 2}, "/a/compose.yaml"),
        ]


def test_list_projects_running_by_default_all_with_a_and_name_filters() -> None:
    backend = _Projects()
    rows = app_ops.list_projects(backend)  # type: ignore[arg-type]
    assert [(r.name, r.status) for r in rows] == [("beta", "running(2)")]
    rows = app_ops.list_projects(backend, all=True)  # type: ignore[arg-type]
    assert [(r.name, r.status) for r in rows] == [
        ("alpha", "exited(2)"),
        ("beta", "exited(1), running(2)"),
    ]
    rows = app_ops.list_projects(backend, all=True, name_filters=["^al"])  # type: ignore[arg-type]
    assert [r.name for r in rows] == ["alpha"]
    assert json.loads(render_ops.ls_json(rows)) == [
        {"Name": "alpha", "Status": "exited(2)", "ConfigFiles": "/a/compose.yaml"}
    ]


def test_pick_container_prefers_lowest_replica_then_one_offs() -> None:
    two = _container("demo-web-2", "web", number=2)
    one = _container("demo-web-1", "web", number=1)
    run = _container("demo-web-run-abc", "web", number=None, oneoff=True)
    assert app_ops.pick_container([run, two, one], "web", None) is one
    assert app_ops.pick_container([run, two, one], "web", 2) is two
    assert app_ops.pick_container([run], "web", None) is run
    with pytest.raises(Exception, match='service "web" is not running container #3'):
        app_ops.pick_container([one], "web", 3)
    assert app_ops.display_name(one, "demo") == "web-1"
    assert app_ops.display_name(_container("custom", "web"), "demo") == "custom"


def _archive(entries: dict[str, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_extract_to_host_like_docker_cp(tmp_path: Path) -> None:
    file_archive = _archive({"hosts": b"127.0.0.1 localhost\n"})
    extract_to_host(file_archive, tmp_path / "renamed")
    assert (tmp_path / "renamed").read_text() == "127.0.0.1 localhost\n"
    (tmp_path / "dir").mkdir()
    extract_to_host(file_archive, tmp_path / "dir")
    assert (tmp_path / "dir" / "hosts").exists()
    tree = _archive({"etc": None, "etc/a": b"a"})
    extract_to_host(tree, tmp_path / "copy")
    assert (tmp_path / "copy" / "a").read_text() == "a"
    evil = _archive({"../escape": b"x"})
    with pytest.raises(tarfile.OutsideDestinationError):
        extract_to_host(evil, tmp_path / "dir")
