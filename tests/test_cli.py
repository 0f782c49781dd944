"""The CLI shell: flag parsing, option precedence, exit codes and error rendering.

These tests run the command line in-process through ``composer.cli.run`` with
``composer.app.config`` replaced by a recorder, so they exercise parsing and
rendering only; tests/e2e/test_cli_config.py runs the real loader.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from composer import __version__, app
from composer.cli import find_verb, run
from composer.cli_commands import typer_help
from composer.errors import ConfigError, Location, PlanError, Problem
from composer.help_text import TOP_LEVEL_HELP
from composer.options import (
    ConfigMode,
    ConfigOptions,
    GlobalFlags,
    GlobalOptions,
    Invocation,
    build_global_options,
    select_config_mode,
)
from composer.render_output import format_table, render_error


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@dataclass
class Recorder:
    """Stands in for ``app.config``: records its arguments, returns or raises what it is told."""

    result: Any = field(default_factory=lambda: app.LinesResult(("web",)))
    calls: list[tuple[GlobalOptions, Invocation, ConfigOptions]] = field(default_factory=list)
    warnings: tuple[str, ...] = ()

    def __call__(
        self, options: GlobalOptions, invocation: Invocation, config: ConfigOptions, warn: Any
    ) -> Any:
        self.calls.append((options, invocation, config))
        for message in self.warnings:
            warn(message)
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def cli(
    args: list[str], environ: Mapping[str, str] | None = None, cwd: Path = Path("/nowhere")
) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    invocation = Invocation(working_dir=cwd, environ=dict(environ or {}), read_stdin=lambda: "")
    code = run(args, invocation, out, err)
    return Outcome(code, out.getvalue(), err.getvalue())


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(app, "config", rec)
    return rec


# --- verb detection --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "verb"),
    [
        ([], None),
        (["config"], "config"),
        (["-f", "x.yaml", "config", "-q"], "config"),
        (["--file=x.yaml", "config"], "config"),
        (["-p", "demo", "--profile", "dev", "version"], "version"),
        (["--dry-run", "config", "web"], "config"),
        (["--ansi", "never", "--progress", "plain", "config"], "config"),
        (["--help"], None),
        (["--", "config"], None),
    ],
)
def test_find_verb(args: list[str], verb: str | None) -> None:
    assert find_verb(args) == verb


# --- global options --------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "environ", "expected"),
    [
        (GlobalFlags(), {}, GlobalOptions()),
        (
            GlobalFlags(),
            {
                "COMPOSE_PARALLEL_LIMIT": "4",
                "COMPOSE_PROGRESS": "plain",
                "COMPOSE_ANSI": "never",
                "COMPOSER_BACKEND": "docker",
                "COMPOSER_DEBUG": "1",
            },
            GlobalOptions(parallel=4, progress="plain", ansi="never", backend="docker", debug=True),
        ),
        (
            GlobalFlags(parallel=2, progress="json", ansi="always", backend="native"),
            {
                "COMPOSE_PARALLEL_LIMIT": "4",
                "COMPOSE_PROGRESS": "plain",
                "COMPOSE_ANSI": "never",
                "COMPOSER_BACKEND": "docker",
            },
            GlobalOptions(parallel=2, progress="json", ansi="always", backend="native"),
        ),
        (GlobalFlags(), {"COMPOSER_DEBUG": "0"}, GlobalOptions(debug=False)),
        (GlobalFlags(), {"COMPOSER_DEBUG": "true"}, GlobalOptions(debug=True)),
        (
            GlobalFlags(files=("a.yaml", "b.yaml"), project_name="demo", dry_run=True),
            {},
            GlobalOptions(files=("a.yaml", "b.yaml"), project_name="demo", dry_run=True),
        ),
    ],
)
def test_global_options_precedence(
    flags: GlobalFlags, environ: dict[str, str], expected: GlobalOptions
) -> None:
    assert build_global_options(flags, environ) == expected


@pytest.mark.parametrize(
    ("flags", "environ", "needle"),
    [
        (GlobalFlags(progress="fancy"), {}, "--progress: invalid value 'fancy'"),
        (GlobalFlags(), {"COMPOSE_PROGRESS": "fancy"}, "COMPOSE_PROGRESS: invalid value"),
        (GlobalFlags(ansi="sometimes"), {}, "--ansi: invalid value"),
        (GlobalFlags(), {"COMPOSER_BACKEND": "podman"}, "COMPOSER_BACKEND: invalid value"),
        (GlobalFlags(), {"COMPOSE_PARALLEL_LIMIT": "many"}, "COMPOSE_PARALLEL_LIMIT"),
    ],
)
def test_invalid_option_values(flags: GlobalFlags, environ: dict[str, str], needle: str) -> None:
    with pytest.raises(PlanError) as info:
        build_global_options(flags, environ)
    assert needle in info.value.message
    assert info.value.hint


def test_global_flags_reach_the_use_case(recorder: Recorder) -> None:
    result = cli(
        [
            "-f",
            "a.yaml",
            "--file",
            "b.yaml",
            "-p",
            "demo",
            "--profile",
            "dev",
            "--profile",
            "debug",
            "--env-file",
            "one.env",
            "--env-file",
            "two.env",
            "--project-directory",
            "proj",
            "--parallel",
            "3",
            "--progress",
            "plain",
            "--ansi",
            "never",
            "--dry-run",
            "--backend",
            "docker",
            "config",
        ],
        cwd=Path("/work/here"),
    )
    assert result.code == 0, result.err
    options, invocation, _ = recorder.calls[0]
    assert options == GlobalOptions(
        files=("a.yaml", "b.yaml"),
        project_name="demo",
        profiles=("dev", "debug"),
        env_files=("one.env", "two.env"),
        project_directory="proj",
        parallel=3,
        progress="plain",
        ansi="never",
        dry_run=True,
        backend="docker",
    )
    assert invocation.working_dir == Path("/work/here")


def test_environment_reaches_options_without_os_environ(recorder: Recorder) -> None:
    result = cli(["config"], environ={"COMPOSE_PROGRESS": "quiet", "COMPOSER_BACKEND": "docker"})
    assert result.code == 0, result.err
    options, invocation, _ = recorder.calls[0]
    assert (options.progress, options.backend) == ("quiet", "docker")
    assert invocation.environ["COMPOSE_PROGRESS"] == "quiet"


# --- config flags ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ConfigOptions()),
        (["--format", "json"], ConfigOptions(format="json")),
        (["-q"], ConfigOptions(quiet=True)),
        (["--quiet"], ConfigOptions(quiet=True)),
        (
            ["--no-interpolate", "--no-normalize", "--no-path-resolution"],
            ConfigOptions(interpolate=False, normalize=False, resolve_paths=False),
        ),
        (["--services"], ConfigOptions(mode=ConfigMode.SERVICES)),
        (["--volumes"], ConfigOptions(mode=ConfigMode.VOLUMES)),
        (["--networks"], ConfigOptions(mode=ConfigMode.NETWORKS)),
        (["--profiles"], ConfigOptions(mode=ConfigMode.PROFILES)),
        (["--images"], ConfigOptions(mode=ConfigMode.IMAGES)),
        (["--variables"], ConfigOptions(mode=ConfigMode.VARIABLES)),
        (["--environment"], ConfigOptions(mode=ConfigMode.ENVIRONMENT)),
        (["--hash", "*"], ConfigOptions(mode=ConfigMode.HASH, hash="*")),
        (["--hash", "web,db"], ConfigOptions(mode=ConfigMode.HASH, hash="web,db")),
        (["-o", "out.yaml"], ConfigOptions(output="out.yaml")),
        (["web", "db"], ConfigOptions(services=("web", "db"))),
        # Several listing flags: Compose's order decides.
        (["--images", "--services"], ConfigOptions(mode=ConfigMode.SERVICES)),
        (["--environment", "--hash", "*"], ConfigOptions(mode=ConfigMode.HASH, hash="*")),
    ],
)
def test_config_flags(
    recorder: Recorder, args: list[str], expected: ConfigOptions, tmp_path: Path
) -> None:
    result = cli(["config", *args], cwd=tmp_path)
    assert result.code == 0, result.err
    assert recorder.calls[0][2] == expected


def test_select_config_mode_default_is_model() -> None:
    assert select_config_mode() is ConfigMode.MODEL


def test_config_rejects_unknown_format(recorder: Recorder) -> None:
    result = cli(["config", "--format", "xml"])
    assert result.code == 1
    assert "--format: invalid value 'xml'" in result.err
    assert recorder.calls == []


def test_quiet_prints_nothing(recorder: Recorder) -> None:
    recorder.result = app.ModelResult({"name": "x", "services": {}}, interpolated=True)
    result = cli(["config", "-q"])
    assert (result.code, result.out) == (0, "")


def test_model_output_escapes_dollars_only_when_interpolated(recorder: Recorder) -> None:
    model = {"name": "x", "services": {"web": {"command": ["echo", "$HOME"]}}}
    recorder.result = app.ModelResult(model, interpolated=True)
    assert "- echo\n      - $$HOME\n" in cli(["config"]).out
    recorder.result = app.ModelResult(model, interpolated=False)
    assert "- $HOME\n" in cli(["config"]).out


def test_json_output(recorder: Recorder) -> None:
    recorder.result = app.ModelResult({"name": "x", "services": {"a": {"x": "<&>"}}}, True)
    out = cli(["config", "--format", "json"]).out
    assert out == (
        '{\n  "name": "x",\n  "services": {\n    "a": {\n'
        '      "x": "\\u003c\\u0026\\u003e"\n    }\n  }\n}\n'
    )


def test_output_file(recorder: Recorder, tmp_path: Path) -> None:
    recorder.result = app.LinesResult(("a", "b"))
    result = cli(["config", "--services", "-o", "names.txt"], cwd=tmp_path)
    assert (result.code, result.out) == (0, "")
    assert (tmp_path / "names.txt").read_text() == "a\nb\n"


def test_output_file_error_is_readable(recorder: Recorder, tmp_path: Path) -> None:
    result = cli(["config", "-o", "missing/dir/out.yaml"], cwd=tmp_path)
    assert result.code == 1
    assert result.err.startswith("error: cannot write missing/dir/out.yaml")


def test_variables_table_and_json(recorder: Recorder) -> None:
    recorder.result = app.VariablesResult(
        (
            app.Variable("DB_PASSWORD", True, "", ""),
            app.Variable("TAG", False, "latest", ""),
        )
    )
    table = cli(["config", "--variables"]).out
    assert table.splitlines() == [
        "NAME                REQUIRED            DEFAULT VALUE       ALTERNATE VALUE",
        "DB_PASSWORD         true",
        "TAG                 false               latest",
    ]
    data = cli(["config", "--variables", "--format", "json"]).out
    assert '"TAG": {\n    "Name": "TAG",\n    "DefaultValue": "latest"' in data
    assert '"Required": true' in data


def test_warnings_go_to_stderr(recorder: Recorder) -> None:
    recorder.warnings = ('The "X" variable is not set. Defaulting to a blank string.',)
    result = cli(["--ansi", "never", "config", "--services"])
    assert result.out == "web\n"
    assert result.err == 'warning: The "X" variable is not set. Defaulting to a blank string.\n'


def test_warnings_are_yellow_with_ansi_always(recorder: Recorder) -> None:
    recorder.warnings = ("careful",)
    result = cli(["--ansi", "always", "config"])
    assert result.err == "\x1b[33mwarning:\x1b[0m careful\n"


# --- errors and exit codes -----------------------------------------------------------

CONFIG_ERROR = ConfigError(
    "2 problems in compose.yaml",
    problems=[
        Problem(
            "unknown key 'imgae'",
            Location("compose.yaml", 3, 5),
            "services.web.imgae",
            hint="did you mean 'image'?",
        ),
        Problem("invalid port '99999'", Location("compose.yaml", 6, 9), "services.web.ports[0]"),
    ],
)


def test_config_error_exit_code_and_block(recorder: Recorder) -> None:
    recorder.result = CONFIG_ERROR
    result = cli(["config"])
    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        "compose.yaml:3:5: services.web.imgae: unknown key 'imgae'\n"
        "  hint: did you mean 'image'?\n"
        "compose.yaml:6:9: services.web.ports[0]: invalid port '99999'\n"
    )
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("args", "environ"),
    [(["--debug", "config"], {}), (["config"], {"COMPOSER_DEBUG": "1"})],
)
def test_debug_shows_traceback(
    recorder: Recorder, args: list[str], environ: dict[str, str]
) -> None:
    recorder.result = CONFIG_ERROR
    result = cli(args, environ)
    assert result.code == 2
    assert result.err.startswith("Traceback (most recent call last):")
    assert result.err.endswith("invalid port '99999'\n")


def test_unexpected_exception_is_one_line(recorder: Recorder) -> None:
    recorder.result = RuntimeError("boom\nsecond line")
    result = cli(["config"])
    assert result.code == 1
    assert result.err == (
        "error: unexpected RuntimeError: boom\n"
        "hint: run with --debug (or COMPOSER_DEBUG=1) for details\n"
    )


def test_unexpected_exception_with_debug(recorder: Recorder) -> None:
    recorder.result = RuntimeError("boom")
    result = cli(["--debug", "config"])
    assert result.code == 1
    assert "Traceback" in result.err
    assert "RuntimeError: boom" in result.err


def test_invalid_option_value_reported_before_the_verb_runs(recorder: Recorder) -> None:
    result = cli(["--progress", "fancy", "config"])
    assert result.code == 1
    assert result.err == (
        "error: --progress: invalid value 'fancy'\n"
        "hint: expected one of: auto, tty, plain, json, quiet\n"
    )
    assert recorder.calls == []


@pytest.mark.parametrize(
    "args",
    [["nope"], ["config", "--no-such-flag"], ["--parallel", "many", "config"]],
)
def test_usage_errors_exit_2(recorder: Recorder, args: list[str]) -> None:
    result = cli(args)
    assert result.code == 2
    assert "Error:" in result.err
    assert "Traceback" not in result.err
    assert recorder.calls == []


def test_help_lists_global_flags_and_verbs() -> None:
    result = cli(["--help"])
    assert result.code == 0
    for flag in (
        "--file",
        "--project-name",
        "--profile",
        "--env-file",
        "--project-directory",
        "--parallel",
        "--progress",
        "--ansi",
        "--dry-run",
        "--debug",
        "--backend",
        "--version",
    ):
        assert flag in result.out
    assert "config" in result.out and "version" in result.out


def test_no_arguments_prints_help() -> None:
    result = cli([])
    assert result.code == 0
    assert result.out.startswith("Usage: composer [OPTIONS] COMMAND [ARGS]...")


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"]])
def test_fast_path_help_matches_typer(args: list[str]) -> None:
    """composer.help_text must be what typer renders; regenerate it if this fails."""
    assert typer_help([]) == TOP_LEVEL_HELP, "run: python -m composer.help_text (see its docstring)"
    assert cli(args).out == TOP_LEVEL_HELP


def test_config_help_lists_its_flags() -> None:
    result = cli(["config", "--help"])
    assert result.code == 0
    for flag in ("--format", "--quiet", "--services", "--hash", "--variables", "--output"):
        assert flag in result.out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--version"], f"composer version {__version__}\n"),
        (["version"], f"composer version {__version__}\n"),
        (["version", "--short"], f"{__version__}\n"),
        (["version", "--format", "json"], f'{{"version":"{__version__}"}}\n'),
    ],
)
def test_version(args: list[str], expected: str) -> None:
    result = cli(args)
    assert (result.code, result.out) == (0, expected)


# --- renderers ------------------------------------------------------------------------


def test_render_error_plain_composer_error() -> None:
    text = render_error(PlanError("no such service: web", hint="services are: db"))
    assert text == "error: no such service: web\nhint: services are: db\n"


def test_render_error_single_problem_hint_is_not_indented() -> None:
    error = ConfigError("bad", location=Location("c.yaml", 1, 2), path="x", hint="fix it")
    assert render_error(error) == "c.yaml:1:2: x: bad\nhint: fix it\n"


def test_render_error_colour() -> None:
    text = render_error(PlanError("x"), colour=True)
    assert text == "\x1b[31merror: x\x1b[0m\n"


def test_format_table_pads_like_tabwriter() -> None:
    text = format_table(("A", "B"), [("a-very-long-name-indeed", "x")])
    assert text.splitlines() == ["A                         B", "a-very-long-name-indeed   x"]
