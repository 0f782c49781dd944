"""The Dockerfile parser and word expansion, table-driven."""

from __future__ import annotations

import pytest

from composer.backends.native.build.dockerfile import (
    DockerfileError,
    arg_defs,
    command,
    key_values,
    parse,
    single,
    words,
)
from composer.backends.native.build.words import WordError, expand, expand_words

ENV = {"a": "1", "empty": "", "name": "web"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$a", "1"),
        ("${a}", "1"),
        ("x${a}y", "x1y"),
        ("${missing:-dflt}", "dflt"),
        ("${empty:-dflt}", "dflt"),
        ("${empty-dflt}", ""),
        ("${a:+set}", "set"),
        ("${empty:+set}", ""),
        ("${empty+set}", "set"),
        ("${missing+set}", ""),
        ("${missing:-${a}}", "1"),
        ("'$a'", "$a"),
        ('"$a b"', "1 b"),
        ("\\$a", "$a"),
        ('"\\"q\\""', '"q"'),
        ("$", "$"),
        ("$missing", ""),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, ENV) == expected


def test_expand_words_splits_on_unquoted_blanks_only() -> None:
    assert expand_words("a \"b c\" 'd e' ${name}", ENV) == ["a", "b c", "d e", "web"]
    assert expand_words("`$a", ENV, escape="`") == ["$a"]


@pytest.mark.parametrize("bad", ["'open", '"open', "${a", "${:-x}"])
def test_bad_words(bad: str) -> None:
    with pytest.raises(WordError):
        expand(bad, ENV)


def test_required_variable_message() -> None:
    with pytest.raises(WordError, match="need it"):
        expand("${missing:?need it}", ENV)


def test_stages_args_flags_and_lines() -> None:
    df = parse(
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=bb:latest\n"
        "FROM ${BASE} AS Build\n"
        "RUN --mount=type=cache,target=/c --network=none echo \\\n"
        "    hello \\\n"
        "# a comment inside a continuation\n"
        "    world\n"
        "\n"
        "from scratch\n"
        'COPY --from=build --chown=1:2 ["/a b", "/dst/"]\n'
        'CMD ["sh", "-c", "echo hi"]\n'
        "ENTRYPOINT echo not json [\n",
        "Dockerfile.dev",
    )
    assert df.directives == {"syntax": "docker/dockerfile:1"}
    [arg] = df.global_args
    assert arg_defs(df, arg, {}) == [("BASE", "bb:latest")]
    build, final = df.stages
    assert (build.name, build.base, build.line) == ("build", "${BASE}", 3)
    [run] = build.instructions
    assert run.line == 4
    assert run.flags == {"mount": "type=cache,target=/c", "network": "none"}
    assert command(run, ("/bin/sh", "-c")) == ("/bin/sh", "-c", "echo     hello     world")
    assert (final.base, final.name, final.index) == ("scratch", None, 1)
    copy, cmd, entry = final.instructions
    assert copy.flags == {"from": "build", "chown": "1:2"}
    assert copy.exec_form == ("/a b", "/dst/")
    assert command(cmd, ("/bin/sh", "-c")) == ("sh", "-c", "echo hi")
    assert entry.exec_form is None  # not valid JSON: shell form, as Docker does
    assert df.stage("build") is build
    assert df.stage(None) is final
    assert df.stage("1") is final


def test_escape_directive_backtick() -> None:
    df = parse("# escape=`\nFROM bb\nRUN echo a `\n  b\nWORKDIR C:\\dir\n")
    run, workdir = df.stages[0].instructions
    assert run.args == "echo a   b"
    assert single(df, workdir, {}) == "C:\\dir"


def test_env_and_label_pairs() -> None:
    df = parse('FROM bb\nENV A=1 B="two words" C=${A}x\nENV LEGACY the whole value\nLABEL "k"=v\n')
    env, legacy, label = df.stages[0].instructions
    assert key_values(df, env, {"A": "1"}) == [("A", "1"), ("B", "two words"), ("C", "1x")]
    assert key_values(df, legacy, {}) == [("LEGACY", "the whole value")]
    assert key_values(df, label, {}) == [("k", "v")]


def test_heredocs() -> None:
    df = parse(
        "FROM bb\n"
        "RUN <<EOF\n"
        "echo one\n"
        "echo two\n"
        "EOF\n"
        'COPY <<a <<"b" /dst/\n'
        "first $X\n"
        "a\n"
        "second $X\n"
        "b\n"
        "RUN <<-EOT cat > /x\n"
        "\tindented\n"
        "\tEOT\n"
        "USER app\n"
    )
    run, copy, run2, user = df.stages[0].instructions
    assert command(run, ("/bin/sh", "-c")) == ("/bin/sh", "-c", "echo one\necho two\n")
    assert [(h.name, h.content, h.expand) for h in copy.heredocs] == [
        ("a", "first $X\n", True),
        ("b", "second $X\n", False),
    ]
    assert copy.args == '<<a <<"b" /dst/'
    assert command(run2, ("sh", "-c"))[2] == "<<-EOT cat > /x\nindented\nEOT\n"
    assert (user.keyword, user.line) == ("USER", 14)


def test_onbuild_and_words() -> None:
    df = parse('FROM bb\nONBUILD RUN echo hi\nEXPOSE 80/tcp ${P}\nVOLUME ["/data", "/$V"]\n')
    onbuild, expose, volume = df.stages[0].instructions
    assert onbuild.sub is not None and onbuild.sub.keyword == "RUN"
    assert words(df, expose, {"P": "443"}) == ["80/tcp", "443"]
    assert words(df, volume, {"V": "logs"}) == ["/data", "/logs"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM bb\nFROBNICATE x\n", 2, "unknown instruction: FROBNICATE"),
        ("RUN echo\n", 1, "RUN before the first FROM"),
        ("# just a comment\n", 1, "no FROM"),
        ("FROM bb\nRUN <<EOF\necho\n", 2, "unterminated heredoc <<EOF"),
        ("FROM a AS x\nFROM b AS x\n", 2, "duplicate stage name"),
        ("FROM a b c d\n", 1, "FROM takes an image"),
        ("FROM bb\nCOPY --Bad=1 x /y\n", 2, "malformed flag"),
        ("FROM bb\nCOPY --bogus x /y\n", 2, "unknown flag --bogus"),
        ("FROM bb\nWORKDIR\n", 2, "WORKDIR requires at least one argument"),
        ("FROM bb\nONBUILD FROM x\n", 2, "not allowed in ONBUILD"),
    ],
)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(DockerfileError, match=message) as info:
        parse(text, "app/Dockerfile")
    assert info.value.line == line
    assert str(info.value).startswith(f"app/Dockerfile:{line}:1: ")
    assert info.value.exit_code == 2


def test_unknown_target_lists_stages() -> None:
    df = parse("FROM a AS one\nFROM b AS two\n")
    with pytest.raises(DockerfileError) as info:
        df.stage("three")
    assert info.value.hint == "stages: one, two"
