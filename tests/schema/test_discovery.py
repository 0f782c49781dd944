"""Discovery of Compose files, the project directory, the project name and env files."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import ConfigError
from composer.schema.discovery import (
    env_files_for,
    expand_user,
    find_compose_files,
    normalize_project_name,
    project_name,
)

FIXTURES = Path(__file__).parent / "fixtures" / "discovery"


def _write(path: Path, text: str = "services: {}\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- files ------------------------------------------------------------------


def test_search_walks_upwards_and_adds_the_override_file() -> None:
    start = FIXTURES / "upward" / "app" / "sub" / "deeper"
    found = find_compose_files(start, {}, [], None)
    assert found.files == (
        str(FIXTURES / "upward" / "compose.yaml"),
        str(FIXTURES / "upward" / "compose.override.yaml"),
    )
    assert found.project_dir == FIXTURES / "upward"
    assert found.env_file_dir == FIXTURES / "upward"


def test_several_candidates_warn_and_prefer_compose_yaml() -> None:
    warnings: list[str] = []
    found = find_compose_files(FIXTURES / "multiple", {}, [], None, warn=warnings.append)
    assert found.files == (
        str(FIXTURES / "multiple" / "compose.yaml"),
        str(FIXTURES / "multiple" / "compose.override.yml"),
    )
    assert warnings == [
        "Found multiple config files with supported names: "
        f"{FIXTURES / 'multiple' / 'compose.yaml'}, {FIXTURES / 'multiple' / 'docker-compose.yml'}",
        f"Using {FIXTURES / 'multiple' / 'compose.yaml'}",
        "Found multiple override files with supported names: "
        f"{FIXTURES / 'multiple' / 'compose.override.yml'}, "
        f"{FIXTURES / 'multiple' / 'docker-compose.override.yaml'}",
        f"Using {FIXTURES / 'multiple' / 'compose.override.yml'}",
    ]


def test_legacy_docker_compose_yml_with_its_override() -> None:
    found = find_compose_files(FIXTURES / "yml", {}, [], None)
    assert found.files == (
        str(FIXTURES / "yml" / "docker-compose.yml"),
        str(FIXTURES / "yml" / "docker-compose.override.yml"),
    )


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        (["compose.yaml", "compose.yml"], "compose.yaml"),
        (["compose.yml", "docker-compose.yaml"], "compose.yml"),
        (["docker-compose.yaml", "docker-compose.yml"], "docker-compose.yml"),
        (["docker-compose.yaml"], "docker-compose.yaml"),
    ],
)
def test_preference_order_within_a_directory(
    tmp_path: Path, present: list[str], expected: str
) -> None:
    for name in present:
        _write(tmp_path / name)
    found = find_compose_files(tmp_path, {}, [], None)
    assert found.files == (str(tmp_path / expected),)


def test_nearest_directory_wins(tmp_path: Path) -> None:
    _write(tmp_path / "compose.yaml")
    _write(tmp_path / "inner" / "docker-compose.yml")
    found = find_compose_files(tmp_path / "inner", {}, [], None)
    assert found.files == (str(tmp_path / "inner" / "docker-compose.yml"),)


def test_no_file_anywhere_is_an_error_with_a_hint(tmp_path: Path) -> None:
    _write(tmp_path / "compose.override.yaml")  # an override alone is not a project
    with pytest.raises(ConfigError) as info:
        find_compose_files(tmp_path, {}, [], None)
    assert info.value.message == "no configuration file provided: not found"
    assert info.value.hint is not None and "-f" in info.value.hint


def test_dash_f_is_relative_to_the_working_dir_and_skips_discovery(tmp_path: Path) -> None:
    _write(tmp_path / "compose.yaml")
    _write(tmp_path / "other" / "a.yaml")
    _write(tmp_path / "b.yaml")
    found = find_compose_files(tmp_path, {}, ["other/a.yaml", "b.yaml"], None)
    assert found.files == (str(tmp_path / "other" / "a.yaml"), str(tmp_path / "b.yaml"))
    assert found.project_dir == tmp_path / "other"


def test_missing_dash_f_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_compose_files(tmp_path, {}, ["nope.yaml"], None)
    assert str(tmp_path / "nope.yaml") in info.value.message
    assert "no such file" in info.value.message


def test_dash_f_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        find_compose_files(tmp_path, {}, ["d"], None)


def test_stdin_project_dir_is_the_working_dir(tmp_path: Path) -> None:
    found = find_compose_files(tmp_path, {}, ["-"], None)
    assert found.files == ("-",)
    assert found.project_dir == tmp_path


def test_stdin_then_file_takes_the_file_directory(tmp_path: Path) -> None:
    _write(tmp_path / "x" / "c.yaml")
    found = find_compose_files(tmp_path, {}, ["-", "x/c.yaml"], None)
    assert found.files == ("-", str(tmp_path / "x" / "c.yaml"))
    assert found.project_dir == tmp_path / "x"


def test_compose_file_variable_with_separator(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml")
    _write(tmp_path / "b.yaml")
    env = {"COMPOSE_FILE": "a.yaml;b.yaml", "COMPOSE_PATH_SEPARATOR": ";"}
    found = find_compose_files(tmp_path, env, [], None)
    assert found.files == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))


def test_compose_file_variable_default_separator_is_colon(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml")
    _write(tmp_path / "b.yaml")
    found = find_compose_files(tmp_path, {"COMPOSE_FILE": "a.yaml:b.yaml"}, [], None)
    assert found.files == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))


def test_dash_f_beats_compose_file(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml")
    _write(tmp_path / "b.yaml")
    found = find_compose_files(tmp_path, {"COMPOSE_FILE": "a.yaml"}, ["b.yaml"], None)
    assert found.files == (str(tmp_path / "b.yaml"),)


def test_compose_file_missing_entry_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_compose_files(tmp_path, {"COMPOSE_FILE": "gone.yaml"}, [], None)
    assert str(tmp_path / "gone.yaml") in info.value.message
    assert info.value.hint is not None and "COMPOSE_FILE" in info.value.hint


def test_project_directory_overrides_and_anchors_the_search(tmp_path: Path) -> None:
    _write(tmp_path / "proj" / "compose.yaml")
    found = find_compose_files(tmp_path / "elsewhere", {}, [], "../proj")
    assert found.files == (str(tmp_path / "proj" / "compose.yaml"),)
    assert found.project_dir == tmp_path / "proj"


def test_project_directory_with_dash_f(tmp_path: Path) -> None:
    _write(tmp_path / "files" / "c.yaml")
    found = find_compose_files(tmp_path, {}, ["files/c.yaml"], "work")
    assert found.project_dir == tmp_path / "work"


# --- project name -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("myapp", "myapp"),
        ("My App", "myapp"),
        ("__web-1", "web-1"),
        ("-_x", "x"),
        ("Ünïcode.Name", "ncodename"),
        ("...", ""),
    ],
)
def test_normalize_project_name(raw: str, normal: str) -> None:
    assert normalize_project_name(raw) == normal


@pytest.mark.parametrize(
    ("explicit", "environ", "top", "directory", "expected"),
    [
        ("cli", {"COMPOSE_PROJECT_NAME": "env"}, "top", "/x/dir", "cli"),
        (None, {"COMPOSE_PROJECT_NAME": "env"}, "top", "/x/dir", "env"),
        (None, {"COMPOSE_PROJECT_NAME": ""}, "top", "/x/dir", "top"),
        (None, {}, "top", "/x/dir", "top"),
        (None, {}, "My_Top", "/x/dir", "my_top"),
        (None, {}, None, "/x/My Dir", "mydir"),
        (None, {}, "", "/x/dir", "dir"),
        (None, {}, "!!!", "/x/dir", "dir"),
    ],
)
def test_project_name_precedence(
    explicit: str | None, environ: dict[str, str], top: str | None, directory: str, expected: str
) -> None:
    assert project_name(explicit, environ, top, Path(directory)) == expected


@pytest.mark.parametrize(
    ("explicit", "environ", "source"),
    [
        ("MyApp", {}, "-p"),
        (None, {"COMPOSE_PROJECT_NAME": "My.App"}, "COMPOSE_PROJECT_NAME"),
    ],
)
def test_explicit_name_that_is_not_normal_is_an_error(
    explicit: str | None, environ: dict[str, str], source: str
) -> None:
    with pytest.raises(ConfigError) as info:
        project_name(explicit, environ, None, Path("/x/dir"))
    assert "invalid project name" in info.value.message
    assert source in info.value.message
    assert info.value.hint == 'use "myapp" instead'


def test_empty_name_from_directory_is_an_error() -> None:
    with pytest.raises(ConfigError, match="project name must not be empty"):
        project_name(None, {}, None, Path("/x/___"))


# --- env files --------------------------------------------------------------


def test_default_dotenv_in_project_dir() -> None:
    assert env_files_for(FIXTURES / "named" / "a", {}, []) == [FIXTURES / "named" / "a" / ".env"]


def test_no_default_dotenv_when_absent(tmp_path: Path) -> None:
    assert env_files_for(tmp_path, {}, []) == []


def test_dotenv_disabled_by_variable() -> None:
    env = {"COMPOSE_DISABLE_ENV_FILE": "true"}
    assert env_files_for(FIXTURES / "named" / "a", env, []) == []


def test_env_file_flags_are_relative_to_the_working_dir(tmp_path: Path) -> None:
    _write(tmp_path / "proj" / ".env", "A=1\n")
    _write(tmp_path / "one.env", "A=2\n")
    _write(tmp_path / "two.env", "A=3\n")
    got = env_files_for(tmp_path / "proj", {}, ["one.env", "two.env"], working_dir=tmp_path)
    assert got == [tmp_path / "one.env", tmp_path / "two.env"]


def test_compose_env_files_variable_is_a_comma_list(tmp_path: Path) -> None:
    _write(tmp_path / "one.env")
    _write(tmp_path / "two.env")
    env = {"COMPOSE_ENV_FILES": "one.env,two.env"}
    got = env_files_for(tmp_path, env, [], working_dir=tmp_path)
    assert got == [tmp_path / "one.env", tmp_path / "two.env"]


def test_flag_beats_compose_env_files(tmp_path: Path) -> None:
    _write(tmp_path / "one.env")
    _write(tmp_path / "two.env")
    env = {"COMPOSE_ENV_FILES": "one.env"}
    assert env_files_for(tmp_path, env, ["two.env"], working_dir=tmp_path) == [tmp_path / "two.env"]


def test_missing_env_file_flag_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="couldn't find env file") as info:
        env_files_for(tmp_path, {}, ["nope.env"], working_dir=tmp_path)
    assert str(tmp_path / "nope.env") in info.value.message


@pytest.mark.parametrize(
    ("raw", "environ", "expected"),
    [
        ("~/data", {"HOME": "/home/u"}, "/home/u/data"),
        ("~", {"HOME": "/home/u"}, "/home/u"),
        ("~/data", {}, "~/data"),
        ("./data", {"HOME": "/home/u"}, "./data"),
    ],
)
def test_expand_user_reads_home_from_the_given_environment(
    raw: str, environ: dict[str, str], expected: str
) -> None:
    assert expand_user(raw, environ) == expected
