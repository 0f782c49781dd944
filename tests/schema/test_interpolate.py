"""Interpolation: the compose-go template rules, tree walking and variable listing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import ConfigError, InterpolationError, Location
from composer.schema.interpolate import (
    Substitution,
    VariableUse,
    interpolate_tree,
    substitute,
    variables_in_tree,
)
from composer.schema.tree import YMap, YSeq
from composer.schema.yamlread import parse_yaml

ENV = {"FOO": "first", "BAR": "", "JSON": '{"json":2}'}
NOTHING: dict[str, str] = {}


def lookup(name: str) -> str | None:
    return ENV.get(name)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("foo", "foo"),
        ("$${foo}", "${foo}"),
        ("$$FOO", "$FOO"),
        ("a $ string", "a $ string"),
        ("^REGEX$", "^REGEX$"),
        ("$}", "$}"),
        ("$", "$"),
        ("$1", "$1"),
        ("$FOO-bar", "first-bar"),
        ("This ${missing} var", "This  var"),
        ("This ${BAR} var", "This  var"),
        ("This $FOO var", "This first var"),
        ("This ${FOO} var", "This first var"),
        ("$FOO$FOO", "firstfirst"),
        ("${FOO}${FOO}", "firstfirst"),
        ("ok ${missing:-def}", "ok def"),
        ("ok ${missing-def}", "ok def"),
        ("ok ${BAR:-def}", "ok def"),
        ("ok ${FOO:-def}", "ok first"),
        ("ok ${BAR-def}", "ok "),
        ("ok ${missing:-}", "ok "),
        ("ok ${UNSET:+presence}", "ok "),
        ("ok ${UNSET+presence}", "ok "),
        ("ok ${FOO:+presence}", "ok presence"),
        ("ok ${FOO+presence}", "ok presence"),
        ("ok ${BAR+presence}", "ok presence"),
        ("ok ${BAR:+presence}", "ok "),
        ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
        ("-ok ${BAR:-defaultValue}", "-ok defaultValue"),
        ("+ok ${UNSET:-${BAR-defaultValue}}", "+ok "),
        (":?ok ${BAR:-defaultValue}", ":?ok defaultValue"),
        ("ok ${UNSET_VAR-$FOO}", "ok first"),
        ("ok ${UNSET_VAR-${FOO}}", "ok first"),
        ("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"),
        ("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
        ("ok ${BAR+$FOO ${FOO:+second}}", "ok first second"),
        ("${A:-${B:-x}}", "x"),
        ("${A:-${FOO:-x}}", "first"),
        ("ok ${FOO:?err}", "ok first"),
        ("ok ${FOO?err}", "ok first"),
        ("ok ${BAR?err}", "ok "),
        ("${UNSET_VAR-myerror?msg}", "myerror?msg"),
        ("ok ${SUBDOMAIN:-redis}.${FOO:?}", "ok redis.first"),
        ("${A:-x} and ${FOO}", "x and first"),
        ("${A:-x}}", "x}"),
        ('ok ${missing:-{"json":1}}', 'ok {"json":1}'),
        ('ok ${missing-{"json":1}}', 'ok {"json":1}'),
        ('ok ${JSON:-{"json":1}}', 'ok {"json":2}'),
        ("${A:-$$}", "$"),
        ("${A:-a\n}${FOO}", None),  # a default cannot run past the end of its line
        ("${A:-x}\n${B:-y}", "x\ny"),
        ("${Foo_9:-lower}", "lower"),
    ],
)
def test_substitute(template: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(InterpolationError, match="invalid interpolation format"):
            substitute(template, lookup)
    else:
        assert substitute(template, lookup).value == expected


@pytest.mark.parametrize(
    "template",
    ["${", "${}", "${ }", "${ foo}", "${foo }", "${foo!}", "${A:x}", "${1}", "x ${A:-y", "${A-"],
)
def test_invalid_templates(template: str) -> None:
    with pytest.raises(InterpolationError) as info:
        substitute(template, lookup)
    assert info.value.message.startswith("invalid interpolation format")
    assert info.value.hint == "You may need to escape any $ with another $."


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable Unset",
        ),
        (
            "not ok ${BAR:?Mandatory Variable Empty}",
            "required variable BAR is missing a value: Mandatory Variable Empty",
        ),
        ("not ok ${UNSET_VAR:?}", "required variable UNSET_VAR is missing a value"),
        ("not ok ${UNSET_VAR?}", "required variable UNSET_VAR is missing a value"),
        ("${UNSET_VAR?bar-baz}", "required variable UNSET_VAR is missing a value: bar-baz"),
        (
            "not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable first",
        ),
    ],
)
def test_required_variables(template: str, message: str) -> None:
    with pytest.raises(InterpolationError) as info:
        substitute(template, lookup)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("template", "unset"),
    [
        ("$A ${B} ${FOO}", ("A", "B")),
        ("${A:-${B}}", ("B",)),  # the default is used, so B is
        ("${A:+${B},}x", ()),  # the alternative is not used: no warning
        ("${FOO?${B}}", ()),  # the message is not used either
        ("${A-}", ()),
        ("$A$A", ("A", "A")),
    ],
)
def test_unset_variables_are_reported(template: str, unset: tuple[str, ...]) -> None:
    assert substitute(template, lookup).unset == unset


def test_substitution_result_type() -> None:
    assert substitute("${X}", lookup) == Substitution("", ("X",))


def test_interpolate_tree_keeps_positions_and_tags() -> None:
    tree = parse_yaml(
        "services:\n"
        "  web:\n"
        "    image: ${IMAGE:-nginx}:$TAG\n"
        "    ports: !reset ['${PORT}:80']\n"
        "    environment:\n"
        "      $KEY: ${VALUE}\n"
        "    replicas: 3\n",
        "c.yaml",
    )
    seen: list[tuple[str, Location | None]] = []
    env = {"PORT": "8080", "VALUE": "v"}
    result = interpolate_tree(tree, env.get, on_unset=lambda n, loc: seen.append((n, loc)))
    web = result["services"]["web"]
    assert web["image"] == "nginx:"
    assert web["ports"] == ["8080:80"]
    assert isinstance(web["ports"], YSeq)
    assert web["ports"].item_locs == [Location("c.yaml", 4, 20)]
    assert web.tags == {"ports": "reset"}
    assert web.value_locs["image"] == Location("c.yaml", 3, 12)
    assert web["environment"] == {"$KEY": "v"}  # keys are never interpolated
    assert web["replicas"] == 3
    assert seen == [("TAG", Location("c.yaml", 3, 12))]


def test_interpolate_tree_collects_all_problems_in_document_order() -> None:
    tree = parse_yaml(
        "services:\n"
        "  web:\n"
        "    image: ${IMAGE:?set IMAGE}\n"
        "    command: ['${A:x}']\n"
        "  db:\n"
        "    image: ${DB?}\n",
        "c.yaml",
    )
    with pytest.raises(InterpolationError) as info:
        interpolate_tree(tree, NOTHING.get)
    rendered = [p.render() for p in info.value.problems]
    assert rendered == [
        "c.yaml:3:12: services.web.image: required variable IMAGE is missing a value: set IMAGE",
        "c.yaml:4:15: services.web.command[0]: invalid interpolation format: '${A:x}'",
        "c.yaml:6:12: services.db.image: required variable DB is missing a value",
    ]
    assert info.value.problems[1].hint == "You may need to escape any $ with another $."
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == 2


def test_interpolate_tree_single_problem_message() -> None:
    tree = YMap({"name": "${N:?no name}"})
    with pytest.raises(InterpolationError) as info:
        interpolate_tree(tree, NOTHING.get, path=("x",))
    assert str(info.value) == "x.name: required variable N is missing a value: no name"


def test_interpolate_tree_plain_containers_and_scalars() -> None:
    tree = {"a": ["$X", {"b": "${X}-${Y:-y}"}], "n": 1, "t": True, "z": None}
    assert interpolate_tree(tree, {"X": "x"}.get) == {
        "a": ["x", {"b": "x-y"}],
        "n": 1,
        "t": True,
        "z": None,
    }
    assert interpolate_tree("${X}", {"X": "1"}.get) == "1"


def test_variables_in_tree() -> None:
    tree = parse_yaml(
        "services:\n"
        "  web:\n"
        "    image: ${IMAGE:-nginx}:$TAG\n"
        "    user: ${U:?who}\n"
        "    labels: ['${L+${M-m}}', '$$NOT', '${bad']\n",
        "c.yaml",
    )
    uses = variables_in_tree(tree)
    assert [(u.name, u.default, u.required, u.message, u.alternative) for u in uses] == [
        ("IMAGE", "nginx", False, None, None),
        ("TAG", None, False, None, None),
        ("U", None, True, "who", None),
        ("L", None, False, None, "${M-m}"),
        ("M", "m", False, None, None),
    ]
    assert uses[0].path == ("services", "web", "image")
    assert uses[0].location == Location("c.yaml", 3, 12)
    assert uses[3] == VariableUse(
        "L",
        None,
        False,
        None,
        ("services", "web", "labels", 0),
        "${M-m}",
        Location("c.yaml", 5, 14),
    )


def test_variables_after_an_expression_in_the_same_word() -> None:
    names = [u.name for u in variables_in_tree(["${A:-x} ${B}", "${C:-${D}}"])]
    assert names == ["A", "B", "C", "D"]


_TEMPLATE_PIECES = st.sampled_from(
    ["$", "{", "}", ":", "-", "+", "?", "A", "FOO", "BAR", "_", "1", " ", "\n", "$$", "${", "x"]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_TEMPLATE_PIECES, max_size=20).map("".join)))
def test_random_templates_raise_only_config_errors(template: str) -> None:
    try:
        result = substitute(template, {"FOO": "f", "BAR": ""}.get)
    except ConfigError:
        return
    assert isinstance(result.value, str)
    if "$" not in template:
        assert result.value == template
    variables_in_tree([template])
