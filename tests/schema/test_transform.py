"""Short syntax → canonical long forms, per file, with positions kept."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from composer.errors import ConfigError, Location
from composer.schema.transform import parse_port, parse_volume, transform_file
from composer.schema.tree import YMap, to_plain
from composer.schema.yamlread import parse_yaml


def load(text: str) -> YMap:
    tree = parse_yaml(textwrap.dedent(text), "c.yaml")
    assert isinstance(tree, YMap)
    return transform_file(tree, filename="c.yaml")


def service(body: str) -> dict[str, Any]:
    text = "services:\n  s:\n" + textwrap.indent(textwrap.dedent(body), "    ")
    plain = to_plain(load(text))
    assert isinstance(plain, dict)
    result: dict[str, Any] = plain["services"]["s"]
    return result


def port(
    published: str | None, target: int, ip: str | None = None, proto: str = "tcp"
) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "ingress"}
    if ip is not None:
        out["host_ip"] = ip
    out["target"] = target
    if published is not None:
        out["published"] = published
    out["protocol"] = proto
    return out


# --- ports ----------------------------------------------------------------------

PORTS = [
    ('"80"', [port(None, 80)]),
    ("80", [port(None, 80)]),
    ('"8080:80"', [port("8080", 80)]),
    ('"127.0.0.1:8080:80"', [port("8080", 80, "127.0.0.1")]),
    ('"[::1]:8080:80"', [port("8080", 80, "::1")]),
    ('"::1:8080:80"', [port("8080", 80, "::1")]),
    ('"8000-8002:8000-8002"', [port("8000", 8000), port("8001", 8001), port("8002", 8002)]),
    ('"9090-9091:8080"', [port("9090-9091", 8080)]),
    ('"6060:6060/udp"', [port("6060", 6060, proto="udp")]),
    ('"6060:6060/UDP"', [port("6060", 6060, proto="udp")]),
    ('"127.0.0.1::80"', [port(None, 80, "127.0.0.1")]),
    ('"3000-3001"', [port(None, 3000), port(None, 3001)]),
    # Docker sorts the expanded ports as "port/proto" strings.
    ('"8-10:8-10"', [port("10", 10), port("8", 8), port("9", 9)]),
    ("{target: 80, published: 8080}", [{"target": 80, "published": "8080"}]),
]


@pytest.mark.parametrize(("spec", "expected"), PORTS)
def test_ports(spec: str, expected: list[dict[str, Any]]) -> None:
    assert service(f"ports: [{spec}]")["ports"] == expected


BAD_PORTS = [
    ('"abc"', "invalid containerPort: abc"),
    ('"8080:"', "no port specified"),
    ('"1.2.3:80:80"', "invalid IP address: 1.2.3"),
    ('"80:80/icmp"', "invalid proto: icmp"),
    ('"8000-8001:80-82"', "invalid ranges"),
    ('"90-80"', "invalid containerPort"),
    ('"70000"', "invalid containerPort"),
    ('"[::1:80:80"', "invalid IP address"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_PORTS)
def test_bad_ports(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        service(f"ports:\n  - {spec}")
    problem = info.value.problems[0]
    assert message in problem.message
    assert problem.path == "services.s.ports[0]"
    assert problem.location == Location("c.yaml", 4, 9)


def test_parse_port_is_usable_alone() -> None:
    assert parse_port("1-2:1-2/sctp") == [port("1", 1, proto="sctp"), port("2", 2, proto="sctp")]


# --- volumes --------------------------------------------------------------------

BIND = {"create_host_path": True}
VOLUMES = [
    ("./data:/data", {"type": "bind", "source": "./data", "target": "/data", "bind": BIND}),
    (
        "/abs:/abs:ro",
        {"type": "bind", "source": "/abs", "target": "/abs", "read_only": True, "bind": BIND},
    ),
    ("~/h:/h:rw", {"type": "bind", "source": "~/h", "target": "/h", "bind": BIND}),
    ("data:/data/", {"type": "volume", "source": "data", "target": "/data", "volume": {}}),
    (
        "data:/data:nocopy",
        {"type": "volume", "source": "data", "target": "/data", "volume": {"nocopy": True}},
    ),
    ("/anon", {"type": "volume", "target": "/anon", "volume": {}}),
    ("/x", {"type": "volume", "target": "/x"}),
    (
        "./a:/a:ro,Z,rshared",
        {
            "type": "bind",
            "source": "./a",
            "target": "/a",
            "read_only": True,
            "bind": {"selinux": "Z", "propagation": "rshared", "create_host_path": True},
        },
    ),
    ("C:\\\\src:/dst", {"type": "bind", "source": "C:\\src", "target": "/dst", "bind": BIND}),
    ("./a:/a:cached", {"type": "bind", "source": "./a", "target": "/a", "bind": BIND}),
    ("${X:-a}:/a", {"type": "volume", "source": "${X:-a}", "target": "/a", "volume": {}}),
]


@pytest.mark.parametrize(("spec", "expected"), VOLUMES)
def test_volumes(spec: str, expected: dict[str, Any]) -> None:
    assert service(f'volumes: ["{spec}"]')["volumes"] == [expected]


def test_long_form_volume_is_kept() -> None:
    body = "volumes: [{type: bind, source: ., target: /src, read_only: true}]"
    assert service(body)["volumes"] == [
        {"type": "bind", "source": ".", "target": "/src", "read_only": True}
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ab::c", "empty section between colons"),
        ("ab:cd:ef:gh", "too many colons"),
        ("a:/b:", "empty section"),
    ],
)
def test_bad_volumes(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        service(f'volumes: ["{spec}"]')
    with pytest.raises(ValueError, match="invalid empty volume spec"):
        parse_volume("")


# --- everything else --------------------------------------------------------------

CASES: list[tuple[str, str, Any]] = [
    ("depends_on: [db]", "depends_on", {"db": {"condition": "service_started", "required": True}}),
    (
        "depends_on: {db: {condition: service_healthy}}",
        "depends_on",
        {"db": {"condition": "service_healthy", "required": True}},
    ),
    (
        "depends_on: {db: {condition: service_healthy, restart: true, required: false}}",
        "depends_on",
        {"db": {"condition": "service_healthy", "restart": True, "required": False}},
    ),
    ("networks: [front, back]", "networks", {"front": None, "back": None}),
    ("networks: {front: {aliases: [a]}}", "networks", {"front": {"aliases": ["a"]}}),
    ("models: [llm]", "models", {"llm": None}),
    ("build: ./app", "build", {"context": "./app"}),
    (
        "build: {args: [A=1, B], labels: [l=x]}",
        "build",
        {"args": {"A": "1", "B": None}, "labels": {"l": "x"}},
    ),
    (
        "build: {args: {A: 1, B: true, C: null}}",
        "build",
        {"args": {"A": "1", "B": "true", "C": None}},
    ),
    ("build: {additional_contexts: [a=./a]}", "build", {"additional_contexts": {"a": "./a"}}),
    (
        "build: {secrets: [tok], ulimits: {nofile: 5}}",
        "build",
        {"secrets": [{"source": "tok"}], "ulimits": {"nofile": {"single": 5}}},
    ),
    (
        "build: {provenance: true, ssh: default}",
        "build",
        {"provenance": "true", "ssh": ["default"]},
    ),
    ("environment: [A=1, B, C=, D=x=y]", "environment", {"A": "1", "B": None, "C": "", "D": "x=y"}),
    (
        "environment: {A: 1, B: 1.5, C: false, D: null}",
        "environment",
        {"A": "1", "B": "1.5", "C": "false", "D": None},
    ),
    ("labels: [a=1, b]", "labels", {"a": "1", "b": ""}),
    ("labels: {a: 1, b: null}", "labels", {"a": "1", "b": ""}),
    ("annotations: [a=1]", "annotations", {"a": "1"}),
    ("sysctls: [net.core.somaxconn=1024]", "sysctls", {"net.core.somaxconn": "1024"}),
    ("sysctls: {net.core.somaxconn: 1024}", "sysctls", {"net.core.somaxconn": "1024"}),
    (
        'extra_hosts: ["a:1.2.3.4", "b=::1", "a=[::2]", "c=1.1.1.1,2.2.2.2"]',
        "extra_hosts",
        {"a": ["1.2.3.4", "::2"], "b": ["::1"], "c": ["1.1.1.1", "2.2.2.2"]},
    ),
    (
        "extra_hosts: {a: 1.2.3.4, b: ['::1', 10.0.0.1]}",
        "extra_hosts",
        {"a": ["1.2.3.4"], "b": ["::1", "10.0.0.1"]},
    ),
    (
        "ulimits: {nofile: 1024, nproc: {soft: 1, hard: 2}}",
        "ulimits",
        {"nofile": {"single": 1024}, "nproc": {"soft": 1, "hard": 2}},
    ),
    ("env_file: .env", "env_file", [{"path": ".env", "required": True}]),
    (
        "env_file: [a.env, {path: b.env, required: false}]",
        "env_file",
        [{"path": "a.env", "required": True}, {"path": "b.env", "required": False}],
    ),
    (
        "env_file: [{path: c.env, format: raw}]",
        "env_file",
        [{"path": "c.env", "format": "raw", "required": True}],
    ),
    (
        "secrets: [a, {source: b, target: /b}]",
        "secrets",
        [{"source": "a"}, {"source": "b", "target": "/b"}],
    ),
    ("configs: [a]", "configs", [{"source": "a"}]),
    (
        'devices: ["/dev/a:/dev/b:r", "/dev/c", "/dev/d:/dev/e"]',
        "devices",
        [
            {"source": "/dev/a", "target": "/dev/b", "permissions": "r"},
            {"source": "/dev/c", "target": "/dev/c", "permissions": "rwm"},
            {"source": "/dev/d", "target": "/dev/e", "permissions": "rwm"},
        ],
    ),
    ("dns: 8.8.8.8", "dns", ["8.8.8.8"]),
    ("dns_search: example.com", "dns_search", ["example.com"]),
    ("tmpfs: /run", "tmpfs", ["/run"]),
    ("""command: echo "a b" 'c d' e\\ f""", "command", ["echo", "a b", "c d", "e f"]),
    ("command: [echo, hi]", "command", ["echo", "hi"]),
    ("entrypoint: /bin/sh -c", "entrypoint", ["/bin/sh", "-c"]),
    (
        "healthcheck: {test: curl -f http://x}",
        "healthcheck",
        {"test": ["CMD-SHELL", "curl -f http://x"]},
    ),
    ("healthcheck: {test: [CMD, echo]}", "healthcheck", {"test": ["CMD", "echo"]}),
    ("post_start: [{command: echo hi}]", "post_start", [{"command": ["echo", "hi"]}]),
    (
        "pre_stop: [{command: [a], environment: [X=1]}]",
        "pre_stop",
        [{"command": ["a"], "environment": {"X": "1"}}],
    ),
    (
        "develop: {watch: [{path: ., action: sync+exec, ignore: x, exec: {command: make}}]}",
        "develop",
        {
            "watch": [
                {"path": ".", "action": "sync+exec", "ignore": ["x"], "exec": {"command": ["make"]}}
            ]
        },
    ),
    ('expose: [80, "90", 100-110]', "expose", ["80", "90", "100-110"]),
    ("label_file: labels.txt", "label_file", ["labels.txt"]),
    ("gpus: all", "gpus", [{"count": -1}]),
    ("gpus: [{driver: nvidia, count: all}]", "gpus", [{"driver": "nvidia", "count": -1}]),
    ("extends: base", "extends", {"service": "base"}),
    ("extends: {service: base, file: b.yaml}", "extends", {"service": "base", "file": "b.yaml"}),
    ("logging: {options: {max-file: 3}}", "logging", {"options": {"max-file": "3"}}),
    (
        "deploy: {labels: [a=b], resources: {reservations: {devices: [{count: all}]}}}",
        "deploy",
        {"labels": {"a": "b"}, "resources": {"reservations": {"devices": [{"count": -1}]}}},
    ),
    ("x-custom: [a=1]", "x-custom", ["a=1"]),
    ("unknown_key: 80:80", "unknown_key", "80:80"),
]


@pytest.mark.parametrize(("body", "key", "expected"), CASES)
def test_service_short_syntax(body: str, key: str, expected: Any) -> None:
    assert service(body)[key] == expected


TOP_LEVEL = [
    (
        "networks: {n: {external: {name: real}}}",
        {"networks": {"n": {"external": True, "name": "real"}}},
    ),
    ("networks: {n: {external: {}}}", {"networks": {"n": {"external": True}}}),
    ('volumes: {v: {external: "true"}}', {"volumes": {"v": {"external": "true"}}}),
    (
        "volumes: {v: null, w: {labels: [a=b]}}",
        {"volumes": {"v": None, "w": {"labels": {"a": "b"}}}},
    ),
    (
        "secrets: {s: {external: {name: x}, name: x}}",
        {"secrets": {"s": {"external": True, "name": "x"}}},
    ),
    ("include: [a.yaml]", {"include": [{"path": ["a.yaml"]}]}),
    (
        "include: [{path: b.yaml, env_file: e}]",
        {"include": [{"path": ["b.yaml"], "env_file": ["e"]}]},
    ),
    ("include: [{path: [a.yaml, b.yaml]}]", {"include": [{"path": ["a.yaml", "b.yaml"]}]}),
]


@pytest.mark.parametrize(("text", "expected"), TOP_LEVEL)
def test_top_level(text: str, expected: dict[str, Any]) -> None:
    assert to_plain(load(text)) == expected


def test_external_name_conflict_and_warning() -> None:
    warnings: list[str] = []
    tree = parse_yaml("networks:\n  n:\n    name: a\n    external: {name: b}\n", "c.yaml")
    with pytest.raises(ConfigError, match="conflict") as info:
        transform_file(tree, filename="c.yaml", warn=warnings.append)
    assert info.value.problems[0].location == Location("c.yaml", 4, 15)
    assert warnings and "deprecated" in warnings[0]


def test_positions_and_tags_survive() -> None:
    tree = load(
        """
        services:
          web:
            ports: !override
              - "8000-8001:8000-8001"
            environment: [A=1, B=2]
            build: .
        """
    )
    web = tree["services"]["web"]
    assert web.tags == {"ports": "override"}
    assert [web["ports"].loc_of(i) for i in range(2)] == [Location("c.yaml", 5, 9)] * 2
    assert web["ports"][1].loc_of("target") == Location("c.yaml", 5, 9)
    assert web["environment"].loc_of("B") == Location("c.yaml", 6, 24)
    assert web.loc_of("build") == Location("c.yaml", 7, 12)
    assert web["build"].loc_of("context") == Location("c.yaml", 7, 12)


def test_all_problems_of_a_file_in_document_order() -> None:
    text = """
    services:
      b:
        ports: ["x"]
        volumes: ["ab::c"]
      a:
        devices: ["a:b:c:d"]
        command: 'unterminated "quote'
        extra_hosts: [nohost]
    """
    with pytest.raises(ConfigError) as info:
        load(text)
    problems = info.value.problems
    assert [p.path for p in problems] == [
        "services.b.ports[0]",
        "services.b.volumes[0]",
        "services.a.devices[0]",
        "services.a.command",
        "services.a.extra_hosts[0]",
    ]
    assert [p.location.line for p in problems if p.location] == [4, 5, 7, 8, 9]
    assert "c.yaml:4:" in str(info.value)


def test_already_long_is_unchanged() -> None:
    text = """
    services:
      s:
        ports: [{target: 80, published: "8080", protocol: udp, mode: host}]
        environment: {A: "1"}
        depends_on: {db: {condition: service_started, required: true}}
        networks: {n: null}
        build: {context: ., args: {A: "1"}}
        command: [a, b]
    """
    before = to_plain(parse_yaml(textwrap.dedent(text), "c.yaml"))
    assert to_plain(load(text)) == before


def test_two_thousand_services() -> None:
    body = """
  svc{n}:
    image: busybox
    command: sleep infinity
    ports: ["{p}:80", "127.0.0.1:{q}:81/udp"]
    environment: [A=1, B=2, C=3, D=4]
    labels: [com.example.n={n}]
    volumes: ["./data{n}:/data", "v{n}:/v:ro"]
    depends_on: [svc0]
    healthcheck: {{test: "curl -f http://localhost", interval: 5s}}
"""
    text = "services:" + "".join(body.format(n=n, p=10000 + n, q=20000 + n) for n in range(2000))
    tree = transform_file(parse_yaml(text, "big.yaml"), filename="big.yaml")
    last = tree["services"]["svc1999"]
    assert last["ports"][1] == {
        "mode": "ingress",
        "host_ip": "127.0.0.1",
        "target": 81,
        "published": "21999",
        "protocol": "udp",
    }
    assert last["environment"] == {"A": "1", "B": "2", "C": "3", "D": "4"}
    assert last["healthcheck"]["test"] == ["CMD-SHELL", "curl -f http://localhost"]
