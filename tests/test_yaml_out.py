"""The YAML writer: yaml.v3's layout and quoting, and a lossless round trip."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.yaml_out import dump_yaml, format_float, scalar


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("with space", "with space"),
        ("", '""'),
        ("8080", '"8080"'),
        ("1.5", '"1.5"'),
        ("1e5", '"1e5"'),
        ("0x1F", '"0x1F"'),
        ("true", '"true"'),
        ("yes", '"yes"'),
        ("y", '"y"'),
        ("null", '"null"'),
        ("~", '"~"'),
        ("2001-12-14", '"2001-12-14"'),
        ("1:20", '"1:20"'),
        ("a: b", "'a: b'"),
        ("ends:", "'ends:'"),
        ("a #b", "'a #b'"),
        ("a#b", "a#b"),
        ("*x", "'*x'"),
        ("&x", "'&x'"),
        ("!x", "'!x'"),
        ("-", "'-'"),
        ("- x", "'- x'"),
        ("-x", "-x"),
        ("it's", "it's"),
        ("'q'", "'''q'''"),
        (" lead", "' lead'"),
        ("trail ", "'trail '"),
        ("---", "'---'"),
        ("tab\tin", '"tab\\tin"'),
        ("bell\x07", '"bell\\x07"'),
        ("a,b", "a,b"),
        ("http://x:80/p", "http://x:80/p"),
        ("CMD-SHELL", "CMD-SHELL"),
        ("${X}", "${X}"),
        ("héllo", "héllo"),
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (0.5, "0.5"),
    ],
)
def test_scalar_quoting(value: Any, expected: str) -> None:
    assert scalar(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.0, "2"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1e6, "1.0e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1.0e-05"),
        (-3.25, "-3.25"),
        (0.0, "0"),
        (math.inf, ".inf"),
        (-math.inf, "-.inf"),
        (math.nan, ".nan"),
    ],
)
def test_float_format(value: float, expected: str) -> None:
    assert format_float(value) == expected


def test_layout_matches_yaml_v3() -> None:
    data = {
        "name": "demo",
        "services": {
            "web": {
                "command": ["nginx", "-g", "daemon off;"],
                "environment": {"A": None, "B": "8080"},
                "ports": [{"mode": "ingress", "target": 80, "published": "8080"}],
                "nested": [[1, 2], []],
                "script": "line1\nline2\n",
                "strip": "a\nb",
                "empty": {},
            }
        },
    }
    assert dump_yaml(data) == (
        "name: demo\n"
        "services:\n"
        "  web:\n"
        "    command:\n"
        "      - nginx\n"
        "      - -g\n"
        "      - daemon off;\n"
        "    environment:\n"
        "      A: null\n"
        '      B: "8080"\n'
        "    ports:\n"
        "      - mode: ingress\n"
        "        target: 80\n"
        '        published: "8080"\n'
        "    nested:\n"
        "      - - 1\n"
        "        - 2\n"
        "      - []\n"
        "    script: |\n"
        "      line1\n"
        "      line2\n"
        "    strip: |-\n"
        "      a\n"
        "      b\n"
        "    empty: {}\n"
    )


def test_literal_keeps_blank_lines_and_falls_back_when_unsafe() -> None:
    assert dump_yaml({"s": "a\n\nb\n"}) == "s: |\n  a\n\n  b\n"
    assert dump_yaml({"s": "a\n\n"}) == "s: |+\n  a\n\n"
    assert dump_yaml({"s": " lead\nx"}) == 's: " lead\\nx"\n'
    assert dump_yaml({"s": "trail \nx"}) == 's: "trail \\nx"\n'


def test_mapping_order_is_kept() -> None:
    assert dump_yaml({"b": 1, "a": 2}) == "b: 1\na: 2\n"


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=True)
    | st.text(st.characters(codec="utf-8"), max_size=20)
)
_keys = st.text(st.characters(codec="utf-8"), max_size=12)
_trees = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


def _normal(value: Any) -> Any:
    """What a YAML reader can give back: -0.0 reads as 0 (an int), as with Go."""
    if isinstance(value, float) and value == 0:
        return 0
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, _trees, max_size=5))
def test_round_trip_through_a_yaml_reader(data: dict[str, Any]) -> None:
    text = dump_yaml(data)
    loaded = yaml.safe_load(text)
    assert _normal(loaded if loaded is not None else {}) == _normal(data), text
