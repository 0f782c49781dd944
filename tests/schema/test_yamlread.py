"""The YAML reader: yaml.v3 scalar rules, positions, aliases, merge keys, tags, errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import ConfigError, Location
from composer.schema.tree import OVERRIDE, RESET, YMap, YSeq, to_plain
from composer.schema.yamlread import parse_yaml


def value_of(scalar: str) -> Any:
    return parse_yaml(f"v: {scalar}\n", "t.yaml")["v"]


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("tRUE", "tRUE"),
        ("null", None),
        ("Null", None),
        ("NULL", None),
        ("~", None),
        ("", None),
        ("nULL", "nULL"),
        ("42", 42),
        ("-42", -42),
        ("+12", 12),
        ("0", 0),
        ("0x1F", 31),
        ("0X1f", 31),
        ("0o17", 15),
        ("0b101", 5),
        ("0755", 493),  # yaml.v3 keeps the YAML 1.1 octal
        ("-0755", -493),
        ("08", 8.0),  # not octal: Go's float parser takes it
        ("1_000", 1000),
        ("9223372036854775808", 9223372036854775808),
        ("99999999999999999999", 1e20),
        ("1.5", 1.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("+.5", 0.5),
        ("1e3", 1000.0),
        ("-1.5E-2", -0.015),
        ("1e999", "1e999"),  # out of range stays text
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        ("+.INF", math.inf),
        ("inf", "inf"),
        ("0x", "0x"),
        ("1:30", "1:30"),  # no sexagesimal numbers
        ("80:80", "80:80"),
        ("2001-12-14", "2001-12-14"),  # timestamps stay text
        ("1.2.3", "1.2.3"),
        ("'42'", "42"),
        ('"true"', "true"),
        ("''", ""),
        ("!!str 42", "42"),
        ("!!int '42'", 42),
        ("!!float 1", 1.0),
        ("!!bool 'true'", True),
        ("!!null ''", None),
        ("|\n  a\n  b\n", "a\nb\n"),
        (">-\n  a\n  b\n", "a b"),
        ("hello world", "hello world"),
    ],
)
def test_scalar_resolution(scalar: str, expected: Any) -> None:
    got = value_of(scalar)
    assert got == expected
    assert type(got) is type(expected)


def test_nan() -> None:
    assert math.isnan(value_of(".nan"))
    assert math.isnan(value_of(".NaN"))


def test_positions() -> None:
    tree = parse_yaml(
        "services:\n  web:\n    image: nginx\n    ports:\n      - '80:80'\n      - 443\n",
        "c.yaml",
    )
    assert isinstance(tree, YMap)
    web = tree["services"]["web"]
    assert tree.loc == Location("c.yaml", 1, 1)
    assert tree.key_locs["services"] == Location("c.yaml", 1, 1)
    assert tree.value_locs["services"] == Location("c.yaml", 2, 3)
    assert web.key_locs["image"] == Location("c.yaml", 3, 5)
    assert web.value_locs["image"] == Location("c.yaml", 3, 12)
    ports = web["ports"]
    assert isinstance(ports, YSeq)
    assert ports == ["80:80", 443]
    assert ports.loc == Location("c.yaml", 5, 7)
    assert ports.item_locs == [Location("c.yaml", 5, 9), Location("c.yaml", 6, 9)]


def test_flow_collections_and_keys_become_strings() -> None:
    tree = parse_yaml("a: {1: x, true: y, null: z, 1.5: w}\nb: [1, [2, {c: 3}]]\n", "c.yaml")
    assert to_plain(tree) == {
        "a": {"1": "x", "true": "y", "null": "z", "1.5": "w"},
        "b": [1, [2, {"c": 3}]],
    }
    assert tree["b"].item_locs[1] == Location("c.yaml", 2, 8)


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_document_is_an_empty_mapping(text: str) -> None:
    tree = parse_yaml(text, "e.yaml")
    assert tree == {} or tree is None
    if text != "---\n":
        assert isinstance(tree, YMap)
        assert tree.loc == Location("e.yaml", 1, 1)


def test_aliases_are_independent_copies() -> None:
    tree = parse_yaml(
        "x-env: &env\n  A: '1'\n  L: [a]\nservices:\n  a:\n    environment: *env\n"
        "  b:\n    environment: *env\n",
        "c.yaml",
    )
    a = tree["services"]["a"]["environment"]
    b = tree["services"]["b"]["environment"]
    assert a == b == {"A": "1", "L": ["a"]}
    a["L"].append("b")
    a["A"] = "2"
    assert b == {"A": "1", "L": ["a"]}
    assert tree["x-env"] == {"A": "1", "L": ["a"]}
    # the copy points at the anchor's text (the composer keeps no alias positions)
    assert a.value_locs["A"] == Location("c.yaml", 2, 6)
    assert tree["services"]["a"].key_locs["environment"] == Location("c.yaml", 6, 5)
    assert tree["services"]["a"].value_locs["environment"] == Location("c.yaml", 1, 8)


def test_merge_keys() -> None:
    tree = parse_yaml(
        "x-a: &a {image: a, user: ua, tty: true}\n"
        "x-b: &b {image: b, user: ub, init: true}\n"
        "one:\n  image: mine\n  <<: *a\n"
        "two:\n  <<: [*b, *a]\n  tty: false\n"
        "three:\n  <<: {inline: 1}\n",
        "c.yaml",
    )
    assert tree["one"] == {"image": "mine", "user": "ua", "tty": True}
    assert tree["two"] == {"image": "b", "user": "ub", "init": True, "tty": False}
    assert tree["three"] == {"inline": 1}
    assert tree["one"].value_locs["user"] == Location("c.yaml", 1, 26)
    assert tree["two"].key_locs["tty"] == Location("c.yaml", 8, 3)
    tree["one"]["x"] = 1
    assert "x" not in tree["x-a"]


def test_compose_tags_are_recorded() -> None:
    tree = parse_yaml(
        "services:\n  web:\n    ports: !reset []\n    command: !override ['a', 'b']\n"
        "    image: !reset null\n    cpus: !override 1.5\n    env: !override '1'\n"
        "    list: [a, !reset b, !override c]\n",
        "c.yaml",
    )
    web = tree["services"]["web"]
    assert web.tags == {
        "ports": RESET,
        "command": OVERRIDE,
        "image": RESET,
        "cpus": OVERRIDE,
        "env": OVERRIDE,
    }
    assert web["ports"] == []
    assert web["command"] == ["a", "b"]
    assert web["image"] is None
    assert web["cpus"] == 1.5
    assert web["env"] == "1"
    assert web["list"] == ["a", "c"]  # a reset item is dropped, as in Docker Compose


def test_tags_travel_with_anchors() -> None:
    tree = parse_yaml("a: &x !reset []\nb: *x\n", "c.yaml")
    assert tree.tags == {"a": RESET, "b": RESET}


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        (
            "services:\n  web:\n    image: a\n    build: .\n    image: b\n",
            "c.yaml:5:5: services.web.image: duplicate key 'image' (first defined at line 3)",
        ),
        ("a: 1\n'a': 2\n", "c.yaml:2:1: a: duplicate key 'a' (first defined at line 1)"),
        (
            "a: [1\n",
            "c.yaml:2:1: invalid YAML: did not find expected ',' or ']'"
            " (while parsing a flow sequence started at line 1, column 4)",
        ),
        (
            "a: b\n  c: d\n",
            "c.yaml:2:4: invalid YAML: mapping values are not allowed in this context",
        ),
        (
            "a:\n\tb: 1\n",
            "c.yaml:2:1: invalid YAML: found character that cannot start any token"
            " (while scanning for the next token started at line 2, column 1)",
        ),
        ("a: *nope\n", "c.yaml:1:4: invalid YAML: found undefined alias"),
        (
            "a: 1\n---\nb: 2\n",
            "c.yaml:3:1: a compose file must hold a single YAML document, found another one",
        ),
        ("services:\n  web: !foo x\n", "c.yaml:2:8: services.web: unsupported YAML tag !foo"),
        ("a: !!set {x}\n", "c.yaml:1:4: a: unsupported YAML tag !!set"),
        ("a: !!binary aGk=\n", "c.yaml:1:4: a: unsupported YAML tag !!binary"),
        ("a: !!int x\n", "c.yaml:1:4: a: cannot decode 'x' as a !!int"),
        ("a: !!bool yes\n", "c.yaml:1:4: a: cannot decode 'yes' as a !!bool"),
        ("? [a]\n: 1\n", "c.yaml:1:3: a mapping key must be a string, not a collection"),
        ("a:\n  !foo k: 1\n", "c.yaml:2:3: a: unsupported YAML tag !foo on a key"),
        ("a: &a [*a]\n", "c.yaml:1:4: a[0]: an alias refers to a node that contains it"),
        (
            "s:\n  <<: 1\n",
            "c.yaml:2:7: s: the merge key '<<' needs a mapping or a sequence of mappings",
        ),
        (
            "s:\n  <<: [{a: 1}, 2]\n",
            "c.yaml:2:16: s: the merge key '<<' needs a mapping or a sequence of mappings",
        ),
        (
            "a: \x07\n",
            "c.yaml:1:4: invalid YAML: control characters are not allowed (character U+0007)",
        ),
    ],
)
def test_errors(text: str, rendered: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "c.yaml")
    assert str(info.value) == rendered
    assert info.value.location is not None


def test_unencodable_text() -> None:
    with pytest.raises(ConfigError, match="not valid text"):
        parse_yaml("a: \ud800\n", "c.yaml")


def test_excessive_aliasing_is_refused() -> None:
    lines = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    with pytest.raises(ConfigError, match="excessive aliasing"):
        parse_yaml("\n".join(lines) + "\n", "bomb.yaml")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ConfigError):
        parse_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")


def big_compose(services: int) -> str:
    parts = ["services:\n"]
    for i in range(services):
        parts.append(
            f"  svc{i}:\n"
            f"    image: 'registry.example.com/app{i}:1.{i}'\n"
            f"    command: ['python', '-m', 'app', '--port', '{8000 + i}']\n"
            f"    environment:\n      LOG_LEVEL: info\n      PORT: '{8000 + i}'\n"
            f"    ports: ['{10000 + i}:{8000 + i}']\n"
            f"    depends_on: [svc{max(i - 1, 0)}]\n"
            f"    labels: {{team: core, tier: '{i % 3}'}}\n"
            f"    healthcheck:\n      test: ['CMD', 'curl', '-f', 'http://localhost/']\n"
            f"      interval: 10s\n      retries: 3\n"
        )
    return "".join(parts)


def test_large_file() -> None:
    tree = parse_yaml(big_compose(2000), "big.yaml")
    assert len(tree["services"]) == 2000
    assert tree["services"]["svc1999"]["ports"] == ["11999:9999"]
    assert tree["services"]["svc1999"].loc_of("ports").line == 2000 * 13 - 13 + 8


_YAML_PIECES = st.sampled_from(
    [
        "a", "b", ":", " ", "  ", "\n", "- ", "[", "]", "{", "}", ",", "&x ", "*x", "<<: ",
        "!reset ", "!override ", "!!str ", "!foo ", "'", '"', "#", "---\n", "? ", "|\n", "1",
        "0x1", "true", "~", "\t",
    ]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_YAML_PIECES, max_size=30).map("".join)))
def test_random_text_raises_only_config_errors(text: str) -> None:
    try:
        parse_yaml(text, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.location is not None
