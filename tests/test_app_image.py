"""``composer image`` rendering: rows like ``docker images``, ``--format`` templates."""

from __future__ import annotations

import json

import pytest

from composer import app_image
from composer.errors import NotFound, PlanError

NOW = 1_700_000_000
IMAGES = [
    {
        "Id": "sha256:" + "a" * 64,
        "RepoTags": ["bb:latest", "localhost:5000/x/bb:1"],
        "Created": NOW - 3600,
        "Size": 1_982_415,
    },
    {"Id": "sha256:" + "b" * 64, "RepoTags": [], "Created": NOW - 30, "Size": 1000},
    {
        "Id": "sha256:" + "c" * 64,
        "RepoTags": None,
        "RepoDigests": ["me/app@sha256:" + "d" * 64],
        "Created": NOW - 90000,
        "Size": 5,
    },
]


def test_rows_one_per_name_newest_first() -> None:
    rows = app_image.image_rows(IMAGES)
    assert [(r.repository, r.tag) for r in rows] == [
        ("<none>", "<none>"),
        ("bb", "latest"),
        ("localhost:5000/x/bb", "1"),
        ("me/app", "<none>"),
    ]


def test_table_quiet_and_json() -> None:
    rows = app_image.image_rows(IMAGES)
    table = app_image.render_ls(rows, quiet=False, fmt="table", now=NOW)
    assert table.splitlines() == [
        "REPOSITORY            TAG       IMAGE ID       CREATED             SIZE",
        "<none>                <none>    bbbbbbbbbbbb   30 seconds ago      1kB",
        "bb                    latest    aaaaaaaaaaaa   About an hour ago   1.98MB",
        "localhost:5000/x/bb   1         aaaaaaaaaaaa   About an hour ago   1.98MB",
        "me/app                <none>    cccccccccccc   25 hours ago        5B",
    ]
    quiet = app_image.render_ls(rows, quiet=True, fmt="table", now=NOW)
    assert quiet == "bbbbbbbbbbbb\naaaaaaaaaaaa\ncccccccccccc\n"
    lines = app_image.render_ls(rows, quiet=False, fmt="json", now=NOW).splitlines()
    first = json.loads(lines[0])
    assert first["Repository"] == "<none>" and first["CreatedSince"] == "30 seconds ago"
    assert "\\u003cnone\\u003e" in lines[0]  # Go's encoder escapes < and >
    assert json.loads(lines[1])["VirtualSize"] == "1.982MB"


def test_tabwriter_pads_like_docker() -> None:
    text = app_image.tabwriter(("A", "LONGER HEADER", "Z"), [("x", "y", "z")])
    assert text == "A         LONGER HEADER   Z\nx         y               z\n"


class _Admin:
    def inspect(self, ref: str) -> dict[str, object]:
        if ref == "missing":
            raise NotFound(f"No such image: {ref}")
        return {
            "Id": "sha256:1",
            "Config": {"Cmd": ["sh", "-c"], "Env": None, "Labels": {"b": "2", "a": "1"}},
            "Size": 12.0,
        }


def test_inspect_templates() -> None:
    admin = _Admin()
    out = app_image.inspect(
        admin,  # type: ignore[arg-type]
        ["x", "missing"],
        "{{.Id}} {{.Config.Cmd}} {{json .Config.Cmd}} {{.Config.Labels}} {{.Config.Env}} {{.Size}}",
    )
    assert out.text == 'sha256:1 [sh -c] ["sh","-c"] map[a:1 b:2] <no value> 12\n'
    assert [str(e) for e in out.errors] == ["No such image: missing"]
    as_json = app_image.inspect(admin, ["x"], "json")  # type: ignore[arg-type]
    assert json.loads(as_json.text)[0]["Id"] == "sha256:1"
    with pytest.raises(PlanError):
        app_image.inspect(admin, ["x"], "yaml")  # type: ignore[arg-type]
    with pytest.raises(PlanError, match="not supported"):
        app_image.inspect(admin, ["x"], "{{range .RepoTags}}{{.}}{{end}}")  # type: ignore[arg-type]


def test_split_name_keeps_registry_ports() -> None:
    assert app_image.split_name("localhost:5000/app") == ("localhost:5000/app", "<none>")
    assert app_image.split_name("localhost:5000/app:2") == ("localhost:5000/app", "2")


def test_filters() -> None:
    labelled = [dict(IMAGES[0], Labels={"team": "web", "tier": "1"}), *IMAGES[1:]]

    def ids(*filters: str) -> list[str]:
        return [s["Id"][7:8] for s in app_image.filter_summaries(labelled, filters)]

    assert ids("dangling=true") == ["b", "c"]
    assert ids("dangling=false") == ["a"]
    assert ids("reference=bb") == ["a"]
    assert ids("reference=b*") == ["a"]
    assert ids("reference=*/x/bb:1") == ["a"]
    assert ids("reference=bb:2") == []
    assert ids("label=team") == ["a"]
    assert ids("label=team=web", "dangling=false") == ["a"]
    assert ids("label=team=db") == []
    for bad in ("dangling=maybe", "since=x", "dangling"):
        with pytest.raises(PlanError):
            ids(bad)


def test_no_trunc_shows_full_ids() -> None:
    rows = app_image.image_rows(IMAGES[:1])
    text = app_image.render_ls(rows, quiet=True, fmt="table", now=NOW, no_trunc=True)
    assert text == "sha256:" + "a" * 64 + "\n"
