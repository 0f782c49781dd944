"""Merging long-form trees of several files by the Compose merge rules."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import ConfigError, Location, MergeError
from composer.schema.merge import merge_service, merge_trees, strip_tags, strip_tags_in_place
from composer.schema.transform import transform_file
from composer.schema.tree import YMap, YSeq, deepcopy_tree, to_plain
from composer.schema.yamlread import parse_yaml


def load(text: str, name: str) -> YMap:
    tree = parse_yaml(textwrap.dedent(text), name)
    assert isinstance(tree, YMap)
    return transform_file(tree, filename=name)


def merged_service(base: str, override: str) -> dict[str, Any]:
    """Merge two service bodies written as inline YAML; return the plain result."""
    a = load("services:\n  s:\n" + textwrap.indent(textwrap.dedent(base), "    "), "a.yaml")
    b = load("services:\n  s:\n" + textwrap.indent(textwrap.dedent(override), "    "), "b.yaml")
    out = to_plain(merge_trees(merge_trees(YMap(), a), b))
    assert isinstance(out, dict)
    result: dict[str, Any] = out["services"]["s"]
    return result


P80 = {"mode": "ingress", "target": 80, "published": "80", "protocol": "tcp"}
P8080 = {"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}
P443 = {"mode": "ingress", "target": 443, "published": "443", "protocol": "tcp"}

CASES: list[tuple[str, str, str, Any]] = [
    # scalars: later wins; null keeps the earlier value
    ("image: a", "image: b", "image", "b"),
    ("image: a", "image: null", "image", "a"),
    ("image: a", "container_name: x", "image", "a"),
    # replaced, not appended
    ("command: a b", "command: c", "command", ["c"]),
    ("entrypoint: [a, b]", "entrypoint: [c]", "entrypoint", ["c"]),
    (
        "healthcheck: {test: a, interval: 5s}",
        "healthcheck: {test: [CMD, b]}",
        "healthcheck",
        {"test": ["CMD", "b"], "interval": "5s"},
    ),
    # unique keys
    ('ports: ["80:80", "443:443"]', 'ports: ["8080:80", "443:443"]', "ports", [P80, P443, P8080]),
    ('ports: ["80:80"]', 'ports: ["80:80/udp"]', "ports", [P80, {**P80, "protocol": "udp"}]),
    (
        'ports: ["80:80"]',
        'ports: ["127.0.0.1:80:80"]',
        "ports",
        [P80, {**P80, "host_ip": "127.0.0.1"}],
    ),
    (
        'ports: ["80:80"]',
        "ports: [{target: 80, published: 80, protocol: tcp, name: web}]",
        "ports",
        [{"target": 80, "published": "80", "protocol": "tcp", "name": "web"}],
    ),
    (
        'volumes: ["./a:/data", "vol:/v"]',
        'volumes: ["./b:/data:ro"]',
        "volumes",
        [
            {
                "type": "bind",
                "source": "./b",
                "target": "/data",
                "read_only": True,
                "bind": {"create_host_path": True},
            },
            {"type": "volume", "source": "vol", "target": "/v", "volume": {}},
        ],
    ),
    (
        'devices: ["/dev/a:/dev/x"]',
        'devices: ["/dev/b:/dev/x", "/dev/c"]',
        "devices",
        [
            {"source": "/dev/b", "target": "/dev/x", "permissions": "rwm"},
            {"source": "/dev/c", "target": "/dev/c", "permissions": "rwm"},
        ],
    ),
    (
        "secrets: [a, {source: b, target: /x}]",
        "secrets: [{source: a, mode: 0400}, {source: c, target: /x}]",
        "secrets",
        [{"source": "a", "mode": 0o400}, {"source": "c", "target": "/x"}],
    ),
    (
        "configs: [a]",
        "configs: [{source: a, target: /a}, b]",
        "configs",
        [{"source": "a", "target": "/a"}, {"source": "b"}],
    ),
    (
        "env_file: [a.env, b.env]",
        "env_file: [{path: a.env, required: false}]",
        "env_file",
        [{"path": "a.env", "required": False}, {"path": "b.env", "required": True}],
    ),
    ("expose: [80, 90]", 'expose: ["90", 100]', "expose", ["80", "90", "100"]),
    ("dns: [1.1.1.1]", "dns: [8.8.8.8, 1.1.1.1]", "dns", ["1.1.1.1", "8.8.8.8"]),
    (
        "cap_add: [NET_ADMIN]",
        "cap_add: [NET_ADMIN, SYS_TIME]",
        "cap_add",
        ["NET_ADMIN", "SYS_TIME"],
    ),
    ("profiles: [a]", "profiles: [a, b]", "profiles", ["a", "b"]),
    ("tmpfs: /run", "tmpfs: [/run, /tmp]", "tmpfs", ["/run", "/tmp"]),
    ("security_opt: [a]", "security_opt: [a]", "security_opt", ["a"]),
    (
        "networks: {n: {aliases: [x, y]}}",
        "networks: {n: {aliases: [y, z]}}",
        "networks",
        {"n": {"aliases": ["x", "y", "z"]}},
    ),
    # key-value mappings
    (
        "environment: [A=1, B=2]",
        "environment: {B: 3, C: 4}",
        "environment",
        {"A": "1", "B": "3", "C": "4"},
    ),
    ("environment: [A=1]", "environment: [A]", "environment", {"A": None}),
    ("labels: [a=1]", "labels: [b=2]", "labels", {"a": "1", "b": "2"}),
    (
        "build: {context: ., args: [A=1]}",
        "build: {args: [B=2], target: dev}",
        "build",
        {"context": ".", "args": {"A": "1", "B": "2"}, "target": "dev"},
    ),
    ("build: .", "build: ./other", "build", {"context": "./other"}),
    (
        "extra_hosts: [h=1.1.1.1]",
        "extra_hosts: [h=2.2.2.2, h=1.1.1.1, g=3.3.3.3]",
        "extra_hosts",
        {"h": ["1.1.1.1", "2.2.2.2"], "g": ["3.3.3.3"]},
    ),
    # mappings deep-merge
    (
        "depends_on: [db]",
        "depends_on: {db: {condition: service_healthy}, cache: {condition: service_started}}",
        "depends_on",
        {
            "db": {"condition": "service_healthy", "required": True},
            "cache": {"condition": "service_started", "required": True},
        },
    ),
    ("networks: [a]", "networks: [b]", "networks", {"a": None, "b": None}),
    ("networks: {a: {aliases: [x]}}", "networks: [a]", "networks", {"a": {"aliases": ["x"]}}),
    (
        "deploy: {resources: {limits: {cpus: 1}}}",
        "deploy: {resources: {limits: {memory: 1g}}}",
        "deploy",
        {"resources": {"limits": {"cpus": 1, "memory": "1g"}}},
    ),
    (
        "ulimits: {nofile: {soft: 1, hard: 2}}",
        "ulimits: {nofile: 3}",
        "ulimits",
        {"nofile": {"single": 3}},
    ),
    # logging: options merge only with the same driver (or none named)
    (
        "logging: {driver: json-file, options: {max-size: 1m}}",
        "logging: {options: {max-file: 2}}",
        "logging",
        {"driver": "json-file", "options": {"max-size": "1m", "max-file": "2"}},
    ),
    (
        "logging: {driver: json-file, options: {a: x}}",
        "logging: {driver: json-file, options: {b: y}}",
        "logging",
        {"driver": "json-file", "options": {"a": "x", "b": "y"}},
    ),
    (
        "logging: {driver: json-file, options: {a: x}}",
        "logging: {driver: syslog, options: {b: y}}",
        "logging",
        {"driver": "syslog", "options": {"b": "y"}},
    ),
    (
        "logging: {options: {a: x}}",
        "logging: {driver: syslog}",
        "logging",
        {"driver": "syslog", "options": {"a": "x"}},
    ),
    # other sequences append
    (
        "post_start: [{command: a}]",
        "post_start: [{command: b}]",
        "post_start",
        [{"command": ["a"]}, {"command": ["b"]}],
    ),
    # tags
    ('ports: ["80:80"]', "ports: !reset []", "ports", None),
    ("environment: {A: 1, B: 2}", "environment: {A: !reset ''}", "environment", {"B": "2"}),
    ('ports: ["80:80"]', 'ports: !override ["8080:80"]', "ports", [P8080]),
    ("environment: {A: 1}", "environment: !override {B: 2}", "environment", {"B": "2"}),
    ("command: a", "command: !reset null", "command", None),
]


@pytest.mark.parametrize(("base", "override", "key", "expected"), CASES)
def test_service_rules(base: str, override: str, key: str, expected: Any) -> None:
    assert merged_service(base, override).get(key) == expected


def test_reset_in_a_file_with_nothing_to_reset_drops_the_key() -> None:
    first = load("services:\n  s:\n    image: a\n    ports: !reset []\n", "a.yaml")
    assert to_plain(merge_trees(YMap(), first)) == {"services": {"s": {"image": "a"}}}


def test_top_level_rules() -> None:
    a = load(
        """
        name: one
        services: {a: {image: x}}
        networks:
          n: {labels: [a=1], ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.0.1}]}}
        volumes: {v: {driver: local}}
        x-ext: [1]
        """,
        "a.yaml",
    )
    b = load(
        """
        name: two
        services: {b: {image: y}}
        networks:
          n:
            labels: [b=2]
            ipam: {config: [{subnet: 10.0.0.0/24, ip_range: 10.0.0.0/28}, {subnet: 10.1.0.0/24}]}
        volumes: {v: null, w: {}}
        x-ext: [2]
        """,
        "b.yaml",
    )
    assert to_plain(merge_trees(a, b)) == {
        "name": "two",
        "services": {"a": {"image": "x"}, "b": {"image": "y"}},
        "networks": {
            "n": {
                "labels": {"a": "1", "b": "2"},
                "ipam": {
                    "config": [
                        {"subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "ip_range": "10.0.0.0/28"},
                        {"subnet": "10.1.0.0/24"},
                    ]
                },
            }
        },
        "volumes": {"v": {"driver": "local"}, "w": {}},
        "x-ext": [1, 2],
    }


def test_positions_come_from_the_file_that_supplied_the_value() -> None:
    a = load("services:\n  s:\n    image: a\n    ports: ['80:80']\n    user: me\n", "a.yaml")
    b = load("services:\n  s:\n    image: b\n    ports: ['81:81']\n", "b.yaml")
    s = merge_trees(a, b)["services"]["s"]
    assert s.loc_of("image") == Location("b.yaml", 3, 12)
    assert s.loc_of("user") == Location("a.yaml", 5, 11)
    assert s["ports"].loc_of(0) == Location("a.yaml", 4, 13)
    assert s["ports"].loc_of(1) == Location("b.yaml", 4, 13)
    assert s["ports"][1].loc_of("target") == Location("b.yaml", 4, 13)


def test_inputs_are_not_modified_unless_consumed() -> None:
    a = load("services:\n  s:\n    image: a\n    dns: [x]\n", "a.yaml")
    b = load("services:\n  s:\n    image: b\n    dns: [y]\n    ports: !reset []\n", "b.yaml")
    a_before, b_before = to_plain(a), to_plain(b)
    out = merge_trees(a, b)
    assert to_plain(a) == a_before and to_plain(b) == b_before
    assert b["services"]["s"].tags == {"ports": "reset"}
    out["services"]["s"]["dns"].append("z")
    assert to_plain(b) == b_before
    consumed = merge_trees(a, b, consume_base=True)
    assert consumed is a and a["services"]["s"]["dns"] == ["x", "y"]


def test_shape_mismatch_is_a_merge_error_at_the_later_value() -> None:
    a = load("services:\n  s:\n    deploy: {replicas: 1}\n", "a.yaml")
    b = load("services:\n  s:\n    deploy: [1]\n", "b.yaml")
    with pytest.raises(MergeError) as info:
        merge_trees(a, b)
    assert info.value.location == Location("b.yaml", 3, 13)
    assert info.value.path == "services.s.deploy"


def test_merge_service_and_strip_tags() -> None:
    base = load("services:\n  s:\n    command: a\n    dns: [x]\n", "a.yaml")["services"]["s"]
    child = load("services:\n  s:\n    dns: [y]\n    command: !reset\n", "b.yaml")["services"]["s"]
    assert to_plain(merge_service(base, child)) == {"dns": ["x", "y"]}
    assert strip_tags(child).tags == {}


# --- properties -------------------------------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=6))
_names = st.sampled_from(["a", "b", "web", "db", "/data", "80", "tcp"])
_leaf = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["target", "source", "published", "host_ip", "path", "x"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=6,
)
_service_keys = st.sampled_from(
    [
        "image",
        "command",
        "ports",
        "volumes",
        "devices",
        "secrets",
        "configs",
        "env_file",
        "expose",
        "dns",
        "environment",
        "labels",
        "extra_hosts",
        "build",
        "logging",
        "networks",
        "depends_on",
        "healthcheck",
        "ulimits",
        "deploy",
        "profiles",
        "x-foo",
    ]
)
_service = st.dictionaries(_service_keys, _leaf, max_size=6)
_tree = st.fixed_dictionaries(
    {"services": st.dictionaries(_names, _service, max_size=3)},
    optional={"networks": st.dictionaries(_names, st.one_of(st.none(), _leaf), max_size=2)},
)


def _ytree(value: Any, tags: st.DataObject | None = None) -> Any:
    if isinstance(value, dict):
        out = YMap()
        for k, v in value.items():
            out[k] = _ytree(v, tags)
            if tags is not None and tags.draw(st.integers(0, 9)) == 0:
                out.tags[k] = tags.draw(st.sampled_from(["reset", "override"]))
        return out
    if isinstance(value, list):
        return YSeq(_ytree(v, tags) for v in value)
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=_tree, b=_tree, data=st.data())
def test_merge_raises_only_config_errors(a: Any, b: Any, data: st.DataObject) -> None:
    try:
        result = merge_trees(_ytree(a), _ytree(b, data))
    except ConfigError as exc:
        assert exc.problems and exc.problems[0].path.startswith(("services", "networks"))
    else:
        assert isinstance(result, YMap) and not result.tags


@settings(max_examples=200, deadline=None)
@given(x=_tree)
def test_merging_nothing_changes_nothing(x: Any) -> None:
    tree = _ytree(x)
    before = to_plain(deepcopy_tree(tree))
    assert to_plain(merge_trees(tree, YMap())) == before
    assert to_plain(tree) == before


def _positioned(value: Any, data: st.DataObject, line: list[int]) -> Any:
    """``value`` as a tree with a position on everything, tags here and there,
    and now and then a plain dict or list (which stripping turns into YMap/YSeq)."""

    def here() -> Location:
        line[0] += 1
        return Location("f.yaml", line[0], 1)

    plain = data.draw(st.integers(0, 7)) == 0
    if isinstance(value, dict):
        if plain:
            return {k: _positioned(v, data, line) for k, v in value.items()}
        out = YMap(loc=here())
        for k, v in value.items():
            out.key_locs[k] = here()
            out[k] = _positioned(v, data, line)
            out.value_locs[k] = here()
            if data.draw(st.integers(0, 5)) == 0:
                out.tags[k] = data.draw(st.sampled_from(["reset", "override"]))
        return out
    if isinstance(value, list):
        if plain:
            return [_positioned(v, data, line) for v in value]
        seq = YSeq(loc=here())
        for v in value:
            seq.add(_positioned(v, data, line), here() if data.draw(st.booleans()) else None)
        return seq
    return value


def _snapshot(value: Any) -> Any:
    """Content, container types, tags and every position, for exact comparison."""
    if isinstance(value, YMap):
        return (
            "YMap",
            value.loc,
            [(k, _snapshot(v)) for k, v in value.items()],
            {k: value.key_locs.get(k) for k in value},
            {k: value.value_locs.get(k) for k in value},
            dict(value.tags),
        )
    if isinstance(value, YSeq):
        return ("YSeq", value.loc, [_snapshot(v) for v in value], list(value.item_locs))
    if isinstance(value, dict | list):
        return (type(value).__name__, repr(value))
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=_tree, data=st.data())
def test_consuming_the_first_file_gives_what_copying_gives(x: Any, data: st.DataObject) -> None:
    tree = _positioned(x, data, [0])
    if not isinstance(tree, YMap):
        tree = YMap(tree)
    copied = merge_trees(YMap(), deepcopy_tree(tree), consume_base=True)
    consumed = merge_trees(YMap(), tree, consume_base=True, consume_override=True)
    assert _snapshot(consumed) == _snapshot(copied)
    assert _snapshot(strip_tags_in_place(deepcopy_tree(tree))) == _snapshot(strip_tags(tree))


def test_consumed_first_file_loses_reset_keys_and_tags_in_place() -> None:
    tree = load(
        """\
        services:
          s:
            image: a
            command: !reset
            dns: !override [x]
        """,
        "a.yaml",
    )
    service = tree["services"]["s"]
    out = merge_trees(YMap(), tree, consume_base=True, consume_override=True)
    assert out is tree and out["services"]["s"] is service
    assert to_plain(out) == {"services": {"s": {"image": "a", "dns": ["x"]}}}
    assert service.tags == {} and "command" not in service.key_locs
