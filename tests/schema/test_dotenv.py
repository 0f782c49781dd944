""".env and raw env_file parsing, matched against compose-go's dotenv behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import ConfigError, InterpolationError, Location
from composer.schema.dotenv import parse_dotenv, parse_raw_env

FIXTURES = Path(__file__).parent / "fixtures" / "dotenv"
NOTHING: dict[str, str] = {}


def parse(text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    return parse_dotenv(text, ".env", (env or {}).get)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FOO=bar", {"FOO": "bar"}),
        ("FOO =bar", {"FOO": "bar"}),
        ("FOO= bar", {"FOO": "bar"}),
        ('FOO="bar"', {"FOO": "bar"}),
        ("FOO='bar'", {"FOO": "bar"}),
        ('FOO="escaped\\"bar"', {"FOO": 'escaped"bar'}),
        ('FOO="\\"quoted\\""', {"FOO": '"quoted"'}),
        ("FOO=\"'d'\"", {"FOO": "'d'"}),
        ("OPTION_A: 1", {"OPTION_A": "1"}),
        ("OPTION_A: Foo=bar", {"OPTION_A": "Foo=bar"}),
        ("OPTION_A=1:B", {"OPTION_A": "1:B"}),
        ("export OPTION_A=2", {"OPTION_A": "2"}),
        ("export OPTION_B='\\n'", {"OPTION_B": "\\n"}),
        ("export exportFoo=2", {"exportFoo": "2"}),
        ("exportFOO=2", {"exportFOO": "2"}),
        ("export.FOO= 2", {"export.FOO": "2"}),
        ("export\tOPTION_A=2", {"OPTION_A": "2"}),
        ("  export OPTION_A=2", {"OPTION_A": "2"}),
        ('export OPTION_A="export A"', {"OPTION_A": "export A"}),
        ('FOO="bar\\nbaz"', {"FOO": "bar\nbaz"}),
        ("FOO=a\\tb", {"FOO": "a\\tb"}),
        ('FOO="a\\tb"', {"FOO": "a\tb"}),
        (
            'KEY="Z\\aZ\\bZ\\fZ\\nZ\\rZ\\tZ\\vZ\\\\Z\\0123Z"',
            {"KEY": "Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\ZSZ"},
        ),
        ('KEY="\\0123"', {"KEY": "S"}),
        ('KEY="\\01"', {"KEY": "\\01"}),
        ('KEY="\\x07"', {"KEY": "\\x07"}),
        ('KEY="\\u12e4"', {"KEY": "\\u12e4"}),
        ("FOO.BAR=foobar", {"FOO.BAR": "foobar"}),
        ("FOO=foobar=", {"FOO": "foobar="}),
        ("FOO=bar ", {"FOO": "bar"}),
        ("FOO=bar # this is foo", {"FOO": "bar"}),
        ("FOO=bar #", {"FOO": "bar"}),
        ("FOO=123#not-an-inline-comment", {"FOO": "123#not-an-inline-comment"}),
        ("FOO= #bar", {"FOO": "#bar"}),
        ('FOO="bar#baz" # comment', {"FOO": "bar#baz"}),
        ('FOO="bar#baz"#', {"FOO": "bar#baz"}),
        ("FOO='bar#baz' # comment", {"FOO": "bar#baz"}),
        ('FOO="bar\\n\\ b\\az"', {"FOO": "bar\n\\ b\az"}),
        ('FOO="bar\\\\\\n\\ b\\az"', {"FOO": "bar\\\n\\ b\az"}),
        ('="value"', {"": "value"}),
        (" KEY =value", {"KEY": "value"}),
        ("\tKEY=value", {"KEY": "value"}),
        ("a[1]=c\nvar-with.dots_and-dashes=d", {"a[1]": "c", "var-with.dots_and-dashes": "d"}),
        ("árvíztűrő-TÜKÖRFÚRÓGÉP=ÁRVÍZTŰRŐ", {"árvíztűrő-TÜKÖRFÚRÓGÉP": "ÁRVÍZTŰRŐ"}),
        ("\n\r\n\t\t \n# Comment\n\t # comment\nA=1\n", {"A": "1"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
        ("\ufeffA=1", {"A": "1"}),
        ("A='first line\nsecond line'", {"A": "first line\nsecond line"}),
        ("OPTION_I = \"echo 'asd'\" # Inline comment", {"OPTION_I": "echo 'asd'"}),
        ("OPTION_K='Let\\'s go!'", {"OPTION_K": "Let's go!"}),
        ("A=", {"A": ""}),
        ("A=''\nB=\"\"", {"A": "", "B": ""}),
        ('A="x"y\nB=1', {"A": "x", "B": "1"}),  # "y" is a bare key, unknown: left out
    ],
)
def test_parse_dotenv(text: str, expected: dict[str, str]) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("FOO=test\nBAR=$FOO", {}, {"FOO": "test", "BAR": "test"}),
        ("FOO=test\nBAR=${FOO}bar", {}, {"FOO": "test", "BAR": "testbar"}),
        ("BAR=$FOO", {}, {"BAR": ""}),
        ('FOO=test\nBAR="quote $FOO"', {}, {"FOO": "test", "BAR": "quote test"}),
        ("BAR='quote $FOO'", {}, {"BAR": "quote $FOO"}),
        ('FOO="foo\\$BAR"', {}, {"FOO": "foo$BAR"}),
        ('FOO="foo\\${BAR}"', {}, {"FOO": "foo${BAR}"}),
        ('FOO=test\nBAR="foo\\${FOO} ${FOO}"', {}, {"FOO": "test", "BAR": "foo${FOO} test"}),
        ("A=$$x", {}, {"A": "$x"}),
        ("A=${U:-dflt}", {}, {"A": "dflt"}),
        ("TEST=$ME", {"ME": "YES"}, {"TEST": "YES"}),
        # the lookup (environment) wins over keys defined earlier in the file
        ("A=1\nB=${A}\nC=$A", {"A": "5"}, {"A": "1", "B": "5", "C": "5"}),
        ("INHERITED", {"INHERITED": "from env"}, {"INHERITED": "from env"}),
        ("INHERITED\n", {"INHERITED": ""}, {"INHERITED": ""}),
        ("foo=bar\nNOT_FOUND\nbar=baz", {}, {"foo": "bar", "bar": "baz"}),
        ("export FOO", {"FOO": "x"}, {"FOO": "x"}),
    ],
)
def test_parse_dotenv_lookup(text: str, env: dict[str, str], expected: dict[str, str]) -> None:
    assert parse(text, env) == expected


def test_unset_variables_are_reported_with_location() -> None:
    seen: list[tuple[str, Location | None]] = []
    parse_dotenv(
        "A=1\nB=x $NOPE", "a.env", NOTHING.get, on_unset=lambda n, loc: seen.append((n, loc))
    )
    assert seen == [("NOPE", Location("a.env", 2, 3))]


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("lol$wut", "a.env:1:4: unexpected character '$' in variable name 'lol$wut'"),
        (
            "A=1\n%!(EXTRA string)=foo",
            "a.env:2:1: unexpected character '%' in variable name '%!(EXTRA string)=foo'",
        ),
        ("A=1\n\n  B C=2", "a.env:3:3: B C: key cannot contain a space"),
        ('KEY="', 'a.env:1:5: KEY: unterminated quoted value "'),
        ('KEY="value', 'a.env:1:5: KEY: unterminated quoted value "value'),
        ('KEY="value\\"', 'a.env:1:5: KEY: unterminated quoted value "value\\"'),
        ("KEY=\"value'", "a.env:1:5: KEY: unterminated quoted value \"value'"),
        ("KEY='", "a.env:1:5: KEY: unterminated quoted value '"),
        ("KEY='value\\'", "a.env:1:5: KEY: unterminated quoted value 'value\\'"),
        ("X=1\nKEY='a\nb", "a.env:2:5: KEY: unterminated quoted value 'a"),
    ],
)
def test_parse_dotenv_errors(text: str, rendered: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dotenv(text, "a.env", NOTHING.get)
    assert str(info.value) == rendered


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("A=${X:?need X}", "a.env:1:3: A: required variable X is missing a value: need X"),
        ('A=1\nB="${X?}"', "a.env:2:3: B: required variable X is missing a value"),
        ("A=${", "a.env:1:3: A: invalid interpolation format: '${'"),
    ],
)
def test_parse_dotenv_interpolation_errors(text: str, rendered: str) -> None:
    with pytest.raises(InterpolationError) as info:
        parse_dotenv(text, "a.env", NOTHING.get)
    assert str(info.value) == rendered


def test_fixture_file() -> None:
    text = (FIXTURES / "mixed.env").read_text(encoding="utf-8")
    assert parse_dotenv(text, "mixed.env", {"FROM_ENV": "e", "OPTION_A": "5"}.get) == {
        "OPTION_A": "1",
        "OPTION_B": "5",
        "OPTION_C": "5_5",
        "QUOTED": "first line\nsecond line",
        "LITERAL": "no $OPTION_A here",
        "FROM_ENV": "e",
        "URL": "postgres://localhost:5432/database?sslmode=disable",
        "DEFAULTED": "fallback",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", {"A": "1"}),
        ('A="quoted" $X # not a comment ', {"A": '"quoted" $X # not a comment '}),
        ("\n  # comment\n\tB=2\r\n", {"B": "2"}),
        ("\ufeffA=1", {"A": "1"}),
        ("A=1=2", {"A": "1=2"}),
        ("A=", {"A": ""}),
        ("KNOWN\nUNKNOWN", {"KNOWN": "k"}),
    ],
)
def test_parse_raw_env(text: str, expected: dict[str, str]) -> None:
    assert parse_raw_env(text, "raw.env", {"KNOWN": "k"}.get) == expected


def test_parse_raw_env_without_lookup_skips_bare_keys() -> None:
    assert parse_raw_env("A\nB=1", "raw.env") == {"B": "1"}


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("=x", "raw.env:1:1: no variable name on line '=x'"),
        ("A=1\n  B C=2", "raw.env:2:3: B C: variable 'B C' contains whitespaces"),
        ("A\t=1", "raw.env:1:1: A\t: variable 'A\\t' contains whitespaces"),
    ],
)
def test_parse_raw_env_errors(text: str, rendered: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_raw_env(text, "raw.env")
    assert str(info.value) == rendered


_ENV_PIECES = st.sampled_from(
    ["A", "B_1", "=", ":", " ", "\t", "\n", "#", "'", '"', "\\", "$", "${", "}", "export ", "x"]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_ENV_PIECES, max_size=25).map("".join)))
def test_random_env_content_raises_only_config_errors(text: str) -> None:
    env = {"A": "a"}
    for raw in (False, True):
        try:
            if raw:
                result = parse_raw_env(text, "r.env", env.get)
            else:
                result = parse_dotenv(text, "r.env", env.get)
        except ConfigError as exc:
            assert exc.location is not None
            continue
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())
