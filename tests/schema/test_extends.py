"""``extends``: same file, other files, chains, cycles, relative paths, errors."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from composer.errors import ExtendsError, Location
from composer.schema.extends import resolve_extends
from composer.schema.transform import transform_file
from composer.schema.tree import YMap, to_plain
from composer.schema.yamlread import parse_yaml

FIXTURES = Path(__file__).parent / "fixtures" / "extends"


def read(path: str) -> YMap:
    """What the loader hands to ``load_file``: parsed and transformed."""
    tree = parse_yaml(Path(path).read_text(), path)
    assert isinstance(tree, YMap)
    return transform_file(tree, filename=path)


def inline(text: str, name: str = "/p/compose.yaml") -> dict[str, Any]:
    tree = parse_yaml(textwrap.dedent(text), name)
    assert isinstance(tree, YMap)
    transform_file(tree, filename=name)
    out = to_plain(resolve_extends(tree, filename=name, load_file=read))
    assert isinstance(out, dict)
    services: dict[str, Any] = out["services"]
    return services


SAME_FILE = [
    (
        """
        services:
          base: {image: a, environment: {A: "1", B: "2"}, ports: ["80:80"], command: x}
          child: {extends: base, environment: {B: "3"}, ports: ["81:81"], command: y}
        """,
        {
            "image": "a",
            "environment": {"A": "1", "B": "3"},
            "ports": [
                {"mode": "ingress", "target": 80, "published": "80", "protocol": "tcp"},
                {"mode": "ingress", "target": 81, "published": "81", "protocol": "tcp"},
            ],
            "command": ["y"],
        },
    ),
    (
        """
        services:
          base: {image: a, dns: [x], volumes: ["v1:/data"]}
          child: {extends: {service: base}, dns: [y, x], volumes: ["v2:/data"]}
        """,
        {
            "image": "a",
            "dns": ["x", "y"],
            "volumes": [{"type": "volume", "source": "v2", "target": "/data", "volume": {}}],
        },
    ),
    (
        """
        services:
          child: {extends: mid, user: child}
          mid: {extends: root, user: mid, hostname: mid}
          root: {image: r, user: root, hostname: root, working_dir: /r}
        """,
        {"image": "r", "user": "child", "hostname": "mid", "working_dir": "/r"},
    ),
    (
        """
        services:
          base: {image: a, command: x, depends_on: [db], links: [db], volumes_from: [db]}
          child: {extends: base, command: !reset null}
          db: {image: d}
        """,
        {
            "image": "a",
            "depends_on": {"db": {"condition": "service_started", "required": True}},
            "links": ["db"],
            "volumes_from": ["db"],
        },
    ),
    (
        """
        services:
          base: {image: a, ports: ["80:80"]}
          child: {extends: base, ports: !override ["81:81"]}
        """,
        {
            "image": "a",
            "ports": [{"mode": "ingress", "target": 81, "published": "81", "protocol": "tcp"}],
        },
    ),
]


@pytest.mark.parametrize(("text", "expected"), SAME_FILE)
def test_same_file(text: str, expected: dict[str, Any]) -> None:
    assert inline(text)["child"] == expected


def test_bases_are_left_intact_and_resolved_themselves() -> None:
    services = inline(
        """
        services:
          root: {image: r, environment: {A: "1"}}
          mid: {extends: root, environment: {B: "2"}}
          one: {extends: mid, environment: {C: "3"}}
          two: {extends: mid}
        """
    )
    assert services["root"] == {"image": "r", "environment": {"A": "1"}}
    assert services["mid"] == {"image": "r", "environment": {"A": "1", "B": "2"}}
    assert services["one"]["environment"] == {"A": "1", "B": "2", "C": "3"}
    assert services["two"] == services["mid"]


def test_other_files_and_relative_paths() -> None:
    main = str(FIXTURES / "compose.yaml")
    sub = FIXTURES / "sub"
    services = to_plain(resolve_extends(read(main), filename=main, load_file=read))["services"]
    web = services["web"]
    assert web["image"] == "busybox"
    assert web["build"] == {"context": str(sub / "ctx")}
    assert web["env_file"] == [{"path": str(sub / "root.env"), "required": True}]
    assert web["label_file"] == [str(sub / "labels.txt")]
    assert [v.get("source") for v in web["volumes"]] == [
        str(sub / "data"),
        "named",
        "/abs",
        "~/home",
    ]
    assert web["develop"]["watch"][0]["path"] == str(sub / "src")
    assert web["environment"] == {"LEVEL": "web", "ROOT": "1"}
    assert [p["published"] for p in web["ports"]] == ["80", "8080"]
    assert "extends" not in web
    # a chain through two files: paths are relative to the file that wrote them
    far = services["far"]
    assert far["build"]["context"] == str(FIXTURES / "common")
    assert far["build"]["additional_contexts"] == {
        "src": str(FIXTURES / "src"),
        "img": "docker-image://alpine",
        "svc": "service:base",
    }
    assert far["volumes"][0]["source"] == str(FIXTURES / "c")
    assert far["command"] == ["far"]
    # same directory: nothing to rebase
    plain = services["plain"]
    assert plain["build"]["context"] == "./common"
    assert plain["image"] == "mine"


def test_other_file_trees_are_not_modified() -> None:
    main = str(FIXTURES / "compose.yaml")
    cache: dict[str, YMap] = {}

    def load(path: str) -> YMap:
        if path not in cache:
            cache[path] = read(path)
        return cache[path]

    resolve_extends(read(main), filename=main, load_file=load)
    base = cache[str(FIXTURES / "sub" / "base.yaml")]
    assert base["services"]["app"]["extends"] == {"service": "root"}
    assert base["services"]["root"]["build"] == {"context": "./ctx"}


def test_positions_come_from_the_file_that_wrote_them() -> None:
    main = str(FIXTURES / "compose.yaml")
    web = resolve_extends(read(main), filename=main, load_file=read)["services"]["web"]
    assert web.loc_of("image") == Location(str(FIXTURES / "sub" / "base.yaml"), 3, 12)
    assert web["environment"].loc_of("LEVEL") == Location(main, 7, 14)
    assert web["environment"].loc_of("ROOT") == Location(str(FIXTURES / "sub" / "base.yaml"), 8, 38)


ERRORS = [
    (
        """
        services:
          a: {image: x, extends: b}
          b: {extends: c}
          c: {extends: a}
        """,
        "extends cycle: a -> b -> c -> a",
        Location("/p/compose.yaml", 3, 26),
        "services.a.extends",
    ),
    (
        """
        services:
          me:
            extends: me
        """,
        "extends cycle: me -> me",
        Location("/p/compose.yaml", 4, 14),
        "services.me.extends",
    ),
    (
        """
        services:
          web: {extends: {service: bsae}}
          base: {image: x}
        """,
        "cannot extend service 'bsae': no such service",
        Location("/p/compose.yaml", 3, 28),
        "services.web.extends.service",
    ),
    (
        """
        services:
          web: {extends: {service: x, file: missing.yaml}}
        """,
        "cannot read /p/missing.yaml: No such file or directory",
        Location("/p/compose.yaml", 3, 37),
        "services.web.extends.file",
    ),
    (
        """
        services:
          web: {extends: {file: x.yaml}}
        """,
        "extends needs a service name",
        Location("/p/compose.yaml", 3, 18),
        "services.web.extends",
    ),
]


@pytest.mark.parametrize(("text", "message", "location", "path"), ERRORS)
def test_errors(text: str, message: str, location: Location, path: str) -> None:
    with pytest.raises(ExtendsError) as info:
        inline(text)
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.message == message
    assert problem.location == location
    assert problem.path == path


def test_did_you_mean() -> None:
    with pytest.raises(ExtendsError) as info:
        inline("services:\n  web: {extends: bsae}\n  base: {image: x}\n")
    assert info.value.hint == "did you mean 'base'?"


def test_cycle_across_files_and_unknown_service_in_other_file() -> None:
    main = str(FIXTURES / "sub" / "cycle_a.yaml")
    with pytest.raises(ExtendsError) as info:
        resolve_extends(read(main), filename=main, load_file=read)
    assert info.value.problems[0].message == "extends cycle: a -> b (cycle_b.yaml) -> a"
    assert info.value.problems[0].location == Location(main, 3, 14)

    tree = parse_yaml("services:\n  web:\n    extends: {file: sub/base.yaml, service: ap}\n", "x")
    transform_file(tree, filename="x")
    name = str(FIXTURES / "compose.yaml")
    with pytest.raises(ExtendsError) as info:
        resolve_extends(tree, filename=name, load_file=read)
    assert "no such service in " + str(FIXTURES / "sub" / "base.yaml") in str(info.value)
    assert info.value.hint == "did you mean 'app'?"


def test_all_problems_of_a_file_are_reported() -> None:
    with pytest.raises(ExtendsError) as info:
        inline(
            """
            services:
              a: {extends: nope}
              b: {extends: c}
              c: {extends: b}
              d: {extends: a}
            """
        )
    assert [p.path for p in info.value.problems] == [
        "services.a.extends.service",
        "services.b.extends",
    ]


def test_files_without_extends_are_returned_as_they_are() -> None:
    tree = parse_yaml("services:\n  a: {image: x}\n", "/p/c.yaml")
    assert resolve_extends(tree, filename="/p/c.yaml", load_file=read) is tree
    empty = parse_yaml("name: x\n", "/p/c.yaml")
    assert to_plain(resolve_extends(empty, filename="/p/c.yaml", load_file=read)) == {"name": "x"}
